"""Level scores for prioritised level replay: functions of a rollout on each level.

Every score function takes a ``LevelRollout`` (time-major arrays of a rollout of ``N`` envs, one
level per env, ``T`` steps, possibly several episodes) and returns float32 ``(N,)``: the
level's score, higher meaning "more worth replaying". The sampler
(``jaxrl_suite.learn.level_sampler``) never looks inside a score, so any function of this signature
plugs in: GROOVE's algorithmic regret later. PAIRED's regret, which needs two students, is
``paired_regret`` of ``completed_episode_returns`` of each.

* ``positive_value_loss`` (PLR's default, Jiang et al. 2021): the mean over the rollout of the
  positive part of the GAE advantage, ``mean_t max(A_t, 0)``.
* ``mean_absolute_gae`` (the original PLR's "L1 value loss"): ``mean_t |A_t|``.
* ``max_mc`` (Jiang et al. 2021, robust PLR): ``mean_t (R_max - V(s_t))``, with ``R_max`` the
  highest return ever achieved on that level, as the paper defines it: the rollout's
  ``max_returns`` when the caller keeps that history (UED keeps it in the level buffer's extra
  data), otherwise the highest return of an episode that ended in this rollout (when none
  ended, the return collected so far in the unfinished episode: ``episode_returns_max``).
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
    "episode_returns_max",
    "SCORE_FUNCTIONS",
    "completed_episode_returns",
    "paired_regret",
]


@struct.dataclass
class LevelRollout:
    """What a score may read of a rollout, all float32/bool ``(T, N)``, time first.

    Attributes:
      advantages: GAE advantages.
      values: value estimates ``V(s_t)``.
      rewards: rewards.
      dones: whether the episode ended at the step (terminated or truncated).
      max_returns: float32 ``(N,)``, the highest return ever achieved on each level, this
        rollout included, or ``None`` when the caller keeps no history.
    """

    advantages: jax.Array
    values: jax.Array
    rewards: jax.Array
    dones: jax.Array
    max_returns: jax.Array | None = None


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
    best = (episode_returns_max(rollout.rewards, rollout.dones) if rollout.max_returns is None
            else rollout.max_returns)
    return (best[None, :] - rollout.values).mean(axis=0).astype(jnp.float32)


SCORE_FUNCTIONS = {
    "positive_value_loss": positive_value_loss,
    "mean_absolute_gae": mean_absolute_gae,
    "max_mc": max_mc,
}


# --- regret estimates from episode returns (PAIRED) -----------------------------------------------
def completed_episode_returns(
    episode_return: jax.Array, returned_episode: jax.Array
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """``(mean, max, count)`` per level, float32/float32/int32 ``(N,)``, over the episodes that
    ended within a rollout: ``episode_return`` and ``returned_episode`` are ``(T, N)``, the
    return of the episode that ended at each step and whether one did (``EpisodeStats``'
    ``info``). A level where no episode ended gets 0 for mean and max."""
    ended = returned_episode.astype(bool)
    count = ended.sum(axis=0)
    total = jnp.where(ended, episode_return, 0.0).sum(axis=0)
    mean = jnp.where(count > 0, total / jnp.maximum(count, 1), 0.0)
    best = jnp.where(ended, episode_return, -jnp.inf).max(axis=0)
    best = jnp.where(count > 0, best, 0.0)
    return mean.astype(jnp.float32), best.astype(jnp.float32), count.astype(jnp.int32)


def paired_regret(protagonist_mean_return: jax.Array,
                  antagonist_max_return: jax.Array) -> jax.Array:
    """PAIRED's regret estimate per level (Dennis et al. 2020, in the "flexible" form of the DCD
    papers): the antagonist's best episode return minus the protagonist's mean episode return,
    float32 ``(N,)``. Inputs are ``(N,)`` (``completed_episode_returns``)."""
    return (antagonist_max_return - protagonist_mean_return).astype(jnp.float32)
