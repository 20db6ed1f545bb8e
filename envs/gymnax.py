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
from gymnax.registration import registered_envs as _gymnax_registered_envs

from jaxrl_suite import spaces
from jaxrl_suite.environment import Environment, StepOutput

__all__ = ["GymnaxEnv", "gymnax_env_ids"]

PREFIX = "gymnax/"


def gymnax_env_ids() -> list[str]:
    """The ids gymnax registers (without the ``gymnax/`` prefix)."""
    return list(_gymnax_registered_envs)


def _is_concrete(tree: Any) -> bool:
    return not any(isinstance(leaf, jax.core.Tracer) for leaf in jax.tree.leaves(tree))


class GymnaxEnv(Environment):
    """A gymnax env under the project's API: non-resetting ``step``, separate truncation."""

    def __init__(self, gymnax_id: str, **gymnax_kwargs: Any):
        self.gymnax_id = gymnax_id
        self.gymnax_env, _ = gymnax.make(gymnax_id, **gymnax_kwargs)
        default = self.gymnax_env.default_params
        # Spaces are static objects; build them once from the default params.
        self._default_obs_space = spaces.from_gymnax_space(
            self.gymnax_env.observation_space(default)
        )
        self._default_action_space = spaces.from_gymnax_space(
            self.gymnax_env.action_space(default)
        )

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
        return spaces.from_gymnax_space(self.gymnax_env.observation_space(params))

    def action_space(self, params: Any = None) -> spaces.Space:
        if params is None or not _is_concrete(params):
            return self._default_action_space
        return spaces.from_gymnax_space(self.gymnax_env.action_space(params))

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
