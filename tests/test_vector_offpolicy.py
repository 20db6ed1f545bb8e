"""SAC and TD3 on multi-objective envs (DESIGN.md s5): the vector TD targets and the ensemble
minimum chosen by ``w . Q`` checked by hand, the replay buffer's ``(k,)`` rewards, learning the
preference on a two-objective continuous toy env, ``vmap`` over preferences equal to separate
runs, and a wrong-length preference refused before compiling."""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrl_suite.algos import dqn, sac, td3
from jaxrl_suite.env.wrappers import AutoReset, EpisodeStats, auto_reset_env
from jaxrl_suite.learn.buffers import ReplayBuffer
from jaxrl_suite.learn.experience import (
    ExperienceCollector,
)
from jaxrl_suite.learn.preferences import (
    check_preference,
    min_by_preference,
)
from tests.conformance import jit_fast_compile
from tests.toy_envs import ContinuousConstantRewardEnv, ContinuousTwoArmEnv, TwoArmEnv

W = jnp.array([0.25, 0.75], jnp.float32)
# Two members, two samples, two objectives. Sample 0: w.Q = 1.75 and 2.5 -> member 0, whose
# vector (4, 1) is not the per-objective minimum (2, 1). Sample 1: w.Q = 3.0 and 0.75 -> member 1.
NEXT_Q = jnp.array([[[4.0, 1.0], [0.0, 4.0]],
                    [[2.0, 2.5], [3.0, 0.0]]], jnp.float32)
REWARD = jnp.array([[1.0, -1.0], [0.5, 2.0]], jnp.float32)
TERMINATED = jnp.array([False, True])


def test_the_ensemble_minimum_is_the_member_with_the_lowest_scalarised_value():
    np.testing.assert_array_equal(min_by_preference(NEXT_Q, W), [[4.0, 1.0], [3.0, 0.0]])
    # Scalar rewards: the elementwise minimum, as before.
    np.testing.assert_array_equal(min_by_preference(NEXT_Q[..., 0], None), [2.0, 0.0])


def test_td3_vector_target_by_hand():
    target = td3.td3_target(REWARD, TERMINATED, NEXT_Q, 0.5, W)
    # Sample 0 bootstraps from member 0's (4, 1); sample 1 terminated: the reward alone.
    np.testing.assert_allclose(target, [[1.0 + 0.5 * 4.0, -1.0 + 0.5 * 1.0], [0.5, 2.0]])


def test_sac_vector_target_by_hand_and_its_scalarisation_is_the_scalar_target():
    log_prob = jnp.array([-1.0, 0.5])
    alpha, gamma = 0.2, 0.5
    target = sac.soft_td_target(REWARD, TERMINATED, NEXT_Q, log_prob, alpha, gamma, W)
    # The entropy bonus -alpha log pi = 0.2 on every objective of sample 0.
    np.testing.assert_allclose(target, [[1.0 + 0.5 * 4.2, -1.0 + 0.5 * 1.2], [0.5, 2.0]],
                               rtol=1e-6)
    # With weights summing to 1, w . target is the scalar algorithm's target of w . r with
    # the scalarised members (w . Q_i).
    scalar = sac.soft_td_target(REWARD @ W, TERMINATED, NEXT_Q @ W, log_prob, alpha, gamma)
    np.testing.assert_allclose(target @ W, scalar, rtol=1e-6)


def test_replay_stores_a_vector_reward_and_a_scalar_one_unchanged():
    for env, shape in ((ContinuousTwoArmEnv(), (2,)), (ContinuousConstantRewardEnv(), ())):
        collector = ExperienceCollector(auto_reset_env(env), env.default_params,
                                        ReplayBuffer(8, 2))
        experience = collector.init(jax.random.key(0))
        assert experience.buffer.storage.reward.shape == (8, *shape)
        experience = collector.prefill(experience, jax.random.key(1), 2)
        rewards = np.asarray(experience.buffer.storage.reward[:4])
        if shape:  # the two objectives of the toy env sum to 1 on every step
            np.testing.assert_allclose(rewards.sum(-1), 1.0, rtol=1e-6)


def test_a_wrong_length_preference_is_refused_before_compiling():
    env = EpisodeStats(AutoReset(ContinuousTwoArmEnv()))
    for module, config in ((sac, SAC_CONFIG), (td3, TD3_CONFIG)):
        train = module.make_train(config, env, env.default_params)
        np.testing.assert_allclose(train.default_hparams.preference, [0.5, 0.5])
        bad = train.default_hparams.replace(preference=jnp.ones(3) / 3)
        with pytest.raises(ValueError, match=r"preference must have shape \(2,\).*\(3,\)"):
            jax.jit(train)(jax.random.key(0), bad)
        with pytest.raises(ValueError, match="preference must have shape"):
            train(jax.random.key(0), train.default_hparams.replace(preference=None))
    with pytest.raises(ValueError, match="reward is a scalar"):
        check_preference(jnp.ones(2), 0, "SAC")


def test_dqn_refuses_a_reward_vector_in_plain_words():
    env = EpisodeStats(AutoReset(TwoArmEnv()))
    with pytest.raises(ValueError, match=r"DQN handles scalar rewards.*shape \(2,\)"):
        dqn.make_train(dqn.Config(), env, env.default_params)


# --- learning the preference --------------------------------------------------------------------
SAC_CONFIG = sac.Config(total_steps=2_400, num_envs=4, buffer_size=2_400, learning_starts=400,
                        batch_size=64, gamma=0.9, tau=0.05, actor_learning_rate=3e-3,
                        critic_learning_rate=3e-3, alpha_learning_rate=3e-3,
                        initial_alpha=0.1, hidden_sizes=(32, 32))
TD3_CONFIG = td3.Config(total_steps=2_400, num_envs=4, buffer_size=2_400, learning_starts=400,
                        batch_size=64, train_frequency=1, gradient_steps=2, policy_delay=2,
                        gamma=0.9, tau=0.05, actor_learning_rate=3e-3,
                        critic_learning_rate=3e-3, hidden_sizes=(32, 32))
PREFERENCES = jnp.array([[1.0, 0.0], [0.0, 1.0]], jnp.float32)
CONFIGS = {"sac": (sac, SAC_CONFIG), "td3": (td3, TD3_CONFIG)}


def over_preferences(train):
    return jax.tree.map(lambda x: jnp.stack([jnp.asarray(x)] * 2),
                        train.default_hparams).replace(preference=PREFERENCES)


@functools.cache
def trained(name: str, discrete: bool = False):
    """Two preferences, (1, 0) and (0, 1), trained at once; returns the train and result."""
    module, config = CONFIGS[name]
    raw = TwoArmEnv() if discrete else ContinuousTwoArmEnv()
    env = EpisodeStats(AutoReset(raw))
    train = module.make_train(config, env, raw.default_params)
    keys = jax.random.split(jax.random.key(0), 2)
    return train, jit_fast_compile(jax.vmap(train))(keys, over_preferences(train))


def final_returns(result) -> np.ndarray:
    """``(preferences, k)`` mean per-objective return over the last quarter of updates."""
    returns = np.asarray(result.metrics["episode_return"])  # (preferences, updates, k)
    return np.nanmean(returns[:, -returns.shape[1] // 4:], axis=1)


@pytest.mark.slow
@pytest.mark.parametrize("name, discrete", [("sac", False), ("td3", False), ("sac", True)])
def test_off_policy_critics_learn_the_preference(name, discrete):
    train, result = trained(name, discrete)
    critic_leaves = jax.tree.leaves(result.state.critic_params)
    assert critic_leaves[-1].shape[-1] == (4 if discrete else 2)  # k (times actions) outputs
    final = final_returns(result)
    # Episodes are 5 steps paying 1 in all: the preferred objective near 5, the other near 0.
    # A learner that ignored the preference (or followed the wrong weight) would sit near
    # 2.5 / 2.5 or order them the other way.
    assert final[0, 0] > final[0, 1] + 3.0, final
    assert final[1, 1] > final[1, 0] + 3.0, final


@pytest.mark.slow
def test_a_vmap_over_preferences_equals_separate_runs():
    # A short run (10 updates): long ones drift apart in float32 round-off, batched or not.
    config = dataclasses.replace(SAC_CONFIG, total_steps=SAC_CONFIG.learning_starts + 40)
    env = EpisodeStats(AutoReset(ContinuousTwoArmEnv()))
    train = sac.make_train(config, env, env.default_params)
    keys = jax.random.split(jax.random.key(0), 2)
    hparams = over_preferences(train)
    batched = jit_fast_compile(jax.vmap(train))(keys, hparams)
    single = jit_fast_compile(train)
    for i in range(2):
        alone = single(keys[i], jax.tree.map(lambda x, i=i: x[i], hparams))
        for a, b in zip(jax.tree.leaves((alone.state.actor_params, alone.state.critic_params,
                                         alone.metrics)),
                        jax.tree.leaves((batched.state.actor_params,
                                         batched.state.critic_params, batched.metrics))):
            np.testing.assert_allclose(a, b[i], rtol=1e-5, atol=1e-6)
    # The two preferences really trained different critics.
    first = jax.tree.leaves(batched.state.critic_params)[0]
    assert not np.allclose(first[0], first[1])
