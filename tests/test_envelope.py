"""Envelope Q-learning (``algos/morl/envelope.py``): learning Deep Sea Treasure's front, the
envelope target by hand, truncation, seeds under ``vmap``, errors, the run folder's front.

One training program is compiled for the learning tests (``learned``: 3 seeds in one ``vmap``,
shared by every test that reads a trained state) and one small one for the ``vmap`` check."""

from __future__ import annotations

import collections
import functools
import itertools
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxrl_suite
from jaxrl_suite.algos.morl import envelope
from jaxrl_suite.envs.mo.deep_sea_treasure import CONVEX_MAP, ROCK
from jaxrl_suite.learn.buffers import Transition
from jaxrl_suite.learn.networks import QNetwork
from jaxrl_suite.run import pareto

LEARNING_STEPS = 30_000  # the deep-sea-treasure preset's budget
SEEDS = 3


def deep_sea_front(sea_map: np.ndarray) -> np.ndarray:
    """The undiscounted front ``(treasures, 2)`` of a Deep Sea Treasure map: each treasure's
    value against minus its shortest path from (0, 0), by breadth-first search (rocks are
    walls; a treasure ends the episode, so paths do not pass through one)."""
    steps = {(0, 0): 0}
    queue = collections.deque([(0, 0)])
    while queue:
        row, column = queue.popleft()
        if sea_map[row, column] > 0:
            continue
        for dr, dc in ((-1, 0), (1, 0), (0, -1), (0, 1)):
            cell = (row + dr, column + dc)
            if (0 <= cell[0] < 11 and 0 <= cell[1] < 11 and cell not in steps
                    and sea_map[cell] != ROCK):
                steps[cell] = steps[(row, column)] + 1
                queue.append(cell)
    points = [(float(sea_map[cell]), -float(n)) for cell, n in steps.items() if sea_map[cell] > 0]
    return pareto.pareto_front(np.array(points))


TRUE_FRONT = deep_sea_front(CONVEX_MAP)


@functools.cache
def learned():
    """The preset on mo/deep-sea-treasure (the convex map) for 3 seeds, and each seed's greedy
    returns at the preset's ``eval_weights`` (100) equally spaced preferences."""
    env, params = jaxrl_suite.make("mo/deep-sea-treasure")
    config = envelope.preset_config("mo/deep-sea-treasure", total_steps=LEARNING_STEPS)
    train = envelope.make_train(config, env, params)
    result = jax.jit(jax.vmap(train))(jax.random.split(jax.random.key(0), SEEDS))
    weights = pareto.equally_spaced_weights(2, config.eval_weights)
    returns = np.stack([
        np.asarray(envelope.evaluate_front(train, jax.tree.map(lambda x, s=s: x[s], result.state),
                                           weights, jax.random.key(0)))
        for s in range(SEEDS)])
    return train, result, weights, returns


def points_found(returns: np.ndarray) -> int:
    """How many of the true front's points are among ``returns`` ``(n, 2)``."""
    return sum(bool(np.any(np.all(np.isclose(returns, point, atol=1e-4), axis=1)))
               for point in TRUE_FRONT)


def test_the_convex_map_has_the_ten_point_front_of_yang_et_al():
    assert TRUE_FRONT.shape == (10, 2)
    np.testing.assert_allclose(sorted(TRUE_FRONT[:, 1]), [-19, -17, -14, -13, -9, -8, -7, -5, -3,
                                                           -1])
    # Every point is supported by a linear preference at gamma 0.99, which is what a greedy
    # policy of a preference maximises: the front is convex.
    assert pareto.hypervolume(TRUE_FRONT, [0.0, -25.0]) == pytest.approx(401.8)


@pytest.mark.slow
def test_the_greedy_policies_find_most_of_the_front():
    # Measured at 30k env steps, 3 seeds of key 0: 9, 7 and 8 of the 10 points (and 6, 6, 8 and
    # 9, 6, 3 for keys 1 and 2, with 101 weights). An untrained network loops at every
    # preference (no point); a learner that only learned the nearest treasures finds 2-3.
    _, _, _, returns = learned()
    found = [points_found(r) for r in returns]
    assert np.mean(found) >= 5 and max(found) >= 7, found
    # The time-only preference takes the nearest treasure (0.7 in one step) in every seed.
    np.testing.assert_allclose(returns[:, -1], np.broadcast_to([0.7, -1.0], (SEEDS, 2)),
                               atol=1e-4)


@pytest.mark.slow
def test_the_found_front_has_a_large_hypervolume():
    # The true front's is 401.8 at the env's reference point (0, -25). Measured: 398, 373, 386
    # (keys 1, 2: 328-394, one 248). The first two treasures alone give 181.8, the first five
    # 311.5.
    train, _, _, returns = learned()
    reference = train.reference_point
    np.testing.assert_allclose(reference, [0.0, -25.0])
    volumes = [pareto.hypervolume(pareto.pareto_front(r), reference) for r in returns]
    assert np.mean(volumes) >= 300 and max(volumes) >= 370, volumes


@pytest.mark.slow
def test_training_stores_vector_rewards_and_each_episodes_preference():
    train, result, _, _ = learned()
    buffer = jax.tree.map(lambda x: np.asarray(x[0]), result.state.experience.buffer.storage)
    assert buffer.reward.shape[1:] == (2,)  # the vector reward, not w . r
    assert set(np.unique(buffer.reward[:, 1])) == {-1.0}  # the time objective
    preference = buffer.observation[:, -2:]
    assert np.all(preference >= 0) and np.allclose(preference.sum(-1), 1.0, atol=1e-5)
    # One preference per episode: many distinct ones, each shared by its episode's steps.
    assert len(np.unique(preference[:, 0])) > 100
    np.testing.assert_array_equal(buffer.next_observation[:, -2:], preference)
    metrics = jax.tree.map(np.asarray, result.metrics)
    assert metrics["episode_return"].shape == (SEEDS, train.num_updates, 2)
    # lambda: 0 -> 1 over the first half (the 1000 prefill steps count, as epsilon's do).
    assert np.all(metrics["homotopy"][:, 0] < 0.07)
    assert np.all(np.diff(metrics["homotopy"], axis=1) >= 0)
    np.testing.assert_allclose(metrics["homotopy"][:, -1], 1.0)
    np.testing.assert_allclose(metrics["epsilon"][:, -1], 0.05, atol=1e-6)


@pytest.mark.slow
def test_write_outputs_writes_the_front_and_its_metrics(tmp_path):
    train, result, weights, returns = learned()
    out = envelope.write_outputs(tmp_path, train, result.state)
    for seed in range(SEEDS):
        record = json.loads((tmp_path / f"front_seed{seed}.json").read_text())
        np.testing.assert_allclose(record["points"], returns[seed], atol=1e-6)
        np.testing.assert_allclose(record["metadata"]["weights"], weights)
        assert record["objective_names"] == ["treasure", "time"]
        metrics = record["metadata"]["metrics"]
        assert metrics == out["seeds"][seed]["metrics"]
        front = pareto.pareto_front(returns[seed])
        assert metrics["hypervolume"] == pytest.approx(pareto.hypervolume(front, [0.0, -25.0]))
        assert metrics["cardinality"] == len(front)
        assert (tmp_path / f"front_seed{seed}.csv").read_text().startswith(
            "policy,treasure,time,non_dominated")
    assert (tmp_path / "front.png").stat().st_size > 0


# --- the target ---------------------------------------------------------------------------------
def brute_force_target(reward, terminated, gamma, preferences, next_choose, next_value):
    """The envelope target by loops: for each pair (i, j) the (w', a) maximising
    w_ij . next_choose[i, w', a], valued by next_value."""
    batch, n, num_actions, _ = next_value.shape
    out = np.zeros((batch, n, reward.shape[-1]))
    for i, j in itertools.product(range(batch), range(n)):
        best = max(itertools.product(range(n), range(num_actions)),
                   key=lambda ma: preferences[i, j] @ next_choose[i, ma[0], ma[1]])
        out[i, j] = reward[i] + gamma * (1.0 - terminated[i]) * next_value[i, best[0], best[1]]
    return out


def test_the_envelope_target_maximises_over_actions_and_preferences_by_hand():
    # One transition, its set W = {(0.5, 0.5), (0.9, 0.1)}, two actions. Q(s', a, w') by the
    # choosing network:
    #   w'_0: a0 (1, 1), a1 (0, 3)     -> judged by (0.5, 0.5): 1.0, 1.5
    #   w'_1: a0 (4, 0), a1 (3, -1)    -> judged by (0.5, 0.5): 2.0, 1.0
    # so the first pair's maximum is (w'_1, a0): another preference's vector (the envelope),
    # not its own preference's best (w'_0, a1). The second pair, (0.9, 0.1), scores 1.0, 0.3,
    # 3.6, 2.6: (w'_1, a0) too.
    preferences = np.array([[[0.5, 0.5], [0.9, 0.1]]])
    next_choose = np.array([[[[1.0, 1.0], [0.0, 3.0]], [[4.0, 0.0], [3.0, -1.0]]]])
    next_value = next_choose + np.array([[[[10.0, 20.0], [30.0, 40.0]], [[50.0, 60.0],
                                                                         [70.0, 80.0]]]])
    reward = np.array([[1.0, -1.0]])
    target_of = jax.jit(envelope.envelope_target)  # one program per shape, not an op each
    target = target_of(jnp.asarray(reward), jnp.array([False]), 0.5,
                                      jnp.asarray(preferences), jnp.asarray(next_choose),
                                      jnp.asarray(next_value))
    # The target network's value at (w'_1, a0) is (54, 60): y = (1, -1) + 0.5 (54, 60).
    np.testing.assert_allclose(target, [[[28.0, 29.0], [28.0, 29.0]]])
    terminated = target_of(jnp.asarray(reward), jnp.array([True]), 0.5,
                                          jnp.asarray(preferences), jnp.asarray(next_choose),
                                          jnp.asarray(next_value))
    np.testing.assert_allclose(terminated, [[[1.0, -1.0], [1.0, -1.0]]])
    # A random batch against the loops: 3 transitions, 3 preferences, 4 actions, 3 objectives.
    rng = np.random.default_rng(0)
    reward = rng.normal(size=(3, 3))
    done = np.array([False, True, False])
    preferences = rng.dirichlet(np.ones(3), (3, 3))
    choose = rng.normal(size=(3, 3, 4, 3))
    value = rng.normal(size=(3, 3, 4, 3))
    np.testing.assert_allclose(
        target_of(jnp.asarray(reward), jnp.asarray(done), 0.9,
                                 jnp.asarray(preferences), jnp.asarray(choose),
                                 jnp.asarray(value)),
        brute_force_target(reward, done, 0.9, preferences, choose, value), rtol=1e-5, atol=1e-6)


def test_the_preference_set_keeps_the_episodes_own_preference_first():
    own = jnp.array([[0.2, 0.8], [1.0, 0.0]])
    sets = envelope.preference_sets(jax.random.key(0), own, 5)
    assert sets.shape == (2, 5, 2)
    np.testing.assert_array_equal(sets[:, 0], own)
    assert np.all(np.asarray(sets) >= 0) and np.allclose(sets.sum(-1), 1.0, atol=1e-6)
    observation = jnp.array([[3.0, 4.0, 0.2, 0.8], [5.0, 6.0, 1.0, 0.0]])
    paired = envelope.with_preference(observation, sets)
    np.testing.assert_array_equal(paired[:, :, :2], np.broadcast_to([[[3.0, 4.0]], [[5.0, 6.0]]],
                                                                     (2, 5, 2)))
    np.testing.assert_array_equal(paired[:, :, 2:], sets)


def test_a_truncated_transition_bootstraps_and_a_terminated_one_does_not():
    network = QNetwork((16,), 4 * 2)
    params = network.init(jax.random.key(1), jnp.zeros(4))
    target_params = network.init(jax.random.key(2), jnp.zeros(4))

    def q_values(p, observation):
        return network.apply(p, observation).reshape(*observation.shape[:-1], 4, 2)

    row = np.array([2.0, 3.0, 0.3, 0.7], np.float32)
    transitions = Transition(  # the same step twice: ended by truncation, then by termination
        observation=jnp.asarray(np.stack([row, row])), action=jnp.array([1, 1]),
        reward=jnp.array([[0.0, -1.0], [0.0, -1.0]]),
        next_observation=jnp.asarray(np.stack([row + [1, 0, 0, 0]] * 2)),
        terminated=jnp.array([False, True]), truncated=jnp.array([True, False]))
    preferences = jnp.asarray(np.random.default_rng(3).dirichlet(np.ones(2), (2, 3)),
                              jnp.float32)
    next_obs = np.asarray(envelope.with_preference(transitions.next_observation, preferences))
    q_of = jax.jit(q_values)
    for double_q in (True, False):
        target = np.asarray(jax.jit(envelope.td_targets, static_argnums=(0, 6))(
            q_values, params, target_params, transitions, preferences, 0.9, double_q))
        value = np.asarray(q_of(target_params, next_obs))
        choose = np.asarray(q_of(params, next_obs)) if double_q else value
        expected = brute_force_target(np.asarray(transitions.reward), np.array([0.0, 1.0]), 0.9,
                                      np.asarray(preferences), choose, value)
        np.testing.assert_allclose(target, expected, rtol=1e-5, atol=1e-6)
        # Truncated: r + gamma Q'(s', a*, w'*), not r; terminated: r exactly.
        assert not np.allclose(target[0], np.asarray(transitions.reward[0]))
        np.testing.assert_allclose(target[1], np.broadcast_to([0.0, -1.0], (3, 2)))


@functools.cache
def small_run():
    """A small run on Deep Sea Treasure with 3-step episodes (so most end by truncation), for
    2 seeds in one ``vmap`` and each seed alone: the second compiled training program."""
    env, params = jaxrl_suite.make("mo/deep-sea-treasure", max_steps_in_episode=3)
    config = envelope.Config(total_steps=600, num_envs=2, learning_starts=100, buffer_size=600,
                             batch_size=8, num_weight_samples=3, hidden_sizes=(16,),
                             target_update_interval=20)
    train = envelope.make_train(config, env, params)
    keys = jax.random.split(jax.random.key(4), 2)
    single = jax.jit(train)
    return train, jax.jit(jax.vmap(train))(keys), [single(key) for key in keys]


def test_a_truncated_steps_stored_next_observation_keeps_its_episodes_preference():
    # Episodes of 3 steps end by truncation unless they reach the 0.7 or 8.2 treasures. The
    # stored next observation of the last step is the final observation of that episode, with
    # that episode's preference, and the next step of the same env starts a new episode (at
    # (0, 0)) with a newly drawn one.
    _, _, (alone, _) = small_run()
    stored = jax.tree.map(np.asarray, alone.state.experience.buffer.storage)
    rows = np.flatnonzero(stored.truncated[:-2])  # the next row of the same env is 2 later
    assert len(rows) > 50 and not stored.terminated[rows].any()
    np.testing.assert_array_equal(stored.next_observation[rows, 2:], stored.observation[rows, 2:])
    assert np.all(stored.observation[rows + 2, 2:] != stored.observation[rows, 2:])
    np.testing.assert_array_equal(stored.observation[rows + 2, :2], 0.0)


# --- runs ---------------------------------------------------------------------------------------
def test_vmap_over_seeds_equals_separate_runs():
    _, batched, separate = small_run()
    for seed, alone in enumerate(separate):
        for name in ("td_loss", "vector_loss", "scalar_loss", "epsilon", "homotopy"):
            np.testing.assert_allclose(batched.metrics[name][seed], alone.metrics[name],
                                       rtol=1e-5, atol=1e-6, err_msg=name)
        jax.tree.map(lambda b, a, s=seed: np.testing.assert_allclose(b[s], a, rtol=1e-5,
                                                                     atol=1e-6),
                     batched.state.params, alone.state.params)
    assert not np.allclose(batched.metrics["td_loss"][0], batched.metrics["td_loss"][1])


def test_the_policy_for_the_harness_acts_on_the_raw_observation_at_equal_weights():
    train, _, (alone, _) = small_run()
    policy = train.make_policy(alone.state)
    raw, params = jaxrl_suite.make("mo/deep-sea-treasure", wrappers=False)
    observation, _ = raw.reset(jax.random.key(1), params)
    assert observation.shape == (2,)  # no preference: the policy appends 1 / k
    action, _ = policy.act(policy.params, jax.random.key(2), observation, None, jnp.bool_(True),
                           True)
    assert action.shape == () and 0 <= int(action) < 4
    np.testing.assert_allclose(policy.params[1], [0.5, 0.5])


# --- errors -------------------------------------------------------------------------------------
@pytest.mark.parametrize(("env_id", "overrides", "words"), [
    ("mo/mountaincar-continuous", {}, "Discrete action spaces"),
    ("gymnax/CartPole-v1", {}, "needs a multi-objective env"),
    ("mo/deep-sea-treasure", {"num_weight_samples": 0}, "num_weight_samples must be a positive"),
    ("mo/deep-sea-treasure", {"homotopy_end": 1.5}, "homotopy_end must be in"),
    ("mo/deep-sea-treasure", {"homotopy_fraction": 0.0}, "homotopy_fraction must be positive"),
    ("mo/deep-sea-treasure", {"reference_point": (0.0,)}, "reference_point must have 2 values"),
])
def test_what_envelope_cannot_run_is_refused_before_compiling(env_id, overrides, words):
    env, params = jaxrl_suite.make(env_id)
    with pytest.raises(ValueError, match=words):
        envelope.make_train(envelope.Config(**overrides), env, params)


def test_evaluate_front_refuses_weights_of_the_wrong_shape():
    env, params = jaxrl_suite.make("mo/deep-sea-treasure")
    train = envelope.make_train(envelope.Config(total_steps=200, num_envs=2, learning_starts=100,
                                                hidden_sizes=(8,)), env, params)
    with pytest.raises(ValueError, match=r"weights must be \(n, 2\)"):
        envelope.evaluate_front(train, None, np.ones((4, 3)) / 3, jax.random.key(0))


def test_envelope_is_registered_with_its_presets():
    from jaxrl_suite.run.algorithms import algorithm_spec, load_algorithm

    spec = algorithm_spec(load_algorithm("envelope"))
    assert spec is envelope.ALGORITHM and spec.default_env == "mo/deep-sea-treasure-concave"
    assert envelope.preset_config("mo/deep-sea-treasure-concave") == envelope.preset_config(
        "mo/deep-sea-treasure")
    assert envelope.preset_config("mo/mountaincar").scale_observations
    assert envelope.preset_config("mo/deep-sea-treasure").total_steps == LEARNING_STEPS
