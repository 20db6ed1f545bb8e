"""Offline data (the highest wing: imports ``env``, ``learn`` and ``run``).

- ``datasets``: the ``Dataset`` pytree, Minari / D4RL / HDF5 readers and writers, samplers.
- ``collect``: recording datasets from trained policies (``jaxrl collect``).
- ``offline``: the loop every offline algorithm shares (``make_offline_train``).
"""
