"""PPO: learning, seeds and sweeps as vmap, truncation bootstrapping, the GRU policy, Brax, errors.

Learning tests use fixed keys, 4 seeds in one vmapped call, and assert the mean over seeds of
the return of episodes finished in the last 10% of updates (``ppo.final_return``).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxrl_suite
from jaxrl_suite.algos import ppo
from jaxrl_suite.learn.action_heads import ActionHead
from jaxrl_suite.run.evaluation import evaluate
from tests.toy_envs import ConstantRewardEnv

SEEDS = 4


@functools.cache
def trained(env_id: str, preset: str, **overrides):
    """Train 4 seeds once per (env, preset, overrides) and share the result across tests."""
    env, params = jaxrl_suite.make(env_id)
    config = ppo.Config(**overrides) if preset == "none" else ppo.preset_config(preset, **overrides)
    train = ppo.make_train(config, env, params)
    keys = jax.random.split(jax.random.key(42), SEEDS)
    result = jax.jit(jax.vmap(train))(keys)
    return train, result


@pytest.mark.slow
def test_cartpole_preset_learns_within_1e5_steps():
    train, result = trained("gymnax/CartPole-v1", "cartpole")
    assert train.num_updates * train.env_steps_per_update <= 100_000
    final = np.asarray(ppo.final_return(result))
    assert final.mean() >= 475, final


@pytest.mark.slow
def test_cartpole_purejaxrl_config_learns_within_5e5_steps():
    train, result = trained("gymnax/CartPole-v1", "none")  # Config() is PureJaxRL's config
    assert train.num_updates * train.env_steps_per_update <= 500_000
    final = np.asarray(ppo.final_return(result))
    assert final.mean() >= 475, final


@pytest.mark.slow
def test_pendulum_preset_learns_within_1_5e5_steps():
    train, result = trained("gymnax/Pendulum-v1", "pendulum")
    assert train.num_updates * train.env_steps_per_update <= 150_000
    final = np.asarray(ppo.final_return(result))
    assert final.mean() >= -250, final  # a random policy scores about -1200


@pytest.mark.slow
def test_greedy_and_stochastic_evaluation_of_trained_cartpole():
    train, result = trained("gymnax/CartPole-v1", "cartpole")
    raw_env, params = jaxrl_suite.make("gymnax/CartPole-v1", wrappers=False)
    first_seed = jax.tree.map(lambda x: x[0], result.state)
    policy = train.make_policy(first_seed)
    greedy = evaluate(policy, raw_env, params, jax.random.key(0), 8, deterministic=True)
    stochastic = evaluate(policy, raw_env, params, jax.random.key(0), 8, deterministic=False)
    assert greedy["episode_return"].shape == (8,)
    assert float(greedy["episode_return"].mean()) >= 450
    assert float(stochastic["episode_return"].mean()) >= 400
    # Returns equal lengths in CartPole (reward 1 per step): the episode accounting is exact.
    np.testing.assert_array_equal(greedy["episode_return"], greedy["episode_length"])


@pytest.mark.slow
def test_pendulum_evaluation_uses_the_observation_statistics():
    train, result = trained("gymnax/Pendulum-v1", "pendulum")
    raw_env, params = jaxrl_suite.make("gymnax/Pendulum-v1", wrappers=False)
    policy = train.make_policy(jax.tree.map(lambda x: x[0], result.state))
    assert policy.params["observation_stats"] is not None  # the preset normalises observations
    returns = evaluate(policy, raw_env, params, jax.random.key(1), 8)["episode_return"]
    assert float(returns.mean()) >= -300


@pytest.mark.slow
def test_metrics_are_stacked_per_update():
    train, result = trained("gymnax/CartPole-v1", "cartpole")
    for name in ("episode_return", "episode_length", "total_loss", "policy_loss", "value_loss",
                 "entropy", "approx_kl", "clip_fraction", "explained_variance", "learning_rate",
                 "env_steps", "episodes_finished", "grad_norm"):
        assert result.metrics[name].shape == (SEEDS, train.num_updates), name
    steps = np.asarray(result.metrics["env_steps"][0])
    np.testing.assert_array_equal(steps, np.arange(1, train.num_updates + 1) * 1024)
    learning_rate = np.asarray(result.metrics["learning_rate"][0])
    assert learning_rate[0] == pytest.approx(2.5e-3) and learning_rate[-1] < learning_rate[0] / 50


# --- vmap over seeds and hyperparameters equals separate runs -----------------------------------
@functools.cache
def small_cartpole():
    env, params = jaxrl_suite.make("gymnax/CartPole-v1")
    train = ppo.make_train(ppo.Config(total_steps=4 * 512), env, params)
    return train, jax.jit(train), jax.jit(jax.vmap(train))


def seed(tree, index):
    return jax.tree.map(lambda x: x[index], tree)


def assert_trees_close(a, b):
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        # Batched and unbatched matmuls round differently on CPU (1e-7 per op, growing slowly
        # over updates); a different seed or learning rate changes params by orders more.
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=1e-4, atol=1e-5)


@pytest.mark.slow
def test_vmap_over_seeds_equals_separate_runs():
    train, single, batched = small_cartpole()
    keys = jax.random.split(jax.random.key(3), 3)
    hparams = train.default_hparams
    together = batched(keys, jax.tree.map(lambda x: jnp.stack([x] * 3), hparams))
    for i, key in enumerate(keys):
        alone = single(key, hparams)
        assert_trees_close(alone.state.params, seed(together.state.params, i))
        assert_trees_close(alone.metrics, seed(together.metrics, i))


@pytest.mark.slow
def test_learning_rate_sweep_under_vmap_equals_separate_runs():
    train, single, batched = small_cartpole()
    key = jax.random.key(5)
    rates = jnp.array([1e-4, 1e-2])
    sweep = train.default_hparams.replace(learning_rate=rates)
    sweep = jax.tree.map(lambda x: jnp.broadcast_to(x, (2,)), sweep)
    together = batched(jnp.stack([key, key]), sweep)
    for i, rate in enumerate(rates):
        alone = single(key, train.default_hparams.replace(learning_rate=rate))
        assert_trees_close(alone.state.params, seed(together.state.params, i))
    # The two points really differ: the sweep is not silently using one learning rate.
    np.testing.assert_allclose(together.metrics["learning_rate"][:, 0], np.asarray(rates))
    first = jax.tree.leaves(together.state.params)[0]
    assert not np.allclose(first[0], first[1])


@pytest.mark.slow
# --- truncation is bootstrapped, termination is not ---------------------------------------------
def test_truncated_steps_bootstrap_from_the_final_observation():
    # Reward 1 forever, truncated every 5 steps: V = 1 / (1 - 0.9) = 10. Treating the truncation
    # as a termination would give about 2.6 (the mean of the 1- to 5-step discounted sums).
    env = ConstantRewardEnv()
    config = ppo.Config(total_steps=4 * 16 * 300, num_envs=4, num_steps=16, num_minibatches=2,
                        learning_rate=1e-2, anneal_lr=False, gamma=0.9, gae_lambda=0.9,
                        clip_value=False, entropy_coef=0.0)
    train = ppo.make_train(config, env, env.default_params)
    result = jax.jit(train)(jax.random.key(0))
    networks = ppo.Networks(config, ActionHead(discrete=True, action_dim=2))
    value = float(networks.value(result.state.params, jnp.ones(1)))
    assert value == pytest.approx(10.0, rel=0.1)


@pytest.mark.slow
# --- recurrent policy ---------------------------------------------------------------------------
def test_gru_policy_solves_memory_chain_where_feed_forward_cannot():
    # MemoryChain shows a context bit only at the first step and rewards +1/-1 for recalling it
    # at the end: a memoryless policy can only guess (expected return 0).
    env, params = jaxrl_suite.make("gymnax/MemoryChain-bsuite")
    finals = {}
    for recurrent in (True, False):
        config = ppo.Config(total_steps=60_000, num_envs=32, num_steps=32, num_minibatches=4,
                            learning_rate=3e-3, recurrent=recurrent, gru_hidden_size=32,
                            hidden_sizes=(32,))
        train = ppo.make_train(config, env, params)
        result = jax.jit(jax.vmap(train))(jax.random.split(jax.random.key(0), 2))
        finals[recurrent] = np.asarray(ppo.final_return(result))
    assert finals[True].mean() >= 0.9, finals
    assert abs(finals[False].mean()) <= 0.25, finals


@pytest.mark.slow
def test_gru_hidden_state_is_reset_at_episode_start():
    from jaxrl_suite.learn.networks import ResettableGRU

    gru = ResettableGRU(8)
    observation = jnp.arange(3.0)
    params = gru.init(jax.random.key(0), gru.initial_hidden(), (observation, jnp.bool_(True)))
    stale = jnp.full(8, 0.7)
    after_reset, _ = gru.apply(params, stale, (observation, jnp.bool_(True)))
    fresh, _ = gru.apply(params, gru.initial_hidden(), (observation, jnp.bool_(False)))
    carried, _ = gru.apply(params, stale, (observation, jnp.bool_(False)))
    np.testing.assert_array_equal(after_reset, fresh)
    assert not np.allclose(carried, fresh)


# --- Brax ---------------------------------------------------------------------------------------
@pytest.mark.slow
def test_brax_smoke_runs_a_few_updates_with_finite_metrics():
    env, params = jaxrl_suite.make("brax/inverted_pendulum")
    config = ppo.preset_config("brax/hopper", total_steps=3 * 8 * 10, num_envs=8, num_steps=10,
                               num_minibatches=2, hidden_sizes=(32, 32))
    train = ppo.make_train(config, env, params)
    result = jax.jit(train)(jax.random.key(0))
    for name, values in result.metrics.items():
        if name not in ("episode_return", "episode_length"):  # NaN: no episode finished yet
            assert np.isfinite(np.asarray(values)).all(), name
    assert result.metrics["entropy"].shape == (3,)


# --- errors -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (dict(num_envs=4, num_steps=10, num_minibatches=3), "not divisible by num_minibatches"),
        (dict(num_envs=0), "num_envs must be a positive integer"),
        (dict(update_epochs=-1), "update_epochs must be a positive integer"),
        (dict(total_steps=100), "less than one update's batch"),
        (dict(gamma=1.5), "gamma must be in"),
        (dict(learning_rate=0.0), "learning_rate must be positive"),
        (dict(activation="swishy"), "Unknown activation 'swishy'"),
        (dict(recurrent=True, num_envs=6, num_minibatches=4), "num_envs (6) must be divisible"),
        (dict(encoder="cnn"), "encoder must be one of"),
        (dict(encoder="grid"), "grid encoder needs a dict observation with an 'image'"),
    ],
)
def test_bad_config_fails_before_compiling(overrides, message):
    env, params = jaxrl_suite.make("gymnax/CartPole-v1")
    with pytest.raises(ValueError) as error:
        ppo.make_train(ppo.Config(**overrides), env, params)
    assert message in str(error.value)


def test_unknown_env_and_preset_fail_clearly():
    with pytest.raises(ValueError, match="Unknown env id 'gymnax/CartPole-v9'"):
        jaxrl_suite.make("gymnax/CartPole-v9")
    with pytest.raises(ValueError, match="Unknown PPO preset 'cartpol'"):
        ppo.preset_config("cartpol")


def test_unsupported_spaces_are_refused():
    from tests.toy_envs import DictObsEnv

    env = DictObsEnv()
    with pytest.raises(ValueError, match="Box"):
        ppo.make_train(ppo.Config(), env, env.default_params)


@pytest.mark.slow
# --- grid observations (the maze) ---------------------------------------------------------------
def test_grid_encoder_runs_on_the_maze_and_vmap_equals_separate_runs():
    """Dict observations through the grid encoder and a GRU: uint8 images kept in the rollout,
    minibatches cut over envs for every observation entry, and seeds under vmap as alone."""
    env, params = jaxrl_suite.make("maze")
    config = ppo.Config(total_steps=2 * 4 * 16, num_envs=4, num_steps=16, num_minibatches=2,
                        encoder="grid", recurrent=True, hidden_sizes=(16,), gru_hidden_size=16,
                        conv_features=4)
    train = ppo.make_train(config, env, params)
    keys = jax.random.split(jax.random.key(1), 2)
    together = jax.jit(jax.vmap(train))(keys)
    assert together.state.observation["image"].dtype == jnp.uint8
    assert together.metrics["entropy"].shape == (2, 2)
    for name in ("entropy", "value_loss", "policy_loss", "grad_norm"):
        assert np.isfinite(np.asarray(together.metrics[name])).all(), name
    alone = jax.jit(train)(keys[1])
    assert_trees_close(alone.state.params, seed(together.state.params, 1))
    with pytest.raises(ValueError, match="does not combine with encoder='grid'"):
        ppo.make_train(ppo.Config(encoder="grid", normalize_observations=True), env, params)


def test_presets_apply_by_env_and_overrides_win():
    assert ppo.preset_config("gymnax/CartPole-v1").total_steps == 100_000
    assert ppo.preset_config("gymnax/CartPole-v1", num_envs=8).num_envs == 8
    assert ppo.preset_config("gymnax/SpaceInvaders-MinAtar").activation == "relu"
    assert ppo.preset_config("brax/ant").normalize_observations
    assert ppo.preset_config("gymnax/DeepSea-bsuite") == ppo.Config()  # no preset: defaults
    assert ppo.preset_config("maze").encoder == "grid"  # the project's own ids have no prefix
    assert ppo.preset_config("maze-editor") == ppo.Config()
