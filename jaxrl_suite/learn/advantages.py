"""Generalised advantage estimation with terminations and truncations kept apart.

Arrays are time-major: ``(T, ...)`` with any batch axes after time. Rewards (and values) may
carry one more trailing axis than the terminations, ``(..., num_objectives)``: a
multi-objective reward gives one advantage or return per objective, ending where the episode
ends. The caller supplies, for each
step ``t``, ``next_values[t]``: the value of the observation that *follows* step ``t`` in the same
episode. On a step that ended by truncation that observation is ``info["final_observation"]`` (the
state the time limit cut off), not the reset observation the env returned; on a terminated step it
is ignored (no bootstrap).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

__all__ = [
    "explained_variance",
    "generalized_advantages",
    "n_step_returns",
    "next_values_from_rollout",
    "policy_advantages",
    "standardize",
]


def _per_objective(flag: jax.Array, like: jax.Array) -> jax.Array:
    """``flag`` (bool, the terminations' shape) with trailing unit axes up to ``like``'s rank,
    so a ``(T, N)`` flag applies to every objective of ``(T, N, k)`` rewards. Equal ranks
    (scalar rewards) leave it as it is."""
    return flag.reshape(flag.shape + (1,) * (like.ndim - flag.ndim))


def next_values_from_rollout(
    values: jax.Array, last_value: jax.Array, final_values: jax.Array, done: jax.Array
) -> jax.Array:
    """``next_values`` for GAE from per-step values.

    Args:
      values: ``(T, ...)`` V(s_t) of the observations the agent acted on (``(T, ..., k)`` for
        a vector-valued critic, with ``done`` still ``(T, ...)``).
      last_value: ``(...)`` V of the observation after the last step (the next rollout's first).
      final_values: ``(T, ...)`` V(info["final_observation"][t]); only read where ``done``.
      done: ``(T, ...)`` bool, terminated or truncated at step t.
    """
    following = jnp.concatenate([values[1:], last_value[None]], axis=0)
    return jnp.where(_per_objective(done, values), final_values, following)


def generalized_advantages(
    rewards: jax.Array,
    values: jax.Array,
    next_values: jax.Array,
    terminated: jax.Array,
    truncated: jax.Array,
    gamma: jax.Array | float,
    gae_lambda: jax.Array | float,
) -> tuple[jax.Array, jax.Array]:
    """GAE(gamma, lambda), computed in reverse with ``lax.scan``.

    ``delta_t = r_t + gamma * (1 - terminated_t) * next_values_t - values_t`` and
    ``A_t = delta_t + gamma * lambda * (1 - done_t) * A_{t+1}`` where ``done = terminated |
    truncated``: a truncated step bootstraps from ``next_values`` but the advantage recursion
    still stops at the episode boundary.

    Args:
      rewards, values, next_values: ``(T, ...)`` float, or ``(T, ..., num_objectives)``.
      terminated, truncated: ``(T, ...)`` bool (one per step, whatever the objectives).
      gamma, gae_lambda: scalars (may be traced, for ``vmap`` sweeps).

    Returns:
      ``(advantages, value_targets)``, both ``(T, ...)``; ``value_targets = advantages + values``.
    """
    terminated, truncated = _per_objective(terminated, rewards), _per_objective(truncated, rewards)
    continues = 1.0 - terminated.astype(rewards.dtype)
    episode_continues = 1.0 - jnp.logical_or(terminated, truncated).astype(rewards.dtype)
    deltas = rewards + gamma * continues * next_values - values

    def backward(advantage_after, step):
        delta, episode_continue = step
        advantage = delta + gamma * gae_lambda * episode_continue * advantage_after
        return advantage, advantage

    _, advantages = jax.lax.scan(
        backward, jnp.zeros_like(deltas[0]), (deltas, episode_continues), reverse=True
    )
    return advantages, advantages + values


def n_step_returns(
    rewards: jax.Array,
    terminated: jax.Array,
    truncated: jax.Array,
    available: jax.Array,
    gamma: jax.Array | float,
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Discounted n-step returns of sampled sequences, stopping at an episode's end.

    Arrays are ``(batch, n)``: step ``k`` of each sequence is the ``k``-th step after the sampled
    transition in the same env; ``available`` is False for steps not yet collected. Rewards may
    be ``(batch, n, num_objectives)``: the returns are then ``(batch, num_objectives)``, the
    discount and ``last`` still one per sequence. A sequence
    keeps steps up to and including the first that ended its episode (``terminated |
    truncated``) or the last available one.

    Returns ``(returns, bootstrap_discount, last)``, each ``(batch,)``:
    ``returns = sum_{k<=last} gamma^k r_k``; ``last`` is the index of the last kept step, whose
    ``next_observation`` the target bootstraps from; ``bootstrap_discount = gamma^(last+1)``,
    or 0 when that step terminated. A truncated step therefore still bootstraps. With ``n = 1``
    this is the one-step target ``r + gamma (1 - terminated) Q(s')``.
    """
    done = jnp.logical_or(terminated, truncated)
    # Step k is kept if it was collected and no earlier step of the sequence ended the episode.
    ended_before = jnp.cumsum(done, axis=1) - done.astype(jnp.int32)
    kept = available & (ended_before == 0)
    kept = kept.at[:, 0].set(True)  # the sampled transition itself always exists
    discounts = _per_objective(gamma ** jnp.arange(rewards.shape[1], dtype=rewards.dtype),
                               rewards[0])
    returns = jnp.sum(jnp.where(_per_objective(kept, rewards), rewards * discounts, 0.0), axis=1)
    last = kept.sum(axis=1) - 1
    last_terminated = jnp.take_along_axis(terminated, last[:, None], axis=1)[:, 0]
    bootstrap_discount = jnp.where(last_terminated, 0.0, gamma ** (last + 1.0))
    return returns, bootstrap_discount.astype(rewards.dtype), last


def standardize(x: jax.Array, axis: int | tuple[int, ...] | None = None) -> jax.Array:
    """``(x - mean) / (std + 1e-8)`` over ``axis`` (all axes by default)."""
    return (x - x.mean(axis=axis)) / (x.std(axis=axis) + 1e-8)


def policy_advantages(
    advantages: jax.Array,
    hparams: Any,
    *,
    normalize: bool,
    num_objectives: int = 0,
    scalarize: Callable[[jax.Array, Any], jax.Array] | None = None,
    batch_axes: tuple[int, ...] = (0,),
) -> tuple[jax.Array, jax.Array | None]:
    """The advantages a policy objective optimises, from a minibatch's GAE advantages.

    Args:
      advantages: ``(*batch, k)`` per objective when ``num_objectives`` is ``k`` > 0, else
        ``(*batch)``.
      hparams: handed to ``scalarize`` (it holds the preference weights).
      normalize: standardise over the minibatch (per objective, and after scalarising).
      num_objectives: 0 for a scalar reward.
      scalarize: ``(advantages (*batch, k), hparams) -> (*batch)``; needed when
        ``num_objectives`` > 0.
      batch_axes: the minibatch's axes, over which a vector advantage is standardised.

    Returns:
      ``(advantages (*batch), objective_advantages)``: the scalar advantages (scalarised, then
      standardised when ``normalize``), and for a vector reward the per-objective ones
      (standardised per objective when ``normalize``; ``None`` for a scalar reward), which an
      objective that handles objectives itself (C-MORL's constraints) reads.
    """
    objective_advantages = None
    if num_objectives:
        objective_advantages = (standardize(advantages, batch_axes) if normalize
                                else advantages)
        advantages = scalarize(advantages, hparams)
    if normalize:
        advantages = standardize(advantages)
    return advantages, objective_advantages


def explained_variance(values: jax.Array, targets: jax.Array) -> jax.Array:
    """``1 - Var(targets - values) / Var(targets)``: 1 for a perfect critic, 0 for one that
    predicts the mean, negative for one worse than that. Over all elements."""
    return 1.0 - jnp.var(targets - values) / (jnp.var(targets) + 1e-8)
