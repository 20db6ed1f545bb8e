"""jaxrl-suite: reinforcement learning where environments and algorithms are both pure JAX.

The core is four wings, imported one way, env <- learn <- run <- data (DESIGN.md section 1):
``jaxrl_suite.env`` (the env API), ``jaxrl_suite.learn`` (networks, advantages, buffers,
optimisers, objectives, level sampling), ``jaxrl_suite.run`` (``Train``, the harness, checkpoints,
the algorithm registry) and ``jaxrl_suite.data`` (offline datasets and their loop); the command
line (``jaxrl_suite.cli``) sits above them. The env API is imported here; the most used names of
the other wings (``run_training``, ``RunOptions``, ``Train``, ``AlgorithmSpec``) and every core
module by its short name (``jaxrl_suite.optim``, ``from jaxrl_suite import harness``) load on
first use.

Quick start::

    import jax, jaxrl_suite
    env, params = jaxrl_suite.make("gymnax/CartPole-v1")
    obs, state = env.reset(jax.random.key(0), params)
    obs, state, reward, terminated, truncated, info = env.step(
        jax.random.key(1), state, env.action_space(params).sample(jax.random.key(2)), params
    )
"""

import importlib
from typing import Any

from jaxrl_suite.env import spaces, wrappers
from jaxrl_suite.env.environment import Environment, EnvParams, EnvState
from jaxrl_suite.env.registry import EnvSpec, env_spec, make, register, registered_envs
from jaxrl_suite.env.wrappers import (
    AutoReset,
    CachedAutoReset,
    ClipAction,
    EpisodeStats,
    FlattenObservation,
    NormalizeObservation,
    NormalizeReward,
    TimeLimit,
)

__version__ = "0.1.0"

# Short name -> module of the core, loaded on first attribute access (``jaxrl_suite.optim``).
_MODULES = {
    **{name: f"jaxrl_suite.env.{name}" for name in ("environment", "levels", "registry",
                                                     "rollouts")},
    **{name: f"jaxrl_suite.learn.{name}" for name in ("networks", "advantages", "buffers",
                                                       "experience", "minibatches", "optim",
                                                       "objectives", "preferences", "level_sampler",
                                                       "level_scores")},
    **{name: f"jaxrl_suite.run.{name}" for name in ("training", "algorithms", "configs",
                                                     "harness", "folder", "command",
                                                     "checkpoints", "sinks", "sharding",
                                                     "evaluation")},
    **{name: f"jaxrl_suite.data.{name}" for name in ("datasets", "collect", "offline")},
}
# Public names of the other wings, loaded on first use (importing them pulls in flax/orbax).
_NAMES = {
    "run_training": "jaxrl_suite.run.harness",
    "RunOptions": "jaxrl_suite.run.harness",
    "evaluate_run": "jaxrl_suite.run.harness",
    "load_run": "jaxrl_suite.run.folder",
    "Train": "jaxrl_suite.run.training",
    "TrainResult": "jaxrl_suite.run.training",
    "AlgorithmSpec": "jaxrl_suite.run.algorithms",
    "load_algorithm": "jaxrl_suite.run.algorithms",
    "Dataset": "jaxrl_suite.data.datasets",
}


def __getattr__(name: str) -> Any:
    if name in _MODULES:
        return importlib.import_module(_MODULES[name])
    if name in _NAMES:
        return getattr(importlib.import_module(_NAMES[name]), name)
    raise AttributeError(f"module 'jaxrl_suite' has no attribute {name!r}")

__all__ = [
    "Environment",
    "EnvParams",
    "EnvState",
    "EnvSpec",
    "env_spec",
    "make",
    "register",
    "registered_envs",
    "spaces",
    "wrappers",
    "AutoReset",
    "CachedAutoReset",
    "ClipAction",
    "EpisodeStats",
    "FlattenObservation",
    "NormalizeObservation",
    "NormalizeReward",
    "TimeLimit",
    *_NAMES,
]
