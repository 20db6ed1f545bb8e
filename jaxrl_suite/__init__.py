"""jaxrl-suite: reinforcement learning where environments and algorithms are both pure JAX.

Quick start::

    import jax, jaxrl_suite
    env, params = jaxrl_suite.make("gymnax/CartPole-v1")
    obs, state = env.reset(jax.random.key(0), params)
    obs, state, reward, terminated, truncated, info = env.step(
        jax.random.key(1), state, env.action_space(params).sample(jax.random.key(2)), params
    )
"""

from jaxrl_suite import spaces, wrappers
from jaxrl_suite.environment import Environment, EnvParams, EnvState
from jaxrl_suite.registry import EnvSpec, env_spec, make, register, registered_envs
from jaxrl_suite.wrappers import (
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
]
