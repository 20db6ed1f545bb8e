"""Wrappers against hand-computed values and against gymnax's own auto-reset."""

from __future__ import annotations

import gymnax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxrl_suite
from jaxrl_suite.env.wrappers import (
    AutoReset,
    CachedAutoReset,
    ClipAction,
    EpisodeStats,
    FlattenObservation,
    NormalizeObservation,
    NormalizeReward,
    RunningMeanStd,
    TimeLimit,
)
from tests.toy_envs import CounterEnv, DictObsEnv, VectorRewardCounterEnv


def run(env, params, actions, seed=0):
    """Step ``env`` through ``actions`` with keys split from ``seed``; returns per-step outputs."""

    def rollout(key):
        reset_key, scan_key = jax.random.split(key)
        obs, state = env.reset(reset_key, params)

        def body(state, inputs):
            key, action = inputs
            obs, state, reward, terminated, truncated, info = env.step(key, state, action, params)
            return state, (obs, reward, terminated, truncated, info)

        keys = jax.random.split(scan_key, len(actions))
        return obs, jax.lax.scan(body, state, (keys, jnp.asarray(actions)))[1]

    return jax.tree.map(np.asarray, jax.jit(rollout)(jax.random.key(seed)))


def running_stats(seen: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and variance of the samples ``seen`` (axis 0) merged with RunningMeanStd's prior,
    a pseudo-sample of mean 0 and variance 1 with weight 1e-4."""
    count = len(seen) + 1e-4
    mean = seen.sum(0) / count
    m2 = ((seen - mean) ** 2).sum(0) + 1e-4 * (1.0 + mean**2)
    return mean, m2 / count


def test_autoreset_matches_gymnax_autoreset_step():
    """Same keys, same actions: our adapter + AutoReset equals gymnax's own resetting step."""
    ours, params = jaxrl_suite.make("gymnax/CartPole-v1", wrappers=False)
    ours = AutoReset(ours)
    theirs, _ = gymnax.make("CartPole-v1")
    params = params.replace(max_steps_in_episode=7)  # several resets in 40 steps
    actions = np.asarray(jax.random.randint(jax.random.key(3), (40,), 0, 2))

    def rollout(env, key, step):
        obs, state = env.reset(key, params)

        def body(state, inputs):
            key, action = inputs
            obs, state, reward, terminated, truncated, info = step(env, key, state, action)
            return state, (obs, reward, terminated, truncated, info["final_observation"])

        keys = jax.random.split(jax.random.key(1), len(actions))
        return obs, jax.lax.scan(body, state, (keys, jnp.asarray(actions)))[1]

    ours_out = rollout(ours, jax.random.key(0), lambda e, k, s, a: e.step(k, s, a, params))
    theirs_out = rollout(theirs, jax.random.key(0), lambda e, k, s, a: e.step(k, s, a, params))
    for a, b in zip(jax.tree.leaves(ours_out), jax.tree.leaves(theirs_out)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert np.asarray(ours_out[1][3]).sum() >= 4  # the limit of 7 really truncated episodes


def test_autoreset_and_episode_stats_by_hand():
    env = EpisodeStats(AutoReset(CounterEnv()))
    params = env.default_params  # terminal_at=4, max_steps=10
    # From count c0 in {0,1}: actions 1,1 (+2,+2) terminate after 2 steps (c0+4 >= 4).
    obs0, (obs, reward, terminated, truncated, info) = run(env, params, [1, 1, 0, 0, 0])
    start = obs0[0]
    assert start in (0.0, 1.0) and obs0[1] == start
    np.testing.assert_array_equal(reward, [2, 2, 1, 1, 1])
    assert terminated.tolist()[:2] == [False, True] and not truncated.any()
    np.testing.assert_array_equal(info["final_observation"][1], [start + 4, 0.0])
    assert obs[1][0] in (0.0, 1.0) and obs[1][0] == obs[1][1]  # the fresh reset observation
    np.testing.assert_array_equal(info["returned_episode"][:2], [False, True])
    np.testing.assert_array_equal(info["episode_return"][:3], [2.0, 4.0, 1.0])
    np.testing.assert_array_equal(info["episode_length"][:3], [1, 2, 1])


def test_truncation_is_not_termination():
    env = AutoReset(CounterEnv())
    params = env.default_params.replace(max_steps_in_episode=2, terminal_at=100)
    _, (_, _, terminated, truncated, _) = run(env, params, [0] * 6)
    np.testing.assert_array_equal(truncated, [False, True] * 3)
    assert not terminated.any()


def test_cached_autoreset_restarts_from_the_first_reset():
    env = EpisodeStats(CachedAutoReset(CounterEnv()))
    params = env.default_params.replace(max_steps_in_episode=1, terminal_at=100)
    for seed in range(4):
        obs0, (obs, _, _, truncated, info) = run(env, params, [0] * 5, seed=seed)
        assert truncated.all()
        np.testing.assert_array_equal(obs, np.broadcast_to(obs0, obs.shape))
        np.testing.assert_array_equal(info["final_observation"][:, 0], obs0[0] + 1)


def test_episode_stats_vector_reward():
    env = EpisodeStats(AutoReset(VectorRewardCounterEnv()))
    params = env.default_params.replace(terminal_at=100)
    _, (_, _, _, _, info) = run(env, params, [0, 1, 1])
    assert info["episode_return"].shape == (3, 2)
    np.testing.assert_array_equal(info["episode_return"], [[1.0, 1.0], [3.0, 2.0], [5.0, 3.0]])


def test_time_limit_wrapper():
    env = TimeLimit(CounterEnv(), max_episode_steps=3)
    params = env.default_params.replace(terminal_at=100)
    _, (_, _, terminated, truncated, _) = run(AutoReset(env), params, [0] * 7)
    np.testing.assert_array_equal(truncated, [False, False, True] * 2 + [False])
    assert not terminated.any()
    with pytest.raises(ValueError, match="max_episode_steps"):
        TimeLimit(CounterEnv(), max_episode_steps=0)


def test_running_mean_std_pooled_over_a_vmapped_batch():
    data = np.random.default_rng(0).normal(3.0, 2.0, size=(5, 64, 3)).astype(np.float32)

    def update_all(x_steps):
        stats = RunningMeanStd.create((3,))
        for x in x_steps:
            stats = jax.vmap(lambda s, x: s.update(x, "envs"), in_axes=(None, 0), out_axes=None,
                             axis_name="envs")(stats, x)
        return stats

    stats = update_all(jnp.asarray(data))
    flat = data.reshape(-1, 3)
    np.testing.assert_allclose(stats.mean, flat.mean(0), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(stats.var, flat.var(0), rtol=1e-3, atol=1e-4)
    np.testing.assert_allclose(stats.count, flat.shape[0] + 1e-4, rtol=1e-6)


def test_normalize_observation_single_env():
    env = NormalizeObservation(AutoReset(CounterEnv()))
    obs0, (obs, _, _, _, info) = run(env, env.default_params, [0, 0, 0, 1])
    raw0, (raw_obs, _, _, _, raw_info) = run(AutoReset(CounterEnv()), env.default_params,
                                             [0, 0, 0, 1])
    history = [raw0]
    for t in range(4):
        history.append(raw_obs[t])
        mean, var = running_stats(np.stack(history).astype(np.float64))
        expected = np.clip((raw_obs[t] - mean) / np.sqrt(var + 1e-8), -10, 10)
        np.testing.assert_allclose(obs[t], expected, rtol=1e-3, atol=2e-3)
        expected_final = np.clip(
            (raw_info["final_observation"][t] - mean) / np.sqrt(var + 1e-8), -10, 10)
        np.testing.assert_allclose(info["final_observation"][t], expected_final, rtol=1e-3,
                                   atol=2e-3)
    assert isinstance(env.observation_space(), jaxrl_suite.env.spaces.Box)
    with pytest.raises(TypeError, match="Box observation"):
        NormalizeObservation(DictObsEnv())


def test_normalize_observation_shares_statistics_across_vmapped_envs():
    env = NormalizeObservation(AutoReset(CounterEnv()), axis_name="envs")
    params = env.default_params

    def rollout(keys):
        obs, state = jax.vmap(env.reset, in_axes=(0, None), axis_name="envs")(keys, params)
        actions = jnp.arange(keys.shape[0]) % 2
        return jax.vmap(env.step, in_axes=(0, 0, 0, None), axis_name="envs")(
            keys, state, actions, params
        )

    _, state, *_ = jax.jit(rollout)(jax.random.split(jax.random.key(0), 8))
    # Every env holds the same pooled statistics after the step.
    for leaf in jax.tree.leaves(state.obs_stats):
        np.testing.assert_array_equal(np.asarray(leaf), np.broadcast_to(leaf[0], leaf.shape))
    np.testing.assert_allclose(state.obs_stats.count[0], 16 + 1e-4, rtol=1e-6)


def test_normalize_reward_scales_by_discounted_return_std():
    gamma = 0.5
    env = NormalizeReward(AutoReset(CounterEnv()), gamma=gamma)
    params = env.default_params.replace(terminal_at=100, max_steps_in_episode=100)
    actions = [1, 0, 1, 1, 0]
    _, (_, reward, _, _, _) = run(env, params, actions)
    raw_rewards = np.asarray(actions, np.float64) + 1
    returns, ret = [], 0.0
    for t, r in enumerate(raw_rewards):
        ret = ret * gamma + r
        returns.append(ret)
        _, var = running_stats(np.asarray(returns))
        np.testing.assert_allclose(reward[t], np.clip(r / np.sqrt(var + 1e-8), -10, 10),
                                   rtol=2e-3)
    with pytest.raises(ValueError, match="gamma"):
        NormalizeReward(CounterEnv(), gamma=1.5)


def test_clip_action_and_flatten_observation():
    env = FlattenObservation(ClipAction(DictObsEnv()))
    params = env.default_params
    space = env.observation_space(params)
    assert space.shape == (4,)  # sorted keys: position (3) then room (1)
    np.testing.assert_array_equal(space.low, [-1, -1, -1, 0])
    np.testing.assert_array_equal(space.high, [1, 1, 1, 4])
    obs, state = env.reset(jax.random.key(0), params)
    np.testing.assert_array_equal(obs, [0.5, -0.5, 0.25, 3.0])
    assert obs.dtype == jnp.float32 and bool(space.contains(obs))
    _, _, reward, *_ = env.step(jax.random.key(1), state, jnp.array([5.0, 0.0]), params)
    assert float(reward) == 2.0  # the action was clipped to the Box high of 2
    with pytest.raises(TypeError, match="Box action space"):
        ClipAction(CounterEnv())


def test_wrappers_refuse_non_environments():
    env, _ = gymnax.make("CartPole-v1")
    with pytest.raises(TypeError, match="jaxrl_suite Environment"):
        AutoReset(env)
