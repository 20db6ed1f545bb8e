"""Robust PLR's MaxMC with the historical maximum return (the level buffer's extra data).

The paper (Jiang et al., 2021) scores a level by ``mean_t (R_max - V(s_t))`` with ``R_max`` the
highest return ever achieved on it; the buffer remembers it per slot, a replay raises it, a new
level brings its rollout's best.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrl_suite.algos import ued
from tests.test_ued import MAZE, MAZE_PARAMS, initial_state, jitted_round, tiny_train

SETTINGS = dict(replay_probability=1.0, minimum_fill=0.5)


@pytest.mark.slow
def test_new_levels_bring_their_best_return_and_replays_keep_the_historical_maximum():
    train = tiny_train("robust_plr", **SETTINGS)
    sampler = train.ued["sampler"]
    state = initial_state(train)
    assert np.isneginf(np.asarray(state.buffer.extra["max_return"])).all()

    # A round on new levels (the buffer is below its minimum fill): each inserted level's extra
    # is its rollout's best return, in [0, 1] on the maze; empty slots keep -inf.
    new_state, _ = jitted_round("robust_plr", **SETTINGS)(state)
    assert int(new_state.last_kind) == ued.NEW
    remembered = np.asarray(new_state.buffer.extra["max_return"])
    filled = np.asarray(new_state.buffer.filled)
    assert ((remembered[filled] >= 0) & (remembered[filled] <= 1)).all(), remembered
    assert np.isneginf(remembered[~filled]).all()

    # Fill the buffer past its minimum with levels that once returned 7 (more than a maze
    # episode can: so any replay's R_max must be the remembered 7, not this rollout's best).
    count = 16
    levels = jax.vmap(MAZE.sample_level, in_axes=(0, None))(
        jax.random.split(jax.random.key(7), count), MAZE_PARAMS)
    buffer, _ = sampler.insert_batch(state.buffer, levels, jnp.ones(count),
                                     {"max_return": jnp.full(count, 7.0)})
    replayed_state, _ = jitted_round("robust_plr", **SETTINGS)(state.replace(buffer=buffer))
    assert int(replayed_state.last_kind) == ued.REPLAY
    slots = np.unique(np.asarray(replayed_state.last_indices))
    np.testing.assert_array_equal(np.asarray(replayed_state.buffer.extra["max_return"])[slots],
                                  7.0)
    # Scores are mean_t (7 - V): far above what this rollout's own returns (<= 1) could give,
    # since the untrained critic's values are near 0.
    scores = np.asarray(replayed_state.buffer.scores)[slots]
    assert (scores > 5.0).all(), scores
