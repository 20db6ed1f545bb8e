"""The PLR level sampler: replay probabilities against hand-computed values (ties, zero scores,
temperatures near 0), staleness mixing, insertion with duplicates and replacement, sampling
frequencies, and bad settings."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrl_suite.learn.level_sampler import LevelBufferState, LevelSampler

EXAMPLE_LEVEL = {"walls": jnp.zeros((2, 2), bool), "goal": jnp.zeros(2, jnp.int32)}


def level(number: int) -> dict[str, jax.Array]:
    """A distinct small level per number."""
    return {
        "walls": jnp.asarray(np.unpackbits(np.uint8(number))[-4:].reshape(2, 2).astype(bool)),
        "goal": jnp.asarray([number, 2 * number], jnp.int32),
    }


def buffer_with(sampler: LevelSampler, scores, timestamps=None, clock=0) -> LevelBufferState:
    """A buffer whose first len(scores) slots are filled with distinct levels and scores."""
    buffer = sampler.initialize(EXAMPLE_LEVEL)
    count = len(scores)
    if count == 0:
        return buffer.replace(clock=jnp.int32(clock))
    levels = jax.tree.map(lambda *xs: jnp.stack(xs), *[level(i) for i in range(count)])
    buffer = buffer.replace(
        levels=jax.tree.map(lambda stored, new: stored.at[:count].set(new), buffer.levels,
                            levels),
        scores=buffer.scores.at[:count].set(jnp.asarray(scores, jnp.float32)),
        filled=buffer.filled.at[:count].set(True),
        clock=jnp.int32(clock),
    )
    if timestamps is not None:
        buffer = buffer.replace(
            timestamps=buffer.timestamps.at[:count].set(jnp.asarray(timestamps, jnp.int32))
        )
    return buffer


def probabilities(sampler: LevelSampler, buffer: LevelBufferState,
                  kind: str = "score") -> np.ndarray:
    function = {"score": sampler.score_probabilities,
                "staleness": sampler.staleness_probabilities,
                "replay": sampler.replay_probabilities}[kind]
    return np.asarray(jax.jit(function)(buffer))


@pytest.mark.parametrize(
    "scores, temperature, expected",
    [
        ([3.0, 1.0, 2.0], 1.0, [6 / 11, 2 / 11, 3 / 11]),  # ranks 1, 3, 2
        ([3.0, 1.0, 2.0], 0.5, [36 / 49, 4 / 49, 9 / 49]),  # (1 / rank) ** 2
        ([2.0, 2.0, 1.0], 1.0, [6 / 11, 3 / 11, 2 / 11]),  # a tie: the lower slot ranks first
        ([0.0, 0.0, 0.0], 1.0, [6 / 11, 3 / 11, 2 / 11]),  # zero scores still rank
        ([3.0, 1.0, 2.0], 1e-6, [1.0, 0.0, 0.0]),  # temperature near 0: the best level
    ],
)
def test_rank_prioritisation_by_hand(scores, temperature, expected):
    sampler = LevelSampler(capacity=5, temperature=temperature, staleness_coef=0.0)
    got = probabilities(sampler, buffer_with(sampler, scores))
    assert np.isfinite(got).all()
    np.testing.assert_allclose(got, [*expected, 0.0, 0.0], rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize(
    "scores, temperature, expected",
    [
        ([1.0, 3.0, 0.0, 4.0], 1.0, [1 / 8, 3 / 8, 0.0, 4 / 8]),
        ([1.0, 3.0, 0.0, 4.0], 0.5, [1 / 26, 9 / 26, 0.0, 16 / 26]),  # score ** 2, not / 0.5
        ([0.0, 0.0, 0.0, 0.0], 1.0, [0.25, 0.25, 0.25, 0.25]),  # all zero: uniform, no 0 / 0
        ([1.0, 3.0, 0.0, 4.0], 1e-6, [0.0, 0.0, 0.0, 1.0]),
        ([2.0, 2.0, 0.0, 1.0], 1e-6, [0.5, 0.5, 0.0, 0.0]),  # a tie at the top shares the mass
    ],
)
def test_proportional_prioritisation_by_hand(scores, temperature, expected):
    sampler = LevelSampler(capacity=6, prioritization="proportional", temperature=temperature,
                           staleness_coef=0.0)
    got = probabilities(sampler, buffer_with(sampler, scores))
    assert np.isfinite(got).all()
    np.testing.assert_allclose(got, [*expected, 0.0, 0.0], rtol=1e-5, atol=1e-7)


def test_topk_prioritisation_by_hand():
    sampler = LevelSampler(capacity=5, prioritization="topk", topk=2, staleness_coef=0.0)
    got = probabilities(sampler, buffer_with(sampler, [3.0, 1.0, 2.0, 5.0]))
    np.testing.assert_allclose(got, [0.5, 0.0, 0.0, 0.5, 0.0])
    tied = probabilities(sampler, buffer_with(sampler, [1.0, 4.0, 4.0, 4.0]))
    np.testing.assert_allclose(tied, [0.0, 0.5, 0.5, 0.0, 0.0])  # ties by slot index


def test_staleness_and_mixing_by_hand():
    sampler = LevelSampler(capacity=4, temperature=1.0, staleness_coef=0.3)
    buffer = buffer_with(sampler, [3.0, 1.0, 2.0], timestamps=[10, 6, 8], clock=10)
    staleness = probabilities(sampler, buffer, "staleness")
    np.testing.assert_allclose(staleness, [0.0, 2 / 3, 1 / 3, 0.0], rtol=1e-6)
    expected = 0.7 * np.array([6 / 11, 2 / 11, 3 / 11, 0.0]) + 0.3 * staleness
    np.testing.assert_allclose(probabilities(sampler, buffer, "replay"), expected, rtol=1e-5)
    fresh = buffer_with(sampler, [3.0, 1.0, 2.0], timestamps=[4, 4, 4], clock=4)
    np.testing.assert_allclose(probabilities(sampler, fresh, "staleness"),
                               [1 / 3, 1 / 3, 1 / 3, 0.0], rtol=1e-6)  # all fresh: uniform


def test_insert_fills_detects_duplicates_and_replaces_the_lowest():
    sampler = LevelSampler(capacity=3)
    insert = jax.jit(sampler.insert)
    buffer = sampler.initialize(EXAMPLE_LEVEL)
    for number, score in enumerate([0.5, 0.2, 0.9]):
        buffer, index = insert(buffer, level(number), score)
        assert int(index) == number
    assert int(buffer.size) == 3
    buffer, index = insert(buffer, level(1), 0.7)  # a duplicate: its score is updated
    assert int(index) == 1 and int(buffer.size) == 3
    np.testing.assert_allclose(buffer.scores, [0.5, 0.7, 0.9])
    buffer, index = insert(buffer, level(7), 0.1)  # full, lower than every score: dropped
    assert int(index) == -1
    assert not bool(sampler.find(buffer, level(7))[0])
    buffer, index = insert(buffer, level(8), 0.6)  # full: replaces the lowest (slot 0, 0.5)
    assert int(index) == 0
    np.testing.assert_allclose(buffer.scores, [0.6, 0.7, 0.9])
    found, where = sampler.find(buffer, level(8))
    assert bool(found) and int(where) == 0
    assert int(buffer.clock) == 6 and int(buffer.timestamps[0]) == 6


def test_insert_without_duplicate_check_stores_copies():
    sampler = LevelSampler(capacity=3, duplicate_check=False)
    buffer = sampler.initialize(EXAMPLE_LEVEL)
    levels = jax.tree.map(lambda *xs: jnp.stack(xs), level(2), level(2))
    buffer, indices = jax.jit(sampler.insert_batch)(buffer, levels, jnp.array([1.0, 2.0]))
    np.testing.assert_array_equal(indices, [0, 1])
    assert int(buffer.size) == 2


def test_should_replay_waits_for_the_minimum_fill():
    def replay_decisions(sampler, scores, count=20):
        keys = jax.random.split(jax.random.key(count), count)
        decide = jax.jit(jax.vmap(sampler.should_replay, in_axes=(0, None)))
        return np.asarray(decide(keys, buffer_with(sampler, scores)))

    sampler = LevelSampler(capacity=4, replay_probability=1.0, minimum_fill=0.5)
    assert not replay_decisions(sampler, [1.0]).any()  # 1 of 4 filled, 2 needed
    assert replay_decisions(sampler, [1.0, 2.0]).all()
    never = LevelSampler(capacity=4, replay_probability=0.0, minimum_fill=0.0)
    assert not replay_decisions(never, [1.0, 2.0]).any()
    empty = LevelSampler(capacity=4, replay_probability=1.0, minimum_fill=0.0)
    assert not replay_decisions(empty, []).any()  # nothing to replay yet
    half = LevelSampler(capacity=4, replay_probability=0.5, minimum_fill=0.0)
    assert 0.45 < replay_decisions(half, [1.0], count=4000).mean() < 0.55


def test_sampling_follows_the_replay_distribution_and_stamps_the_clock():
    sampler = LevelSampler(capacity=5, temperature=1.0, staleness_coef=0.0)
    buffer = buffer_with(sampler, [3.0, 1.0, 2.0], clock=5)
    sample = jax.jit(sampler.sample_replay_indices, static_argnums=2)
    new_buffer, indices = sample(jax.random.key(3), buffer, 20000)
    frequencies = np.bincount(np.asarray(indices), minlength=5) / 20000
    np.testing.assert_allclose(frequencies, [6 / 11, 2 / 11, 3 / 11, 0, 0], atol=0.015)
    assert int(new_buffer.clock) == 6
    assert (np.asarray(new_buffer.timestamps)[:3] == 6).all()
    levels = sampler.get_levels(new_buffer, jnp.array([2, 0]))
    np.testing.assert_array_equal(levels["goal"], [[2, 4], [0, 0]])


def test_update_scores_and_vmap_over_seeds():
    sampler = LevelSampler(capacity=3)
    buffers = jax.vmap(lambda _: buffer_with(sampler, [1.0, 2.0, 3.0]))(jnp.arange(2))
    updated = jax.jit(jax.vmap(sampler.update_scores, in_axes=(0, None, 0)))(
        buffers, jnp.array([0, 2]), jnp.array([[5.0, 6.0], [7.0, 8.0]])
    )
    np.testing.assert_allclose(updated.scores, [[5.0, 2.0, 6.0], [7.0, 2.0, 8.0]])
    np.testing.assert_array_equal(updated.timestamps[:, [0, 2]], 1)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"capacity": 0}, "capacity must be an integer >= 1"),
        ({"prioritization": "softmax"}, "prioritization must be one of"),
        ({"temperature": 0.0}, "temperature must be > 0"),
        ({"prioritization": "topk", "topk": 9, "capacity": 4}, "topk must be an integer in"),
        ({"staleness_coef": 1.5}, "staleness_coef must be in"),
        ({"replay_probability": -0.1}, "replay_probability must be in"),
    ],
)
def test_bad_settings_raise_clear_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        LevelSampler(**kwargs)


# --- level scores -------------------------------------------------------------------------------
def test_level_scores_by_hand():
    from jaxrl_suite.learn.level_scores import (
        LevelRollout,
        episode_returns_max,
        max_mc,
        mean_absolute_gae,
        positive_value_loss,
    )

    # Two levels, four steps. Level 0: episodes end at steps 1 and 3 with returns 1 and 3.
    # Level 1: no episode ends; 0.5 collected so far.
    rollout = LevelRollout(
        advantages=jnp.array([[1.0, -2.0], [-1.0, 0.5], [3.0, 0.0], [0.0, -0.5]]),
        values=jnp.array([[0.5, 0.1], [0.5, 0.1], [1.0, 0.2], [2.0, 0.2]]),
        rewards=jnp.array([[0.0, 0.0], [1.0, 0.5], [1.0, 0.0], [2.0, 0.0]]),
        dones=jnp.array([[False, False], [True, False], [False, False], [True, False]]),
    )
    np.testing.assert_allclose(positive_value_loss(rollout), [4 / 4, 0.5 / 4])
    np.testing.assert_allclose(mean_absolute_gae(rollout), [5 / 4, 3 / 4])
    np.testing.assert_allclose(episode_returns_max(rollout.rewards, rollout.dones), [3.0, 0.5])
    # (3 - 0.5) + (3 - 0.5) + (3 - 1) + (3 - 2) = 8; (0.5 - 0.1) * 2 + (0.5 - 0.2) * 2 = 1.4
    np.testing.assert_allclose(max_mc(rollout), [8 / 4, 1.4 / 4], rtol=1e-6)
    # With a history (robust PLR as published): R_max is the highest return ever achieved on
    # the level, e.g. 5 from an earlier visit to level 0 and 0.5 (this rollout) for level 1:
    # (5 - 0.5) * 2 + (5 - 1) + (5 - 2) = 16; level 1 as before.
    remembered = rollout.replace(max_returns=jnp.array([5.0, 0.5]))
    np.testing.assert_allclose(max_mc(remembered), [16 / 4, 1.4 / 4], rtol=1e-6)


def test_per_level_extra_data_is_inserted_kept_as_a_running_maximum_and_read_back():
    sampler = LevelSampler(capacity=3, replay_probability=1.0, minimum_fill=0.0)
    buffer = sampler.initialize(EXAMPLE_LEVEL, {"max_return": jnp.float32(-jnp.inf)})
    np.testing.assert_array_equal(buffer.extra["max_return"], [-np.inf] * 3)
    levels = jax.tree.map(lambda *xs: jnp.stack(xs), level(1), level(2))
    buffer, indices = sampler.insert_batch(buffer, levels, jnp.array([0.5, 0.7]),
                                           {"max_return": jnp.array([1.0, 2.0])})
    np.testing.assert_array_equal(indices, [0, 1])
    np.testing.assert_array_equal(buffer.extra["max_return"], [1.0, 2.0, -np.inf])
    # A replay batch that drew slot 0 twice (returns 3 and 0.5) and slot 1 once (return 1):
    # the maximum is kept per slot, whatever the order of the duplicates.
    buffer = sampler.update_extra(buffer, jnp.array([0, 1, 0]),
                                  {"max_return": jnp.array([3.0, 1.0, 0.5])}, "max")
    np.testing.assert_array_equal(buffer.extra["max_return"], [3.0, 2.0, -np.inf])
    np.testing.assert_array_equal(sampler.get_extra(buffer, jnp.array([1, 0]))["max_return"],
                                  [2.0, 3.0])
    # Inserting a duplicate of level 2 overwrites its extra data, as it does its score; a
    # "set" update writes the value given.
    buffer, index = sampler.insert(buffer, level(2), 0.9, {"max_return": jnp.float32(0.25)})
    assert int(index) == 1
    np.testing.assert_array_equal(buffer.extra["max_return"], [3.0, 0.25, -np.inf])
    buffer = sampler.update_extra(buffer, jnp.array([0]), {"max_return": jnp.array([-1.0])})
    np.testing.assert_array_equal(buffer.extra["max_return"], [-1.0, 0.25, -np.inf])
    with pytest.raises(ValueError, match="mode must be 'set' or 'max'"):
        sampler.update_extra(buffer, jnp.array([0]), {"max_return": jnp.array([1.0])}, "min")
    # A buffer without extra data keeps none, and insert ignores a missing extra.
    plain, _ = sampler.insert(sampler.initialize(EXAMPLE_LEVEL), level(3), 1.0)
    assert plain.extra is None
