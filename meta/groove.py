"""GROOVE's curricula over the levels LPG meta-trains on (Jackson et al. 2023), one switch.

A curriculum hands a new level to each agent that is born and, for ``plr``, scores the level
when the agent's life ends. Three, by ``curriculum``:

* ``random``: domain randomisation, a new level from the distribution's generator each time.
* ``frozen``: a fixed set of ``buffer_size`` levels sampled once at the start, drawn uniformly.
* ``plr``: prioritised level replay (``jaxrl_suite.learn.level_sampler.LevelSampler`` as it is):
  with ``replay_probability`` a buffered level drawn by its score, otherwise a new one; every
  level is scored when the agent trained on it dies, and inserted (or its score updated). The
  score (``score``):

  * ``alg_regret``, GROOVE's algorithmic regret: the return of an A2C agent trained from scratch
    on the level for the LPG agent's lifetime, minus the return of the LPG-trained agent at the
    end of its life. The A2C reference is computed once, when the level is scored, not at every
    meta-step (which the published code does and calls "very inefficient"), and kept in the
    buffer's extra data (``"reference_return"``), averaged over the times it was computed.
  * ``pvl`` (positive value loss) and ``maxmc`` (MaxMC), the UED scores of
    ``jaxrl_suite.learn.level_scores`` as they are, on the dying agent's last rollout with the
    meta-critic's values.

``algorithmic_regret`` joins ``level_scores`` beside PAIRED's regret.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

from jaxrl_suite.learn.level_sampler import LevelBufferState, LevelSampler

__all__ = [
    "CURRICULA",
    "SCORES",
    "Curriculum",
    "CurriculumState",
    "algorithmic_regret",
    "make_curriculum",
]

CURRICULA = ("random", "frozen", "plr")
SCORES = ("alg_regret", "pvl", "maxmc")


def algorithmic_regret(reference_return: jax.Array, agent_return: jax.Array) -> jax.Array:
    """GROOVE's algorithmic regret per level, float32 ``(N,)``: the return of the reference
    algorithm (A2C trained on the level for the agent's lifetime) minus that of the agent trained
    by the learned objective for the same lifetime. Inputs ``(N,)``."""
    return (jnp.asarray(reference_return) - jnp.asarray(agent_return)).astype(jnp.float32)


@struct.dataclass
class CurriculumState:
    """The level buffer (``frozen``: the fixed set; ``plr``: PLR's buffer with per-level
    ``{"reference_return", "reference_count", "max_return"}``); ``None`` for ``random``."""

    buffer: LevelBufferState | None


@dataclasses.dataclass(frozen=True, eq=False)
class Curriculum:
    """A curriculum's pure functions (module docstring); all jittable.

    Attributes:
      name, score: the settings.
      sampler: the ``LevelSampler`` (``plr`` and ``frozen``), else None.
      init: ``key -> CurriculumState``.
      draw: ``(key, state, count) -> (levels (count, ...), slots int32 (count,), state)``:
        levels for ``count`` new agents; ``slots`` is the buffer slot each came from, -1 for a
        new level from the generator.
      record: ``(state, levels, slots, scores, reference_returns, max_returns, valid) -> state``
        (``plr``): insert or rescore the levels of the agents that died (``valid`` bool
        ``(count,)`` marks which of the batch did), with their reference returns (for
        ``alg_regret``; NaN where none was computed) and best returns.
      cached_reference: ``(state, slots) -> (returns (count,), available bool (count,))``.
    """

    name: str
    score: str
    sampler: LevelSampler | None
    init: Any
    draw: Any
    record: Any
    cached_reference: Any


def make_curriculum(name: str, score: str, sample_level: Any, *, buffer_size: int = 4000,
                    replay_probability: float = 0.5, temperature: float = 1.0,
                    prioritization: str = "rank", staleness_coef: float = 0.3) -> Curriculum:
    """A ``Curriculum`` over the levels of ``sample_level(key) -> level``.

    Raises ``ValueError`` for an unknown curriculum or score, naming the accepted ones."""
    if name not in CURRICULA:
        raise ValueError(f"curriculum must be one of {CURRICULA}; got {name!r}.")
    if score not in SCORES:
        raise ValueError(f"score must be one of {SCORES}; got {score!r}.")
    sampler = None
    if name in ("frozen", "plr"):
        sampler = LevelSampler(capacity=buffer_size, prioritization=prioritization,
                               temperature=temperature, staleness_coef=staleness_coef,
                               replay_probability=replay_probability,
                               minimum_fill=1.0 if name == "plr" else 0.0,
                               duplicate_check=name == "plr")

    def init(key):
        if name == "random":
            return CurriculumState(None)
        example = sample_level(key)
        extra = {"reference_return": jnp.zeros((), jnp.float32),
                 "reference_count": jnp.zeros((), jnp.float32),
                 "max_return": jnp.full((), -jnp.inf, jnp.float32)}
        buffer = sampler.initialize(example, extra)
        if name == "frozen":
            levels = jax.vmap(sample_level)(jax.random.split(key, buffer_size))
            buffer = buffer.replace(levels=levels, filled=jnp.ones(buffer_size, bool))
        return CurriculumState(buffer)

    def draw(key, state, count):
        new_key, replay_key, choice_key = jax.random.split(key, 3)
        fresh = jax.vmap(sample_level)(jax.random.split(new_key, count))
        none = jnp.full((count,), -1, jnp.int32)
        if name == "random":
            return fresh, none, state
        if name == "frozen":
            slots = jax.random.randint(choice_key, (count,), 0, buffer_size)
            return sampler.get_levels(state.buffer, slots), slots.astype(jnp.int32), state
        # plr: each new agent independently replays (by score) or takes a new level.
        replay = jax.vmap(lambda k: sampler.should_replay(k, state.buffer))(
            jax.random.split(replay_key, count))
        can_replay = state.buffer.size > 0
        buffer, slots = jax.lax.cond(
            can_replay, lambda b: sampler.sample_replay_indices(choice_key, b, count),
            lambda b: (b, jnp.zeros((count,), jnp.int32)), state.buffer)
        replayed = sampler.get_levels(buffer, slots)
        levels = jax.tree.map(
            lambda r, f: jnp.where(replay.reshape((count,) + (1,) * (r.ndim - 1)), r, f),
            replayed, fresh)
        return levels, jnp.where(replay, slots, none), state.replace(buffer=buffer)

    def cached_reference(state, slots):
        if state.buffer is None:
            return (jnp.zeros(slots.shape, jnp.float32), jnp.zeros(slots.shape, bool))
        extra = sampler.get_extra(state.buffer, jnp.maximum(slots, 0))
        available = (slots >= 0) & (extra["reference_count"] > 0)
        return extra["reference_return"], available

    def record(state, levels, slots, scores, reference_returns, max_returns, valid):
        if name != "plr":
            return state

        def one(buffer, item):
            level, slot, level_score, reference, best, is_valid = item
            # A new level equal to a buffered one (another agent's, scored earlier in this
            # batch) joins that slot's running mean, as a replayed level does.
            found, index = sampler.find(buffer, level)
            slot = jnp.where(slot >= 0, slot, jnp.where(found, index, -1))
            # A replayed level keeps its slot (and its reference's running mean); a new one is
            # inserted like any PLR level, the reference stored with it.
            old = sampler.get_extra(buffer, jnp.maximum(slot, 0)[None])
            old = jax.tree.map(lambda x: x[0], old)
            has_reference = jnp.isfinite(reference)
            count = jnp.where(slot >= 0, old["reference_count"], 0.0)
            mean = jnp.where(slot >= 0, old["reference_return"], 0.0)
            new_count = count + has_reference
            new_mean = jnp.where(has_reference,
                                 mean + (jnp.where(has_reference, reference, 0.0) - mean)
                                 / jnp.maximum(new_count, 1.0), mean)
            extra = {"reference_return": new_mean.astype(jnp.float32),
                     "reference_count": new_count.astype(jnp.float32),
                     "max_return": jnp.maximum(jnp.where(slot >= 0, old["max_return"], -jnp.inf),
                                               best).astype(jnp.float32)}
            inserted, _ = sampler.insert(buffer, level, level_score, extra)
            return jax.tree.map(lambda a, b: jnp.where(is_valid, a, b), inserted, buffer), None

        buffer, _ = jax.lax.scan(one, state.buffer,
                                 (levels, slots, scores, reference_returns, max_returns, valid))
        return state.replace(buffer=buffer)

    return Curriculum(name, score, sampler, init, draw, record, cached_reference)
