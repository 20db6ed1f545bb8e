"""The environment API: what an env is and how it is made (the lowest wing; imports no other).

- ``environment``: the ``Environment`` protocol (``reset``/``step``, params, spaces).
- ``spaces``: ``Discrete``, ``Box``, ``Dict`` ...
- ``wrappers``: ``AutoReset``, ``EpisodeStats``, normalisation, time limits, vector rewards.
- ``levels``: ``LevelEnvironment`` and level resets, for UED.
- ``registry``: ``make(id)``, ``register``, env specs, render hooks.
- ``rollouts``: a random-policy rollout (``jaxrl rollout``).
"""

from jaxrl_suite.env import environment, levels, registry, spaces, wrappers

__all__ = ["environment", "levels", "registry", "spaces", "wrappers"]
