"""Running an algorithm (imports ``jaxrl_suite.env`` and ``jaxrl_suite.learn``).

- ``training``: ``Train``, the object every ``make_train`` returns, and ``TrainResult``.
- ``algorithms``: ``AlgorithmSpec`` and the algorithm registry (``jaxrl train NAME``).
- ``configs``: config checks and presets.
- ``harness``: ``run_training`` (the loop: seeds, progress, checkpoints, resume, evaluation).
- ``folder``: the run folder on disk (record, ``metrics.csv``, learning curve, ``load_run``).
- ``command``: an algorithm's command line (``jaxrl train NAME`` / ``python algos/NAME.py``).
- ``checkpoints``, ``sinks``, ``sharding``, ``evaluation``.
"""
