"""The level sampler of prioritised level replay (PLR), all inside ``jit`` (DESIGN.md section 4).

A fixed-capacity buffer of levels (a stacked level pytree) with a score, a timestamp and a
"filled" flag per slot. The sampler (static settings) is a set of pure functions of the buffer
(a pytree), so it lives in a jitted training state, is vmapped over seeds and is checkpointed
like any other state.

Replay distribution over the filled slots (Jiang et al., 2021)::

    P = (1 - staleness_coef) * P_score + staleness_coef * P_staleness

* ``P_score``:
  * ``"rank"``: ``h_i = (1 / rank_i) ** (1 / temperature)``, rank 1 the highest score. Equal
    scores are ranked by slot index (lower index first), as a stable sort does.
  * ``"topk"``: uniform over the ``topk`` highest-scoring slots (same tie rule).
  * ``"proportional"``: ``h_i = score_i ** (1 / temperature)`` (scores must be >= 0).
  normalised by their sum. Computed in log space, so a temperature near 0 tends to putting all
  mass on the best level instead of dividing by zero; with every ``h_i`` zero (proportional, all
  scores 0) the distribution is uniform over the filled slots.
* ``P_staleness``: proportional to ``clock - timestamp`` (how many sampler steps ago the level was
  last sampled or scored); uniform if all are 0.

Insertion (``insert``): a level equal to one already in the buffer (every leaf equal) only updates
that slot's score and timestamp (duplicate detection); otherwise it takes a free slot, or, when
the buffer is full, replaces the lowest-scoring level if its score is higher (and is dropped if
not). ``should_replay`` says replay (rather than a new level) with probability
``replay_probability`` once at least ``minimum_fill`` of the capacity is filled.

Per-level extra data (JaxUED's ``levels_extra``): a buffer initialised with an example ``extra``
pytree keeps one per slot, written by ``insert`` with the level (a duplicate's is overwritten,
as its score is) and by ``update_extra`` on replay (``mode="max"`` keeps a running maximum,
which is how robust PLR's MaxMC remembers the highest return ever achieved on each level).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

__all__ = ["LevelSampler", "LevelBufferState", "PRIORITIZATIONS"]

PRIORITIZATIONS = ("rank", "topk", "proportional")


@struct.dataclass
class LevelBufferState:
    """The sampler's state.

    Attributes:
      levels: the level pytree with a leading ``capacity`` axis.
      scores: float32 ``(capacity,)``.
      timestamps: int32 ``(capacity,)``: the clock when the slot was last sampled or scored.
      filled: bool ``(capacity,)``.
      clock: int32 ``()``: advances by one at every sample, insert and score update.
      extra: per-level extra data, a pytree with a leading ``capacity`` axis (``None`` when the
        buffer was initialised without an example): e.g. ``{"max_return": (capacity,)}``.
    """

    levels: Any
    scores: jax.Array
    timestamps: jax.Array
    filled: jax.Array
    clock: jax.Array
    extra: Any = None

    @property
    def size(self) -> jax.Array:
        """int32 scalar: how many slots hold a level."""
        return self.filled.sum().astype(jnp.int32)


@dataclasses.dataclass(frozen=True)
class LevelSampler:
    """PLR's level sampler (module docstring). All settings are static.

    Args:
      capacity: number of level slots.
      prioritization: ``"rank"``, ``"topk"`` or ``"proportional"``.
      temperature: > 0; sharpens (small) or flattens (large) ``P_score``.
      topk: the k of ``"topk"``.
      staleness_coef: in [0, 1], the weight of ``P_staleness``.
      replay_probability: in [0, 1], the chance ``should_replay`` says replay once filled enough.
      minimum_fill: in [0, 1], the fraction of the capacity that must be filled before replay.
      duplicate_check: whether ``insert`` looks for an equal level already in the buffer.
    """

    capacity: int = 4000
    prioritization: str = "rank"
    temperature: float = 0.3
    topk: int = 4
    staleness_coef: float = 0.3
    replay_probability: float = 0.5
    minimum_fill: float = 1.0
    duplicate_check: bool = True

    def __post_init__(self) -> None:
        if isinstance(self.capacity, bool) or not isinstance(self.capacity, int) or (
            self.capacity < 1
        ):
            raise ValueError(f"LevelSampler: capacity must be an integer >= 1; got "
                             f"{self.capacity!r}.")
        if self.prioritization not in PRIORITIZATIONS:
            raise ValueError(f"LevelSampler: prioritization must be one of {PRIORITIZATIONS}; "
                             f"got {self.prioritization!r}.")
        if not self.temperature > 0:
            raise ValueError(f"LevelSampler: temperature must be > 0; got {self.temperature!r}.")
        if self.prioritization == "topk" and (
            isinstance(self.topk, bool) or not isinstance(self.topk, int)
            or not 1 <= self.topk <= self.capacity
        ):
            raise ValueError(f"LevelSampler: topk must be an integer in 1..capacity "
                             f"({self.capacity}); got {self.topk!r}.")
        for name in ("staleness_coef", "replay_probability", "minimum_fill"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"LevelSampler: {name} must be in [0, 1]; got {value!r}.")

    # --- state --------------------------------------------------------------------------------
    def initialize(self, example_level: Any, example_extra: Any = None) -> LevelBufferState:
        """An empty buffer whose slots have the shapes and dtypes of ``example_level``; with
        ``example_extra``, each slot's extra data starts as ``example_extra`` (its value, not
        zeros: ``-inf`` for a running maximum)."""
        levels = jax.tree.map(
            lambda leaf: jnp.zeros((self.capacity, *jnp.shape(leaf)), jnp.result_type(leaf)),
            example_level,
        )
        extra = None if example_extra is None else jax.tree.map(
            lambda leaf: jnp.full((self.capacity, *jnp.shape(leaf)), leaf,
                                  jnp.result_type(leaf)),
            example_extra,
        )
        return LevelBufferState(
            levels=levels,
            scores=jnp.zeros(self.capacity, jnp.float32),
            timestamps=jnp.zeros(self.capacity, jnp.int32),
            filled=jnp.zeros(self.capacity, bool),
            clock=jnp.zeros((), jnp.int32),
            extra=extra,
        )

    # --- the replay distribution --------------------------------------------------------------
    def _score_order_rank(self, buffer: LevelBufferState) -> jax.Array:
        """int32 ``(capacity,)``: 1 for the highest score among filled slots, 2 for the next...;
        ties by slot index; empty slots rank after every filled one."""
        key = jnp.where(buffer.filled, -buffer.scores, jnp.inf)
        order = jnp.argsort(key, stable=True)
        return jnp.zeros(self.capacity, jnp.int32).at[order].set(
            jnp.arange(1, self.capacity + 1, dtype=jnp.int32)
        )

    def score_probabilities(self, buffer: LevelBufferState) -> jax.Array:
        """float32 ``(capacity,)``: ``P_score`` over the filled slots (zero elsewhere)."""
        filled = buffer.filled
        if self.prioritization == "topk":
            chosen = filled & (self._score_order_rank(buffer) <= self.topk)
            return _normalised(chosen.astype(jnp.float32), filled)
        if self.prioritization == "rank":
            log_weight = -jnp.log(self._score_order_rank(buffer).astype(jnp.float32))
        else:
            log_weight = jnp.log(jnp.maximum(buffer.scores, 0.0))  # -inf for a zero score
        return _normalised_from_log(log_weight / self.temperature, filled)

    def staleness_probabilities(self, buffer: LevelBufferState) -> jax.Array:
        """float32 ``(capacity,)``: ``P_staleness`` over the filled slots."""
        staleness = jnp.maximum(buffer.clock - buffer.timestamps, 0).astype(jnp.float32)
        return _normalised(jnp.where(buffer.filled, staleness, 0.0), buffer.filled)

    def replay_probabilities(self, buffer: LevelBufferState) -> jax.Array:
        """float32 ``(capacity,)``: the replay distribution ``P`` (module docstring)."""
        mixed = (1.0 - self.staleness_coef) * self.score_probabilities(buffer)
        return mixed + self.staleness_coef * self.staleness_probabilities(buffer)

    # --- sampling ------------------------------------------------------------------------------
    def should_replay(self, key: jax.Array, buffer: LevelBufferState) -> jax.Array:
        """Bool scalar: replay a buffered level (True) or try a new one (False)."""
        enough = buffer.size >= jnp.ceil(self.minimum_fill * self.capacity).astype(jnp.int32)
        enough = enough & (buffer.size > 0)
        return enough & (jax.random.uniform(key) < self.replay_probability)

    def sample_replay_indices(
        self, key: jax.Array, buffer: LevelBufferState, count: int
    ) -> tuple[LevelBufferState, jax.Array]:
        """``count`` slots drawn independently from ``P``; their timestamps become the clock.
        Returns ``(buffer, indices)``; the buffer must hold at least one level."""
        probabilities = self.replay_probabilities(buffer)
        indices = jax.random.choice(key, self.capacity, (count,), p=probabilities)
        clock = buffer.clock + 1
        return buffer.replace(timestamps=buffer.timestamps.at[indices].set(clock),
                              clock=clock), indices

    def get_levels(self, buffer: LevelBufferState, indices: jax.Array) -> Any:
        """The levels in slots ``indices`` (a stacked pytree)."""
        return jax.tree.map(lambda leaf: leaf[indices], buffer.levels)

    def get_extra(self, buffer: LevelBufferState, indices: jax.Array) -> Any:
        """The extra data of slots ``indices`` (a stacked pytree)."""
        return jax.tree.map(lambda leaf: leaf[indices], buffer.extra)

    def update_extra(self, buffer: LevelBufferState, indices: jax.Array, extra: Any,
                     mode: str = "set") -> LevelBufferState:
        """Write ``extra`` (leading axis like ``indices``) into slots ``indices``: ``"set"``
        (a later duplicate index wins) or ``"max"`` (each slot keeps the maximum of its value
        and every new one, duplicates included). The clock does not move."""
        if mode not in ("set", "max"):
            raise ValueError(f"LevelSampler.update_extra: mode must be 'set' or 'max'; got "
                             f"{mode!r}.")

        def write(stored, new):
            at = stored.at[indices]
            return at.set(new) if mode == "set" else at.max(new)

        return buffer.replace(extra=jax.tree.map(write, buffer.extra, extra))

    # --- scores and insertion ----------------------------------------------------------------
    def update_scores(
        self, buffer: LevelBufferState, indices: jax.Array, scores: jax.Array
    ) -> LevelBufferState:
        """Set the scores of slots ``indices`` (a later duplicate index wins) and stamp them."""
        clock = buffer.clock + 1
        return buffer.replace(
            scores=buffer.scores.at[indices].set(jnp.asarray(scores, jnp.float32)),
            timestamps=buffer.timestamps.at[indices].set(clock),
            clock=clock,
        )

    def find(self, buffer: LevelBufferState, level: Any) -> tuple[jax.Array, jax.Array]:
        """``(found, index)``: whether an equal level (every leaf equal) is buffered, and where."""
        def equal_per_slot(stored, candidate):
            same = stored == candidate
            return same.reshape(self.capacity, -1).all(axis=1)

        matches = jax.tree.leaves(jax.tree.map(equal_per_slot, buffer.levels, level))
        match = buffer.filled & jnp.all(jnp.stack(matches), axis=0)
        return match.any(), jnp.argmax(match)

    def insert(self, buffer: LevelBufferState, level: Any, score: Any,
               extra: Any = None) -> tuple[LevelBufferState, jax.Array]:
        """Insert one level with its score, and its extra data when the buffer keeps any
        (module docstring). Returns ``(buffer, index)``; ``index`` is -1 when a full buffer
        kept its levels because the score was too low."""
        score = jnp.asarray(score, jnp.float32)
        clock = buffer.clock + 1
        if self.duplicate_check:
            duplicate, duplicate_index = self.find(buffer, level)
        else:
            duplicate, duplicate_index = jnp.asarray(False), jnp.asarray(0)
        lowest = jnp.argmin(jnp.where(buffer.filled, buffer.scores, -jnp.inf))
        has_free = ~buffer.filled.all()
        free = jnp.argmin(buffer.filled)  # the first free slot
        replaces = ~has_free & (score > buffer.scores[lowest])
        index = jnp.where(duplicate, duplicate_index, jnp.where(has_free, free, lowest))
        accepted = duplicate | has_free | replaces
        write = jnp.where(accepted, index, self.capacity)  # out of range: dropped by mode="drop"
        levels = jax.tree.map(
            lambda stored, new: stored.at[write].set(new, mode="drop"), buffer.levels, level
        )
        if extra is not None:
            buffer = buffer.replace(extra=jax.tree.map(
                lambda stored, new: stored.at[write].set(new, mode="drop"), buffer.extra, extra))
        buffer = buffer.replace(
            levels=levels,
            scores=buffer.scores.at[write].set(score, mode="drop"),
            timestamps=buffer.timestamps.at[write].set(clock, mode="drop"),
            filled=buffer.filled.at[write].set(True, mode="drop"),
            clock=clock,
        )
        return buffer, jnp.where(accepted, index, -1)

    def insert_batch(
        self, buffer: LevelBufferState, levels: Any, scores: jax.Array, extra: Any = None
    ) -> tuple[LevelBufferState, jax.Array]:
        """Insert a batch of levels (leading axis; ``extra`` too when given) one after another.
        Returns the indices."""
        def insert_one(buffer, inputs):
            level, score, level_extra = inputs
            return self.insert(buffer, level, score, level_extra)

        return jax.lax.scan(insert_one, buffer,
                            (levels, jnp.asarray(scores, jnp.float32), extra))


def _normalised(weights: jax.Array, filled: jax.Array) -> jax.Array:
    """``weights / sum`` over filled slots; uniform over them if every weight is 0."""
    total = weights.sum()
    uniform = filled / jnp.maximum(filled.sum(), 1)
    return jnp.where(total > 0, weights / jnp.where(total > 0, total, 1.0), uniform)


def _normalised_from_log(log_weights: jax.Array, filled: jax.Array) -> jax.Array:
    """Softmax of ``log_weights`` over filled slots (max subtracted, so temperatures near 0 and
    large weights stay finite); uniform over them if every weight is 0 (log -inf)."""
    log_weights = jnp.where(filled, log_weights, -jnp.inf)
    top = jnp.max(log_weights)
    weights = jnp.where(jnp.isfinite(top), jnp.exp(log_weights - jnp.where(jnp.isfinite(top),
                                                                         top, 0.0)), 0.0)
    return _normalised(jnp.where(filled, weights, 0.0), filled)
