"""C-MORL (algos/morl/cmorl.py): the barrier, the archive, one run on a toy two-objective env,
vmap over seeds, errors. Deep Sea Treasure's front: tests/test_morl_learning.py."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrl_suite.algos.morl import cmorl
from jaxrl_suite.learn.objectives import ObjectiveInputs, clipped_surrogate
from jaxrl_suite.run import pareto
from tests.toy_envs import CounterEnv, TwoArmEnv

CONFIG = cmorl.Config(num_preferences=4, init_steps=1024, extension_rounds=2,
                      extension_steps=512, num_envs=4, num_steps=32, learning_rate=3e-3,
                      reference_point=(-1.0, -1.0), archive_size=8)


def test_barrier_weights_are_one_over_t_times_the_slack_for_the_other_objectives():
    estimate = jnp.array([10.0, 4.0, 2.0])
    thresholds = jnp.array([9.0, 3.5, 2.5])  # slacks 1, 0.5, -0.5 (violated)
    weights = cmorl.barrier_weights(estimate, thresholds, jnp.int32(0), jnp.float32(20.0), 1e-2)
    np.testing.assert_allclose(weights, [0.0, 1 / (20 * 0.5), 1 / (20 * 1e-2)], rtol=1e-6)
    initial = cmorl.barrier_weights(estimate, thresholds, jnp.int32(-1), jnp.float32(20.0), 1e-2)
    np.testing.assert_array_equal(initial, 0.0)


def _inputs(key, extending, target, penalty):
    keys = jax.random.split(key, 4)
    per_objective = jax.random.normal(keys[0], (16, 2))
    log_ratio = 0.3 * jax.random.normal(keys[1], (16,))
    hparams = cmorl.Hyperparams.from_config(CONFIG).ppo.replace(meta={
        "target": jnp.asarray(target), "penalty": jnp.asarray(penalty),
        "extending": jnp.bool_(extending)})
    zeros = jnp.zeros(16)
    return ObjectiveInputs(
        ratio=jnp.exp(log_ratio), log_ratio=log_ratio, log_prob=zeros, old_log_prob=zeros,
        advantages=per_objective @ jnp.array([0.3, 0.7]), values=zeros, old_values=zeros,
        targets=zeros, entropy=zeros, progress=jnp.float32(0), epoch_progress=jnp.float32(0),
        hparams=hparams, objective_advantages=per_objective)


def test_the_constrained_objective_is_the_surrogate_of_the_barrier_weighted_advantage():
    key = jax.random.key(0)
    plain = _inputs(key, False, [1.0, 0.0], [0.0, 0.4])
    assert cmorl.constrained_objective(plain) == clipped_surrogate(plain)  # init stage
    extending = _inputs(key, True, [1.0, 0.0], [0.0, 0.4])
    combined = (extending.objective_advantages[:, 0]
                + 0.4 * extending.objective_advantages[:, 1]) / 1.4
    expected = clipped_surrogate(extending.replace(advantages=combined))
    np.testing.assert_allclose(cmorl.constrained_objective(extending), expected, rtol=1e-6)
    alone = _inputs(key, True, [0.0, 1.0], [0.0, 0.0])
    np.testing.assert_allclose(
        cmorl.constrained_objective(alone),
        clipped_surrogate(alone.replace(advantages=alone.objective_advantages[:, 1])), rtol=1e-6)


def test_the_archive_filtering_and_crowding_match_the_host_metrics():
    rng = np.random.default_rng(0)
    points = rng.integers(0, 6, (24, 3)).astype(np.float32)  # many ties and duplicates
    valid = rng.random(24) > 0.2
    mask = np.asarray(cmorl._non_dominated(jnp.asarray(points), jnp.asarray(valid)))
    expected = np.zeros(24, bool)
    expected[np.flatnonzero(valid)[pareto.pareto_mask(points[valid])]] = True
    np.testing.assert_array_equal(mask, expected)
    front = points[mask]
    crowding = np.asarray(cmorl._crowding(jnp.asarray(points), jnp.asarray(mask)))
    host = pareto.crowding_distance(front)
    finite = np.isfinite(host)
    np.testing.assert_array_equal(np.isinf(crowding[mask]), ~finite)
    np.testing.assert_allclose(crowding[mask][finite], host[finite], rtol=1e-5)
    assert np.all(crowding[~mask] == -np.inf)


def test_merging_keeps_the_front_first_and_drops_the_worst():
    archive = cmorl.Archive(jnp.array([[1.0, 1.0], [-jnp.inf, -jnp.inf]]),
                            jnp.array([True, False]), {"w": jnp.array([10.0, 11.0])})
    merged = cmorl._merge(archive, jnp.array([[0.0, 0.0], [2.0, 0.0], [0.0, 2.0]]),
                          {"w": jnp.array([20.0, 21.0, 22.0])})
    kept = sorted(map(tuple, np.asarray(merged.returns).tolist()))
    assert kept == [(0.0, 2.0), (2.0, 0.0)]  # the two extremes of the front (crowding inf)
    assert sorted(np.asarray(merged.policies["w"]).tolist()) == [21.0, 22.0]


@functools.cache
def _toy_run():
    env = TwoArmEnv()
    train = cmorl.make_train(CONFIG, env, env.default_params)
    keys = jax.random.split(jax.random.key(0), 2)
    run = jax.jit(jax.vmap(lambda key: train(key)))
    return train, run(keys), keys


def test_a_toy_run_finds_both_arms_and_extends_the_selected_policies():
    train, result, _ = _toy_run()
    assert train.num_updates == 8 + 2 * 4
    for seed in range(2):
        state = jax.tree.map(lambda x, s=seed: x[s], result.state)
        front = cmorl.archive_front(state)
        assert sorted(map(tuple, front.tolist())) == [(0.0, 5.0), (5.0, 0.0)]
        # Two selected (4 members // 2 objectives), each on both objectives; the other
        # objective kept above G - 0.1 |G|.
        np.testing.assert_array_equal(np.asarray(state.objective), [0, 1, 0, 1])
        thresholds = np.asarray(state.thresholds)
        for member in range(4):
            other = 1 - member % 2
            assert thresholds[member, other] in (0.0, 4.5)
        # Policy assignment: preference (1, 0) gets the arm paying the first objective.
        policy = cmorl.policy_for_preference(train, state, [1.0, 0.0])
        from jaxrl_suite.run.evaluation import evaluate
        returns = evaluate(policy, TwoArmEnv(), TwoArmEnv().default_params, jax.random.key(5),
                           2)["episode_return"]
        np.testing.assert_allclose(returns, [[5.0, 0.0], [5.0, 0.0]])
    hypervolume = np.asarray(result.metrics["hypervolume"])[:, -1]
    np.testing.assert_allclose(hypervolume, pareto.hypervolume([[0, 5], [5, 0]], [-1, -1]))


def test_vmap_over_seeds_equals_separate_runs():
    train, result, keys = _toy_run()
    alone = jax.jit(lambda key: train(key))(keys[1])
    for together, single in zip(jax.tree.leaves(jax.tree.map(lambda x: x[1], result.state)),
                                jax.tree.leaves(alone.state)):
        if jnp.issubdtype(together.dtype, jax.dtypes.prng_key):
            continue
        np.testing.assert_allclose(np.asarray(together), np.asarray(single), rtol=1e-4,
                                   atol=1e-5)


@pytest.mark.parametrize("change, words", [
    (dict(beta=1.5), "beta must be in"), (dict(reference_point=(0.0,)), "must have 2 values"),
    (dict(num_selected=3), "needs 6 member slots"), (dict(front_episodes=0), "front_episodes"),
])
def test_bad_settings_are_refused_in_plain_words(change, words):
    env = TwoArmEnv()
    with pytest.raises(ValueError, match=words):
        cmorl.make_train(cmorl.Config(**{**CONFIG.__dict__, **change}), env, env.default_params)


def test_a_scalar_env_and_a_missing_reference_point_are_refused():
    with pytest.raises(ValueError, match="multi-objective env"):
        cmorl.make_train(CONFIG, CounterEnv(), CounterEnv().default_params)
    with pytest.raises(ValueError, match="no hypervolume reference point"):
        cmorl.make_train(cmorl.Config(**{**CONFIG.__dict__, "reference_point": ()}),
                         TwoArmEnv(), TwoArmEnv().default_params)
