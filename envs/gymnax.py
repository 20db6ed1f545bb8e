"""Adapter: every gymnax environment as ``gymnax/<id>``.

gymnax (>= 1.0) already separates the natural end of an episode (``step_env``'s terminal flag)
from the time limit (``is_truncated``); the adapter calls the non-resetting ``step_env`` and
reports the two as ``terminated`` and ``truncated``. A step that both ends the MDP and hits the
time limit is reported as terminated only (there is nothing to bootstrap from).

Params are gymnax's own params pytree (episode length is its ``max_steps_in_episode``), so
gymnax-style code that builds or edits params works unchanged. Rewards are cast to float32
(a few bsuite/misc envs return int32 rewards).
"""

from __future__ import annotations

from typing import Any

import gymnax
import jax
import jax.numpy as jnp
import numpy as np
from gymnax.registration import registered_envs as _gymnax_registered_envs

from jaxrl_suite.env import spaces
from jaxrl_suite.env.environment import Environment, StepOutput

__all__ = ["GymnaxEnv", "gymnax_env_ids"]

PREFIX = "gymnax/"


def gymnax_env_ids() -> list[str]:
    """The ids gymnax registers (without the ``gymnax/`` prefix)."""
    return list(_gymnax_registered_envs)


# gymnax declares a few observation spaces that its envs do not keep to; the adapter reports
# spaces that contain what the env emits (tests/test_conformance.py checks this for every env).
# Corrected (low, high) by observation index (None: every index; a None bound is kept).
_OBSERVATION_BOUND_FIXES: dict[str, dict[int | None, tuple[float | None, float | None]]] = {
    # context bits are shown as 2 * bit - 1 (so -1), and "time remaining" 1 - t / L reaches
    # -1 / L on the final observation.
    "MemoryChain-bsuite": {None: (-1.0, None)},
    # [last reward (Gaussian: unbounded), one-hot last action (2), time scaled to [-1, 1]]
    "GaussianBandit-misc": {0: (-np.inf, np.inf), 3: (-1.0, None)},
    # [3x3 view (9), one-hot last action (4), last reward, time]: the last reward is the goal
    # reward (params.reward, 10 by default) plus the wall punishment, declared as [0, 1]
    # (found by tests/test_conformance.py's many-rollout property test).
    "MetaMaze-misc": {13: (-np.inf, np.inf)},
}


def _fix_observation_space(gymnax_id: str, space: spaces.Space, emitted: Any) -> spaces.Space:
    """Correct gymnax's declared space: the dtype the env really emits (Catch declares int32
    and emits float32; FourRooms the reverse) and the bounds above."""
    fixes = _OBSERVATION_BOUND_FIXES.get(gymnax_id, {})
    if not isinstance(space, spaces.Box) or (
        not fixes and np.dtype(emitted.dtype) == np.dtype(space.dtype)
    ):
        return space
    low, high = space.low.astype(np.float64).ravel(), space.high.astype(np.float64).ravel()
    for index, (new_low, new_high) in fixes.items():
        where = slice(None) if index is None else index
        if new_low is not None:
            low[where] = new_low
        if new_high is not None:
            high[where] = new_high
    shape = emitted.shape
    return spaces.Box(low.reshape(shape), high.reshape(shape), shape, emitted.dtype)


def _is_concrete(tree: Any) -> bool:
    return not any(isinstance(leaf, jax.core.Tracer) for leaf in jax.tree.leaves(tree))


class GymnaxEnv(Environment):
    """A gymnax env under the project's API: non-resetting ``step``, separate truncation."""

    def __init__(self, gymnax_id: str, **gymnax_kwargs: Any):
        self.gymnax_id = gymnax_id
        self.gymnax_env, _ = gymnax.make(gymnax_id, **gymnax_kwargs)
        default = self.gymnax_env.default_params
        # What reset really emits (abstract evaluation: nothing runs).
        self._obs_struct = jax.eval_shape(self.gymnax_env.reset_env, jax.random.key(0), default)[0]
        self._default_obs_space = self._observation_space(default)
        self._default_action_space = self._action_space(default)

    def _observation_space(self, params: Any) -> spaces.Space:
        # ensure_compile_time_eval: gymnax builds bounds with jnp, which would otherwise give
        # tracers when a space is asked for inside jit.
        with jax.ensure_compile_time_eval():
            space = spaces.from_gymnax_space(self.gymnax_env.observation_space(params))
        return _fix_observation_space(self.gymnax_id, space, self._obs_struct)

    def _action_space(self, params: Any) -> spaces.Space:
        with jax.ensure_compile_time_eval():
            return spaces.from_gymnax_space(self.gymnax_env.action_space(params))

    @property
    def name(self) -> str:
        return PREFIX + self.gymnax_id

    @property
    def default_params(self) -> Any:
        return self.gymnax_env.default_params

    def observation_space(self, params: Any = None) -> spaces.Space:
        # Bounds may depend on params; traced params cannot make a static space, so those (and
        # None) give the default-params space.
        if params is None or not _is_concrete(params):
            return self._default_obs_space
        return self._observation_space(params)

    def action_space(self, params: Any = None) -> spaces.Space:
        if params is None or not _is_concrete(params):
            return self._default_action_space
        return self._action_space(params)

    def state_space(self, params: Any = None) -> spaces.Space:
        """gymnax's state space of the env, as a project space (gymnax's envs that declare
        none raise ``NotImplementedError``, as in gymnax)."""
        params = self.default_params if params is None or not _is_concrete(params) else params
        with jax.ensure_compile_time_eval():
            return spaces.from_gymnax_space(self.gymnax_env.state_space(params))

    def reset_env(self, key: jax.Array, params: Any) -> tuple[Any, Any]:
        return self.gymnax_env.reset_env(key, params)

    def step_env(self, key: jax.Array, state: Any, action: Any, params: Any) -> StepOutput:
        obs, next_state, reward, terminated, info = self.gymnax_env.step_env(
            key, state, action, params
        )
        terminated = jnp.asarray(terminated, jnp.bool_)
        out_of_time = jnp.asarray(self.gymnax_env.is_truncated(next_state, params), jnp.bool_)
        truncated = jnp.logical_and(out_of_time, ~terminated)
        reward = jnp.asarray(reward, jnp.float32)
        return obs, next_state, reward, terminated, truncated, dict(info)
