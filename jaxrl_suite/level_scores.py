"""Level scores for prioritised level replay: functions of a rollout on each level.

Every score function takes a ``LevelRollout`` (time-major arrays of a rollout of ``N`` envs, one
level per env, ``T`` steps, possibly several episodes) and returns float32 ``(N,)``: the
level's score, higher meaning "more worth replaying". The sampler
(``jaxrl_suite.level_sampler``) never looks inside a score, so any function of this signature
plugs in: PAIRED's regret estimate, or GROOVE's algorithmic regret later.

* ``positive_value_loss`` (PLR's default, Jiang et al. 2021): the mean over the rollout of the
  positive part of the GAE advantage, ``mean_t max(A_t, 0)``.
* ``mean_absolute_gae`` (the original PLR's "L1 value loss"): ``mean_t |A_t|``.
* ``max_mc`` (Jiang et al. 2021, robust PLR): ``mean_t (R_max - V(s_t))``, with ``R_max`` the
  highest return of an episode that ended in the rollout on that level (when none ended, the
  highest return collected so far in the unfinished episode).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct

__all__ = [
    "LevelRollout",
    "positive_value_loss",
    "mean_absolute_gae",
    "max_mc",
    "SCORE_FUNCTIONS",
]


@struct.dataclass
class LevelRollout:
    """What a score may read of a rollout, all float32/bool ``(T, N)``, time first.

    Attributes:
      advantages: GAE advantages.
      values: value estimates ``V(s_t)``.
      rewards: rewards.
      dones: whether the episode ended at the step (terminated or truncated).
    """

    advantages: jax.Array
    values: jax.Array
    rewards: jax.Array
    dones: jax.Array


def positive_value_loss(rollout: LevelRollout) -> jax.Array:
    """``mean_t max(A_t, 0)`` per level, float32 ``(N,)``."""
    return jnp.maximum(rollout.advantages, 0.0).mean(axis=0).astype(jnp.float32)


def mean_absolute_gae(rollout: LevelRollout) -> jax.Array:
    """``mean_t |A_t|`` per level, float32 ``(N,)``."""
    return jnp.abs(rollout.advantages).mean(axis=0).astype(jnp.float32)


def episode_returns_max(rewards: jax.Array, dones: jax.Array) -> jax.Array:
    """float32 ``(N,)``: the highest undiscounted return of an episode that ended within the
    rollout, or, for a level where none ended, the return of the unfinished episode so far."""

    def accumulate(carry, step):
        running, best, any_ended = carry
        reward, done = step
        running = running + reward
        best = jnp.where(done, jnp.maximum(best, running), best)
        any_ended = any_ended | done
        return (jnp.where(done, 0.0, running), best, any_ended), None

    batch = rewards.shape[1]
    start = (jnp.zeros(batch), jnp.full(batch, -jnp.inf), jnp.zeros(batch, bool))
    (running, best, any_ended), _ = jax.lax.scan(accumulate, start, (rewards, dones))
    return jnp.where(any_ended, best, running).astype(jnp.float32)


def max_mc(rollout: LevelRollout) -> jax.Array:
    """``mean_t (R_max - V(s_t))`` per level, float32 ``(N,)`` (module docstring)."""
    best = episode_returns_max(rollout.rewards, rollout.dones)
    return (best[None, :] - rollout.values).mean(axis=0).astype(jnp.float32)


SCORE_FUNCTIONS = {
    "positive_value_loss": positive_value_loss,
    "mean_absolute_gae": mean_absolute_gae,
    "max_mc": max_mc,
}
