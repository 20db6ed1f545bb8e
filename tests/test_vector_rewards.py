"""Vector (multi-objective) rewards through the stack: GAE and n-step returns per objective,
episode metrics per objective (no broadcast with one env), NormalizeReward per objective,
PPO's vector critic and preference scalarisation vmapped over preferences, and the harness's
per-objective CSV columns, plot and evaluation."""

from __future__ import annotations

import csv
import functools
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxrl_suite
from jaxrl_suite.algos import ppo
from jaxrl_suite.env.wrappers import (
    AutoReset,
    EpisodeStats,
    NormalizeReward,
    finished_episode_metrics,
)
from jaxrl_suite.learn.advantages import generalized_advantages, n_step_returns
from tests.toy_envs import TwoArmEnv, VectorRewardCounterEnv


def test_gae_of_a_vector_reward_is_the_gae_of_each_objective():
    keys = jax.random.split(jax.random.key(0), 4)
    rewards = jax.random.normal(keys[0], (6, 3, 2))
    values = jax.random.normal(keys[1], (6, 3, 2))
    next_values = jax.random.normal(keys[2], (6, 3, 2))
    terminated = jax.random.bernoulli(keys[3], 0.2, (6, 3))
    truncated = jnp.zeros((6, 3), bool).at[2, 1].set(True)
    advantages, targets = generalized_advantages(rewards, values, next_values, terminated,
                                                 truncated, 0.9, 0.8)
    assert advantages.shape == (6, 3, 2)
    for k in range(2):
        alone, alone_targets = generalized_advantages(
            rewards[..., k], values[..., k], next_values[..., k], terminated, truncated, 0.9, 0.8)
        np.testing.assert_allclose(advantages[..., k], alone, rtol=1e-6)
        np.testing.assert_allclose(targets[..., k], alone_targets, rtol=1e-6)


def test_n_step_returns_of_a_vector_reward_by_objective():
    rewards = jnp.array([[[1.0, 10.0], [2.0, 20.0], [4.0, 40.0]]])  # (batch 1, n 3, k 2)
    terminated = jnp.array([[False, True, False]])
    truncated = jnp.zeros((1, 3), bool)
    available = jnp.ones((1, 3), bool)
    returns, discount, last = n_step_returns(rewards, terminated, truncated, available, 0.5)
    # The episode ends at step 1: 1 + 0.5 * 2 = 2 and 10 + 0.5 * 20 = 20; no bootstrap.
    np.testing.assert_allclose(returns, [[2.0, 20.0]])
    np.testing.assert_allclose(discount, [0.0])
    assert int(last[0]) == 1


def test_episode_metrics_are_per_objective_and_never_broadcast_over_one_env():
    # One env (N = 1), four steps, two objectives; episodes end at steps 1 and 3.
    info = {
        "returned_episode": jnp.array([[False], [True], [False], [True]]),
        "episode_return": jnp.array([[[1.0, 0.0]], [[3.0, 1.0]], [[0.0, 0.0]], [[5.0, 3.0]]]),
        "episode_length": jnp.array([[1], [2], [1], [2]]),
    }
    metrics = finished_episode_metrics(info)
    np.testing.assert_allclose(metrics["episode_return"], [4.0, 2.0])  # not a (4, 4, 2) mix
    np.testing.assert_allclose(metrics["episode_length"], 2.0)
    assert int(metrics["episodes_finished"]) == 2
    with pytest.raises(ValueError, match="does not start with the episode flags' shape"):
        finished_episode_metrics({**info, "episode_length": jnp.zeros((3, 1))})


def test_normalize_reward_scales_each_objective_by_its_own_return_std():
    env = NormalizeReward(EpisodeStats(AutoReset(VectorRewardCounterEnv())), gamma=0.9)
    params = env.default_params
    obs, state = env.reset(jax.random.key(0), params)
    assert state.return_stats.var.shape == (2,)
    rewards = []
    for step in range(6):
        obs, state, reward, *_ = env.step(jax.random.key(step), state, jnp.int32(1), params)
        rewards.append(np.asarray(reward))
    # Objective 1 pays 1 every step, objective 0 pays 2 (action 1): their returns' stds differ,
    # so do the scales; each is r / sqrt(var + 1e-8) of its own running statistics.
    np.testing.assert_allclose(rewards[-1], np.array([2.0, 1.0]) / np.sqrt(
        np.asarray(state.return_stats.var) + 1e-8), rtol=1e-5)
    assert not np.isclose(np.asarray(state.return_stats.var)[0],
                          np.asarray(state.return_stats.var)[1])


MO_CONFIG = ppo.Config(total_steps=60 * 8 * 5, num_envs=8, num_steps=5, update_epochs=4,
                       num_minibatches=2, learning_rate=1e-2, anneal_lr=False,
                       entropy_coef=0.0, hidden_sizes=(16,))


def two_arm():
    env = TwoArmEnv()
    return EpisodeStats(AutoReset(env)), env.default_params


@functools.cache
def trained_over_preferences():
    env, params = two_arm()
    train = ppo.make_train(MO_CONFIG, env, params)
    preferences = jnp.array([[0.9, 0.1], [0.1, 0.9]], jnp.float32)
    hparams = jax.tree.map(lambda x: jnp.stack([x, x]), train.default_hparams).replace(
        preference=preferences)
    keys = jax.random.split(jax.random.key(0), 2)
    return train, jax.jit(jax.vmap(train))(keys, hparams)


def test_ppo_refuses_a_wrong_length_preference_while_tracing():
    env, params = two_arm()
    train = ppo.make_train(MO_CONFIG, env, params)
    bad = train.default_hparams.replace(preference=jnp.ones(3) / 3)
    with pytest.raises(ValueError, match=r"PPO.*preference must have shape \(2,\).*\(3,\)"):
        jax.eval_shape(train.initial_state, jax.random.key(0), bad)


@pytest.mark.slow
def test_ppo_has_one_value_per_objective_and_equal_default_weights():
    train, result = trained_over_preferences()
    np.testing.assert_allclose(train.default_hparams.preference, [0.5, 0.5])
    critic_out = jax.tree.leaves(result.state.params["critic"])
    assert any(leaf.shape[-1] == 2 for leaf in critic_out)
    assert result.metrics["episode_return"].shape == (2, 60, 2)  # (preferences, updates, k)


@pytest.mark.slow
def test_a_vmap_over_preferences_trains_a_set_of_different_policies():
    _, result = trained_over_preferences()
    final = np.nanmean(np.asarray(result.metrics["episode_return"])[:, -10:], axis=1)
    # Episodes are 5 steps: the preferred arm's objective approaches 5, the other 0.
    assert final[0, 0] > 4.5 and final[0, 1] < 0.5, final
    assert final[1, 1] > 4.5 and final[1, 0] < 0.5, final


@pytest.mark.slow
def test_the_harness_writes_per_objective_columns_plot_and_evaluation(tmp_path):
    from jaxrl_suite.run.harness import RunOptions, run_training

    jaxrl_suite.register("test/TwoArm-v0", "tests.toy_envs:TwoArmEnv", overwrite=True)
    config = ppo.Config(**{**MO_CONFIG.__dict__, "total_steps": 4 * 8 * 5})
    options = RunOptions(env="test/TwoArm-v0", seeds=2, run_dir=str(tmp_path / "run"),
                         no_progress=True, eval_episodes=2, tensorboard=False)
    result, run_dir = run_training(ppo, config, options)
    with (run_dir / "metrics.csv").open(newline="") as file:
        header = next(csv.reader(file))
    assert {"episode_return[0]", "episode_return[1]"} <= set(header)
    assert "episode_return" not in header
    assert (run_dir / "learning_curve.png").exists()
    evaluation = json.loads((run_dir / "eval.json").read_text())["deterministic"]
    per_objective = np.asarray(evaluation["per_objective"]["mean_return"])
    assert per_objective.shape == (2,)
    np.testing.assert_allclose(per_objective.sum(), evaluation["mean_return"], rtol=1e-5)
    # Every evaluated episode is 5 steps, one objective paid per step.
    np.testing.assert_allclose(per_objective.sum(), 5.0, rtol=1e-5)
