"""Batched rollouts: ``vmap`` over envs inside one ``lax.scan`` over steps."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax

__all__ = ["random_rollout"]


def _total_reward(reward: jax.Array, info: dict[str, Any]) -> jax.Array:
    return reward.sum()


def random_rollout(
    env: Any,
    params: Any,
    num_envs: int,
    num_steps: int,
    per_step: Callable[[jax.Array, dict[str, Any]], Any] = _total_reward,
) -> Callable[[jax.Array], Any]:
    """A jitted rollout of uniformly random actions in ``num_envs`` envs for ``num_steps`` steps.

    ``env`` is any env with the gymnax calling convention (the project's, or gymnax's own).
    Returns ``rollout(key)``, which gives ``per_step(reward, info)`` stacked over steps; the
    default records the summed reward, a scalar per step, so memory stays flat however many envs
    run (``reward`` has shape ``(num_envs,)``, ``info`` leaves ``(num_envs, ...)``).
    """
    action_space = env.action_space(params)

    def rollout(key: jax.Array) -> Any:
        reset_key, scan_key = jax.random.split(key)
        _, state = jax.vmap(env.reset, in_axes=(0, None))(
            jax.random.split(reset_key, num_envs), params
        )

        def body(state: Any, key: jax.Array) -> tuple[Any, Any]:
            action_key, step_key = jax.random.split(key)
            actions = jax.vmap(action_space.sample)(jax.random.split(action_key, num_envs))
            _, state, reward, _, _, info = jax.vmap(env.step, in_axes=(0, 0, 0, None))(
                jax.random.split(step_key, num_envs), state, actions, params
            )
            return state, per_step(reward, info)

        return jax.lax.scan(body, state, jax.random.split(scan_key, num_steps))[1]

    return jax.jit(rollout)
