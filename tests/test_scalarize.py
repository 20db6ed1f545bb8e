"""``Scalarize``: a multi-objective env as a single-objective one (DESIGN.md s5)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrl_suite.env import wrappers
from jaxrl_suite.learn import preferences
from tests.toy_envs import CounterEnv, TwoArmEnv


def _episode(env, params, actions, key=0):
    """Rewards ``(steps,)`` and infos of one episode taking ``actions`` in order."""
    obs, state = env.reset(jax.random.key(key), params)
    rewards, infos = [], []
    for step, action in enumerate(actions):
        obs, state, reward, _, _, info = env.step(jax.random.key(100 + step), state,
                                                  jnp.int32(action), params)
        rewards.append(float(reward))
        infos.append(info)
    return obs, np.array(rewards), infos


def test_the_reward_is_the_weighted_sum_and_the_vector_stays_in_info():
    env = wrappers.Scalarize(TwoArmEnv(), [0.3, 0.7])
    assert wrappers.reward_shape(env, env.default_params) == ()
    assert preferences.num_objectives_of(env, env.default_params, "test") == 0
    _, rewards, infos = _episode(env, env.default_params, [0, 1, 1])
    np.testing.assert_allclose(rewards, [0.3, 0.7, 0.7], rtol=1e-6)
    np.testing.assert_array_equal(infos[0]["objective_reward"], [1.0, 0.0])
    np.testing.assert_allclose(infos[2]["preference"], [0.3, 0.7])


def test_vmap_over_weights_equals_separate_weights():
    env = wrappers.Scalarize(TwoArmEnv())
    weights = jnp.array([[1.0, 0.0], [0.25, 0.75], [0.5, 0.5]])

    def rollout(w):
        params = env.default_params.replace(weights=w)
        _, state = env.reset(jax.random.key(0), params)

        def step(state, action):
            _, state, reward, _, _, _ = env.step(jax.random.key(1), state, action, params)
            return state, reward

        return jax.lax.scan(step, state, jnp.array([0, 1, 1, 0]))[1]

    together = jax.jit(jax.vmap(rollout))(weights)
    for row, w in enumerate(weights):
        np.testing.assert_array_equal(together[row], jax.jit(rollout)(w))
    np.testing.assert_allclose(together[1], [0.25, 0.75, 0.75, 0.25])


def test_a_conditioned_env_shows_the_weights_and_draws_new_ones_per_episode():
    env = wrappers.Scalarize(TwoArmEnv(), condition=True, sample_weights=True)
    space = env.observation_space(env.default_params)
    assert space.shape == (3,)
    drawn = []
    for seed in range(20):
        obs, state = env.reset(jax.random.key(seed), env.default_params)
        assert obs.shape == (3,) and space.contains(obs)
        np.testing.assert_allclose(obs[1:], state.weights)
        drawn.append(np.asarray(state.weights))
    drawn = np.array(drawn)
    np.testing.assert_allclose(drawn.sum(axis=1), 1.0, rtol=1e-5)
    assert drawn[:, 0].std() > 0.15  # Dirichlet(1, 1) is uniform on [0, 1]: std 0.29
    # Evaluating at a given preference: the same params with sampling off.
    params = env.default_params.replace(weights=jnp.array([0.9, 0.1]),
                                        sample_weights=jnp.asarray(False))
    obs, rewards, _ = _episode(env, params, [0, 1])
    np.testing.assert_allclose(obs[1:], [0.9, 0.1])
    np.testing.assert_allclose(rewards, [0.9, 0.1], rtol=1e-6)


def test_auto_reset_draws_the_next_episodes_weights():
    env = wrappers.AutoReset(wrappers.Scalarize(TwoArmEnv(), condition=True,
                                                sample_weights=True))
    params = env.default_params.replace(env_params=TwoArmEnv().default_params.replace(
        max_steps_in_episode=1))
    obs, state = env.reset(jax.random.key(3), params)
    next_obs, _, _, _, truncated, info = env.step(jax.random.key(4), state, jnp.int32(0), params)
    assert bool(truncated)
    np.testing.assert_array_equal(info["final_observation"][1:], obs[1:])
    assert not np.allclose(next_obs[1:], obs[1:])


@pytest.mark.parametrize("weights, words", [
    ([1.0], "shape (2,)"), ([0.5, 0.5, 0.0], "shape (2,)"), ([-0.1, 1.1], "non-negative"),
    ([0.0, 0.0], "not all zero"), ([np.nan, 1.0], "finite"),
])
def test_bad_weights_are_refused_in_plain_words(weights, words):
    with pytest.raises(ValueError, match=words.replace("(", r"\(").replace(")", r"\)")):
        wrappers.Scalarize(TwoArmEnv(), weights)


def test_a_scalar_env_and_negative_weights_at_reset_are_refused():
    with pytest.raises(ValueError, match="multi-objective env"):
        wrappers.Scalarize(CounterEnv())
    with pytest.raises(ValueError, match="negative"):
        env = wrappers.Scalarize(TwoArmEnv())
        env.reset(jax.random.key(0), env.default_params.replace(weights=jnp.array([-1.0, 2.0])))
