"""Preference sets (algos/morl/preference_set.py): PPO and SAC vmapped over a weight set, and
the preference-conditioned variant, on toy two-objective envs whose best policy per preference
is known (the arm of the larger weight)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrl_suite.algos import ppo, sac
from jaxrl_suite.algos.morl import preference_set
from tests.toy_envs import ContinuousTwoArmEnv, CounterEnv, TwoArmEnv

PPO = ppo.Config(total_steps=4096, num_envs=4, num_steps=32, learning_rate=3e-3)


def test_the_ppo_set_learns_each_preference_and_equals_separate_runs():
    env = TwoArmEnv()
    config = preference_set.Config(num_preferences=3, reference_point=(-1.0, -1.0))
    train = preference_set.make_train(config, env, env.default_params, learner_config=PPO)
    result = jax.jit(train)(jax.random.key(0))
    front = np.asarray(preference_set.evaluate_front(train, result.state, jax.random.key(1)))
    np.testing.assert_allclose(front[0], [0.0, 5.0])  # weights (0, 1): the second arm
    np.testing.assert_allclose(front[2], [5.0, 0.0])  # weights (1, 0): the first arm
    assert result.metrics["member_return"].shape == (train.num_updates, 3, 2)
    # Member 2 is PPO alone with preference (1, 0) and the key the set gave it.
    base = ppo.make_train(PPO, env, env.default_params)
    key = jax.random.split(jax.random.key(0), 3)[2]
    alone = jax.jit(base)(key, base.default_hparams.replace(preference=jnp.array([1.0, 0.0])))
    for together, single in zip(jax.tree.leaves(result.state.params),
                                jax.tree.leaves(alone.state.params)):
        np.testing.assert_allclose(together[2], single, rtol=1e-3, atol=1e-4)  # float round-off


@pytest.mark.slow
def test_one_conditioned_agent_serves_both_extremes():
    env = TwoArmEnv()
    config = preference_set.Config(num_preferences=3, conditioned=True)
    learner = ppo.Config(total_steps=16384, num_envs=4, num_steps=32, learning_rate=3e-3)
    train = preference_set.make_train(config, env, env.default_params, learner_config=learner)
    result = jax.jit(train)(jax.random.key(0))
    front = np.asarray(preference_set.evaluate_front(train, result.state, jax.random.key(1)))
    np.testing.assert_allclose(front[0], [0.0, 5.0])
    np.testing.assert_allclose(front[2], [5.0, 0.0])


@pytest.mark.slow
def test_the_sac_set_orders_its_returns_as_the_weights():
    env = ContinuousTwoArmEnv()
    config = preference_set.Config(learner="sac", num_preferences=3)
    train = preference_set.make_train(config, env, env.default_params,
                                      learner_config=sac.Config(
                                          total_steps=1500, learning_starts=200, buffer_size=2000,
                                          batch_size=64, hidden_sizes=(32, 32)))
    result = jax.jit(train)(jax.random.key(0))
    front = np.asarray(preference_set.evaluate_front(train, result.state, jax.random.key(1)))
    first = front[:, 0]  # weights (0, 1), (0.5, 0.5), (1, 0): the first objective's return rises
    assert first[0] < 1.0 and first[2] > 4.0 and first[0] < first[1] < first[2], front


def test_bad_settings_are_refused_in_plain_words():
    env = TwoArmEnv()
    with pytest.raises(ValueError, match="learner must be one of ppo, sac"):
        preference_set.make_train(preference_set.Config(learner="dqn"), env, env.default_params)
    with pytest.raises(ValueError, match="multi-objective env"):
        preference_set.make_train(preference_set.Config(), CounterEnv(),
                                  CounterEnv().default_params)
    with pytest.raises(ValueError, match="must have 2 values"):
        preference_set.make_train(preference_set.Config(reference_point=(1.0, 2.0, 3.0)), env,
                                  env.default_params)
