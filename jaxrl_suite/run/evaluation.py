"""Policy evaluation: whole episodes in parallel, jitted, deterministic or stochastic.

A ``Policy`` is a pytree (its parameters are traced, so a batch of policies from ``vmap``-ed
seeds evaluates in one ``vmap``) with a static ``act`` function::

    act(params, key, observation, carry, episode_start, deterministic) -> (action, carry)

``carry`` is the recurrent state (``None`` for feed-forward policies); ``episode_start`` is True on
an episode's first observation. Deterministic mode takes the greedy (discrete) or mean
(continuous) action.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

from jaxrl_suite.env import wrappers
from jaxrl_suite.env.environment import Environment

__all__ = ["Policy", "evaluate"]


@struct.dataclass
class Policy:
    act: Callable[..., tuple[Any, Any]] = struct.field(pytree_node=False)
    params: Any
    initial_carry: Any = None  # carry for one env; broadcast per episode


def _episode_limit(env: Environment, env_params: Any, max_steps: int | None) -> int:
    if max_steps is not None:
        return int(max_steps)
    limit = getattr(env_params, "max_steps_in_episode", None)
    if limit is None:
        raise ValueError(
            f"{env.name}'s params have no max_steps_in_episode; pass max_steps= to evaluate."
        )
    try:
        return int(limit)
    except (TypeError, jax.errors.ConcretizationTypeError):
        raise ValueError(
            "evaluate needs a concrete episode limit; pass max_steps= when env_params are traced."
        ) from None


def evaluate(
    policy: Policy,
    env: Environment,
    env_params: Any,
    key: jax.Array,
    num_episodes: int,
    *,
    deterministic: bool = True,
    max_steps: int | None = None,
    discount: float = 1.0,
) -> dict[str, jax.Array]:
    """Run ``num_episodes`` episodes in parallel and return their undiscounted returns.

    ``env`` should not auto-reset (``make(id, wrappers=False)``); each episode is stepped for
    ``max_steps`` (default ``env_params.max_steps_in_episode``) and only the steps up to its first
    ``terminated | truncated`` count. Returns ``{"episode_return": (num_episodes,) float32,
    "episode_length": (num_episodes,) int32}``; multi-objective rewards give
    ``(num_episodes, num_objectives)`` returns. With ``discount < 1`` also
    ``"discounted_return"``, ``sum_t discount**t r_{t+1}`` (the first reward undiscounted: the
    return an agent with that discount maximises from the start state; multi-objective fronts
    are reported both ways). Jitted; call it under ``vmap`` for many policies.
    """
    if not isinstance(num_episodes, int) or num_episodes <= 0:
        raise ValueError(f"num_episodes must be a positive integer; got {num_episodes!r}.")
    if not 0.0 < float(discount) <= 1.0:
        raise ValueError(f"discount must be in (0, 1]; got {discount!r}.")
    limit = _episode_limit(env, env_params, max_steps)
    out = _evaluate(policy, env, env_params, key, num_episodes, deterministic, limit,
                    float(discount))
    if discount == 1.0:
        del out["discounted_return"]
    return out


@partial(jax.jit, static_argnums=(1, 4, 5, 6, 7))
def _evaluate(policy, env, env_params, key, num_episodes, deterministic, limit, discount):
    def one_episode(episode_key):
        reset_key, loop_key = jax.random.split(episode_key)
        obs, state = env.reset(reset_key, env_params)

        def step(carry, step_key):
            (obs, state, policy_carry, episode_start, running, episode_return, length,
             discounted, weight) = carry
            act_key, env_key = jax.random.split(step_key)
            action, policy_carry = policy.act(
                policy.params, act_key, obs, policy_carry, episode_start, deterministic
            )
            obs, state, reward, terminated, truncated, _ = env.step(
                env_key, state, action, env_params
            )
            reward = jnp.asarray(reward, jnp.float32)
            mask = running.reshape(running.shape + (1,) * (reward.ndim - running.ndim))
            episode_return = episode_return + jnp.where(mask, reward, 0.0)
            discounted = discounted + jnp.where(mask, weight * reward, 0.0)
            length = length + running.astype(jnp.int32)
            running = running & ~(terminated | truncated)
            return (obs, state, policy_carry, jnp.bool_(False), running, episode_return,
                    length, discounted, weight * discount), None

        # From the reward space, not by tracing a step: a traced step may write into the
        # state it is given (Brax updates its metrics dict in place), which would leak tracers.
        reward_shape = wrappers.reward_shape(env, env_params)
        carry = (obs, state, policy.initial_carry, jnp.bool_(True), jnp.bool_(True),
                 jnp.zeros(reward_shape, jnp.float32), jnp.int32(0),
                 jnp.zeros(reward_shape, jnp.float32), jnp.float32(1.0))
        carry, _ = jax.lax.scan(step, carry, jax.random.split(loop_key, limit))
        return {"episode_return": carry[5], "episode_length": carry[6],
                "discounted_return": carry[7]}

    return jax.vmap(one_episode)(jax.random.split(key, num_episodes))
