"""Adapter: Brax environments as ``brax/<name>`` (default backend) and ``mjx/<name>`` (MJX).

Brax envs have no params pytree and leave the episode limit to a training wrapper; here the
episode length is a field of ``BraxParams`` (changeable without recompiling) and hitting it is
reported as ``truncated``, while Brax's own ``done`` (an unhealthy robot) is ``terminated``.
Brax is deterministic given the reset key, so ``step`` ignores its key.
Actions are in ``[-1, 1]^action_size`` (Brax envs scale them to actuator ranges themselves).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

from jaxrl_suite import spaces
from jaxrl_suite.environment import Environment, StepOutput

__all__ = ["BraxEnv", "BraxParams", "BraxState", "BRAX_ENV_NAMES", "MJX_ENV_NAMES"]

# brax.envs' registry, kept here so registering the ids does not import Brax (slow) and so a
# Brax release that adds or removes envs fails tests/test_brax_adapter.py instead of going
# unnoticed. 'fast' is Brax's physics-free test env (no backend) and 'swimmer' supports only the
# generalized backend (Brax raises for any other), so neither has an mjx/ id.
BRAX_ENV_NAMES = (
    "ant",
    "fast",
    "halfcheetah",
    "hopper",
    "humanoid",
    "humanoidstandup",
    "inverted_double_pendulum",
    "inverted_pendulum",
    "pusher",
    "reacher",
    "swimmer",
    "walker2d",
)
MJX_ENV_NAMES = tuple(name for name in BRAX_ENV_NAMES if name not in ("fast", "swimmer"))

DEFAULT_BACKEND = "generalized"  # Brax's own default for get_environment


@struct.dataclass
class BraxParams:
    max_steps_in_episode: int = 1000


@struct.dataclass
class BraxState:
    brax_state: Any  # brax.envs.State
    time: jax.Array  # steps taken in this episode, int32


class _NumpyWithLegacyClip:
    """``jax.numpy`` whose ``clip`` still takes ``a_min``/``a_max``.

    brax 0.14.2's ``fluid.py`` (the viscosity used by ``swimmer``) calls
    ``jnp.clip(x, a_min=...)``; JAX 0.10 removed those keywords, so swimmer fails to trace.
    The adapter hands that one module this shim instead of ``jax.numpy``.
    """

    def __getattr__(self, name: str) -> Any:
        return getattr(jnp, name)

    @staticmethod
    def clip(x: Any, a_min: Any = None, a_max: Any = None, **kwargs: Any) -> jax.Array:
        return jnp.clip(x, kwargs.pop("min", a_min), kwargs.pop("max", a_max), **kwargs)


def _patch_brax_for_current_jax() -> None:
    import inspect

    from brax import fluid

    if "a_min" not in inspect.signature(jnp.clip).parameters and fluid.jp is jnp:
        fluid.jp = _NumpyWithLegacyClip()


class BraxEnv(Environment):
    """A Brax ``PipelineEnv`` under the project's API."""

    def __init__(self, brax_name: str, backend: str = DEFAULT_BACKEND, **brax_kwargs: Any):
        from brax import envs as brax_envs

        _patch_brax_for_current_jax()

        if brax_name not in brax_envs._envs:
            raise ValueError(
                f"Brax has no env {brax_name!r}; it has: {', '.join(sorted(brax_envs._envs))}."
            )
        if brax_name != "fast":
            brax_kwargs["backend"] = backend
        self.brax_name, self.backend = brax_name, backend
        self.brax_env = brax_envs.get_environment(brax_name, **brax_kwargs)
        # Brax's own `observation_size` runs an eager reset (hundreds of op-by-op compilations,
        # 15-35 s on a CPU); abstract evaluation gives the same shape without running anything.
        obs_shape = jax.eval_shape(self.brax_env.reset, jax.random.key(0)).obs.shape
        self._obs_space = spaces.Box(-jnp.inf, jnp.inf, obs_shape, jnp.float32)
        self._action_space = spaces.Box(-1.0, 1.0, (self.brax_env.action_size,), jnp.float32)

    @property
    def name(self) -> str:
        prefix = "mjx/" if self.backend == "mjx" and self.brax_name in MJX_ENV_NAMES else "brax/"
        return prefix + self.brax_name

    @property
    def default_params(self) -> BraxParams:
        return BraxParams()

    def observation_space(self, params: Any = None) -> spaces.Box:
        return self._obs_space

    def action_space(self, params: Any = None) -> spaces.Box:
        return self._action_space

    def reset_env(self, key: jax.Array, params: BraxParams) -> tuple[jax.Array, BraxState]:
        brax_state = self.brax_env.reset(key)
        return brax_state.obs, BraxState(brax_state, jnp.zeros((), jnp.int32))

    def step_env(
        self, key: jax.Array, state: BraxState, action: jax.Array, params: BraxParams
    ) -> StepOutput:
        del key  # Brax dynamics are deterministic
        brax_state = self.brax_env.step(state.brax_state, action)
        time = state.time + 1
        terminated = brax_state.done > 0.5
        truncated = jnp.logical_and(time >= params.max_steps_in_episode, ~terminated)
        info = {name: value for name, value in brax_state.metrics.items()}
        return (
            brax_state.obs,
            BraxState(brax_state, time),
            jnp.asarray(brax_state.reward, jnp.float32),
            terminated,
            truncated,
            info,
        )
