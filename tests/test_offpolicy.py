"""DQN, SAC and TD3: learning, vmap over seeds, TD targets, truncation, resume, Brax, errors,
and the optimizer argument (an explicit default chain; a hypergradient through SAC's training).

Learning tests train 4 seeds with each env's preset in one vmapped call (shared across tests)
and assert the mean over seeds of the greedy policy's return at the end of the run, 16
evaluation episodes per seed.
"""

from __future__ import annotations

import functools
import json
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxrl_suite
from jaxrl_suite import cli
from jaxrl_suite.algos import dqn, sac, td3
from jaxrl_suite.env.wrappers import auto_reset_env
from jaxrl_suite.learn import optim
from jaxrl_suite.learn.advantages import n_step_returns
from jaxrl_suite.learn.buffers import ReplayBuffer
from jaxrl_suite.learn.experience import ExperienceCollector
from jaxrl_suite.run.checkpoints import Checkpointer
from jaxrl_suite.run.evaluation import evaluate
from jaxrl_suite.run.harness import RunOptions, run_training
from tests.conformance import jit_fast_compile
from tests.states import as_numpy
from tests.toy_envs import ConstantRewardEnv, ContinuousConstantRewardEnv, CounterEnv

SEEDS = 4
ALGORITHMS = {"dqn": dqn, "sac": sac, "td3": td3}


@functools.cache
def trained(name: str, env_id: str):
    """Train 4 seeds of ``name`` with ``env_id``'s preset once; greedy returns per seed."""
    module = ALGORITHMS[name]
    env, params = jaxrl_suite.make(env_id)
    raw_env, _ = jaxrl_suite.make(env_id, wrappers=False)
    train = module.make_train(module.preset_config(env_id), env, params)
    keys = jax.random.split(jax.random.key(42), SEEDS)
    result = jax.jit(jax.vmap(train))(keys)
    evaluation = jax.jit(jax.vmap(
        lambda state, key: evaluate(train.make_policy(state), raw_env, params, key, 16)
    ))(result.state, keys)
    return train, result, np.asarray(evaluation["episode_return"].mean(axis=1))


# --- learning -----------------------------------------------------------------------------------
@pytest.mark.slow
def test_dqn_learns_cartpole_within_1e5_steps():
    train, result, greedy = trained("dqn", "gymnax/CartPole-v1")
    assert int(result.metrics["env_steps"][0, -1]) <= 100_000
    assert greedy.mean() >= 450, greedy


@pytest.mark.slow
def test_sac_learns_pendulum_within_1e4_steps():
    train, result, greedy = trained("sac", "gymnax/Pendulum-v1")
    assert int(result.metrics["env_steps"][0, -1]) <= 10_000
    assert greedy.mean() >= -200, greedy  # a random policy scores about -1200


@pytest.mark.slow
def test_td3_learns_pendulum_within_1e4_steps():
    train, result, greedy = trained("td3", "gymnax/Pendulum-v1")
    assert int(result.metrics["env_steps"][0, -1]) <= 10_000
    assert greedy.mean() >= -200, greedy


@pytest.mark.slow
def test_discrete_sac_learns_cartpole():
    train, result, greedy = trained("sac", "gymnax/CartPole-v1")
    assert int(result.metrics["env_steps"][0, -1]) <= 50_000
    assert greedy.mean() >= 400, greedy  # measured 486 (500, 443, 500, 500) with other keys


@pytest.mark.slow
def test_training_metrics_are_per_update_and_count_env_steps():
    train, result, _ = trained("sac", "gymnax/Pendulum-v1")
    steps = np.asarray(result.metrics["env_steps"][0])
    assert steps.shape == (train.num_updates,)
    assert steps[0] == train.env_steps_before_updates + train.env_steps_per_update
    assert steps[-1] == 10_000
    returns = np.asarray(result.metrics["episode_return"][0])
    # Pendulum episodes last 200 steps: one finishes every 200th update, the rest report NaN.
    assert np.isfinite(returns).sum() == pytest.approx(train.num_updates / 200, abs=1)
    for name in ("critic_loss", "actor_loss", "alpha", "entropy", "q_value"):
        assert np.isfinite(np.asarray(result.metrics[name])).all(), name


# --- vmap over seeds equals separate runs -------------------------------------------------------
SMALL = {
    "dqn": ("gymnax/CartPole-v1", dict(total_steps=1_200, num_envs=4, learning_starts=400,
                                       buffer_size=800, batch_size=32, gradient_steps=2,
                                       hidden_sizes=(16, 16))),
    "sac": ("gymnax/Pendulum-v1", dict(total_steps=300, learning_starts=200, buffer_size=250,
                                       batch_size=32, hidden_sizes=(16, 16))),
    "td3": ("gymnax/Pendulum-v1", dict(total_steps=300, learning_starts=200, buffer_size=250,
                                       batch_size=32, hidden_sizes=(16, 16))),
}
# Short runs on purpose: vmapped and separate runs agree to float32 round-off (~1e-7), but SAC's
# training amplifies that round-off; past ~350 updates of this tiny setting the two drift apart
# by 1e-4 and more, as any two runs differing by 1e-7 would.


@functools.cache
def small(name: str, **extra):
    module = ALGORITHMS[name]
    env_id, overrides = SMALL[name]
    env, params = jaxrl_suite.make(env_id)
    train = module.make_train(module.preset_config(env_id, **{**overrides, **extra}), env, params)
    return train, jax.jit(train), jax.jit(jax.vmap(train))


def seed(tree, index):
    return jax.tree.map(lambda x: x[index], tree)


def repeated(hparams, count: int):
    """``hparams`` with a leading axis of ``count``, for a vmapped run."""
    return jax.tree.map(lambda x: jnp.broadcast_to(x, (count,)), hparams)


def assert_trees_close(a, b):
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
            x, y = jax.random.key_data(x), jax.random.key_data(y)
        # Batched and unbatched matmuls round differently on CPU (~1e-7 per op).
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=1e-4, atol=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["dqn", "sac", "td3"])
def test_vmap_over_seeds_equals_separate_runs(name):
    train, single, batched = small(name)
    keys = jax.random.split(jax.random.key(3), 2)
    # Hyperparameters passed explicitly, as the sweep test passes them: the two tests (and
    # test_replay_buffer_lives_in_the_training_state) then share compiled programs.
    hparams = train.default_hparams
    together = batched(keys, repeated(hparams, 2))
    for i, key in enumerate(keys):
        alone = single(key, hparams)
        # The whole state: networks, optimisers, replay buffer, env state, keys.
        assert_trees_close(alone.state, seed(together.state, i))
        assert_trees_close(alone.metrics, seed(together.metrics, i))
    first = jax.tree.leaves(together.state)[0]
    assert not np.array_equal(first[0], first[1])  # the seeds really differ


@pytest.mark.slow
def test_learning_rate_sweep_under_vmap_equals_separate_runs():
    train, single, batched = small("sac")
    key = jax.random.key(5)
    rates = jnp.array([1e-4, 3e-2])
    sweep = repeated(train.default_hparams, 2).replace(critic_learning_rate=rates)
    together = batched(jnp.stack([key, key]), sweep)
    for i, rate in enumerate(rates):
        alone = single(key, train.default_hparams.replace(critic_learning_rate=rate))
        assert_trees_close(alone.state.critic_params, seed(together.state.critic_params, i))
    first = jax.tree.leaves(together.state.critic_params)[0]
    assert not np.allclose(first[0], first[1])


# --- TD targets, terminated against truncated ----------------------------------------------------
def test_collector_stores_the_final_observation_not_the_reset_one():
    # CounterEnv: count (starting at 0 or 1) += action + 1; terminated at count >= 4; here
    # truncated after 2 steps. Actions 0, 0 truncate the first episode whatever the start;
    # actions 1, 1 terminate the second at its second step.
    env = auto_reset_env(CounterEnv())
    params = CounterEnv().default_params.replace(max_steps_in_episode=2, terminal_at=4)
    collector = ExperienceCollector(env, params, ReplayBuffer(8, num_envs=1))
    experience = collector.init(jax.random.key(0))
    start = float(experience.observation[0, 0])
    for action in (0, 0, 1, 1):
        experience, _ = collector.step(experience, jax.random.key(1), jnp.array([action]))
    stored = jax.tree.map(np.asarray, experience.buffer.storage)
    np.testing.assert_array_equal(stored.terminated[:4], [False, False, False, True])
    np.testing.assert_array_equal(stored.truncated[:4], [False, True, False, False])
    np.testing.assert_array_equal(stored.reward[:4], [1.0, 1.0, 2.0, 2.0])
    # The truncated step's next observation is the count it reached, not the reset that
    # followed (which is the next transition's observation, a new start of 0 or 1).
    second_start = stored.observation[2, 0]
    assert stored.next_observation[1, 0] == start + 2 and second_start in (0.0, 1.0)
    assert stored.next_observation[3, 0] == second_start + 4  # the terminal observation


def test_dqn_target_bootstraps_truncation_not_termination():
    gamma = 0.9
    rewards = jnp.array([[1.0], [2.0], [3.0]])
    terminated = jnp.array([[True], [False], [False]])
    truncated = jnp.array([[False], [True], [False]])
    available = jnp.ones((3, 1), bool)
    returns, discount, last = n_step_returns(rewards, terminated, truncated, available, gamma)
    next_q = jnp.array([[5.0, 7.0], [5.0, 7.0], [5.0, 7.0]])  # max 7
    online_q = jnp.array([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0]])  # picks action 0 (value 5)
    plain = dqn.q_learning_target(returns, discount, None, next_q, double_q=False)
    double = dqn.q_learning_target(returns, discount, online_q, next_q, double_q=True)
    np.testing.assert_allclose(plain, [1.0, 2.0 + 0.9 * 7.0, 3.0 + 0.9 * 7.0])
    np.testing.assert_allclose(double, [1.0, 2.0 + 0.9 * 5.0, 3.0 + 0.9 * 5.0])


def test_sac_and_td3_targets_bootstrap_truncation_not_termination():
    reward = jnp.array([1.0, 1.0])
    terminated = jnp.array([True, False])  # the second transition was truncated, not terminated
    next_q = jnp.array([[4.0, 6.0], [5.0, 3.0]])  # (critics, batch): minimum 4 and 3
    log_prob = jnp.array([-1.0, -2.0])
    soft = sac.soft_td_target(reward, terminated, next_q, log_prob, alpha=0.5, gamma=0.9)
    np.testing.assert_allclose(soft, [1.0, 1.0 + 0.9 * (3.0 + 0.5 * 2.0)])
    clipped = td3.td3_target(reward, terminated, next_q, gamma=0.9)
    np.testing.assert_allclose(clipped, [1.0, 1.0 + 0.9 * 3.0])


TRUNCATION = {
    "dqn": (ConstantRewardEnv, dict(total_steps=3_000, num_envs=4, learning_starts=200,
                                    buffer_size=1_000, batch_size=64, train_frequency=1,
                                    gradient_steps=1, learning_rate=3e-3, gamma=0.9, tau=0.05,
                                    target_update_interval=1, hidden_sizes=(16,))),
    "dqn-3-step": (ConstantRewardEnv, dict(total_steps=3_000, num_envs=4, learning_starts=200,
                                           buffer_size=1_000, batch_size=64, train_frequency=1,
                                           gradient_steps=1, learning_rate=3e-3, gamma=0.9,
                                           tau=0.05, target_update_interval=1, n_step=3,
                                           hidden_sizes=(16,))),
    "sac": (ContinuousConstantRewardEnv, dict(total_steps=2_000, num_envs=2, learning_starts=200,
                                              buffer_size=1_000, batch_size=64,
                                              critic_learning_rate=3e-3, gamma=0.9, tau=0.2,
                                              autotune_alpha=False, initial_alpha=1e-6,
                                              hidden_sizes=(16,))),
    "td3": (ContinuousConstantRewardEnv, dict(total_steps=2_000, num_envs=2, learning_starts=200,
                                              buffer_size=1_000, batch_size=64,
                                              critic_learning_rate=3e-3, gamma=0.9, tau=0.2,
                                              hidden_sizes=(16,))),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", list(TRUNCATION))
def test_q_values_bootstrap_through_truncation(case):
    # Reward 1 forever, truncated every 5 steps: Q = 1 / (1 - 0.9) = 10 for every action.
    # Treating the truncation as a termination would give about 2.6 (the mean of the 1- to
    # 5-step discounted sums).
    name = case.split("-")[0]
    module = ALGORITHMS[name]
    env_type, overrides = TRUNCATION[case]
    env = env_type()
    train = module.make_train(module.Config(**overrides), env, env.default_params)
    state = jax.jit(train)(jax.random.key(0)).state
    observation = jnp.ones((1, 1))
    if name == "dqn":
        q = dqn.QNetwork(overrides["hidden_sizes"], 2).apply(state.params, observation)
    else:
        critic = jaxrl_suite.learn.networks.QEnsemble(overrides["hidden_sizes"], 2)
        q = critic.apply(state.critic_params, observation, jnp.array([[0.3]]))
    np.testing.assert_allclose(np.asarray(q), 10.0, rtol=0.1)


# --- checkpoints ---------------------------------------------------------------------------------
@pytest.mark.slow
def test_resume_from_a_checkpoint_is_bit_for_bit(tmp_path):
    env_id, overrides = SMALL["sac"]
    config = sac.preset_config(env_id, **overrides)
    options = RunOptions(env=env_id, seeds=2, seed=1, run_dir=str(tmp_path / "run"),
                         checkpoint_every=25, no_progress=True, eval_episodes=0)
    full, run_dir = run_training(sac, config, options)
    assert (run_dir / "checkpoints" / "100").exists()
    # A run killed between checkpoints leaves the last one it saved: remove the final save and
    # resume from update 75, replay buffer included.
    shutil.rmtree(run_dir / "checkpoints" / "100")
    resumed, _ = run_training(sac, config, RunOptions(**{
        **options.__dict__, "run_dir": None, "resume": str(run_dir)}))
    for a, b in zip(jax.tree.leaves(full.state), jax.tree.leaves(resumed.state), strict=True):
        np.testing.assert_array_equal(as_numpy(a), as_numpy(b))
    assert resumed.metrics["env_steps"].shape == (25, 2)  # only the last 25 updates re-ran
    rows = (run_dir / "metrics.csv").read_text().strip().splitlines()
    assert len(rows) == 1 + 100 * 2  # header, then every update of both seeds exactly once
    record = json.loads((run_dir / "config.json").read_text())
    checkpointer = Checkpointer(run_dir / "checkpoints")
    try:
        saved, update = checkpointer.restore(full.state, record["fingerprint"])
    finally:
        checkpointer.close()
    assert update == 100
    stored = full.state.experience.buffer.storage.observation
    np.testing.assert_array_equal(saved.experience.buffer.storage.observation, stored)


@pytest.mark.slow
# --- command line --------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["dqn", "sac", "td3"])
def test_jaxrl_train_runs_each_algorithm(name, tmp_path, capsys):
    env_id, overrides = SMALL[name]
    flags = []
    for key, value in overrides.items():
        flag = "--" + key.replace("_", "-")
        flags += [flag, *map(str, value)] if isinstance(value, tuple) else [flag, str(value)]
    # TD3 runs without --env: SAC and TD3 default to Pendulum (continuous actions).
    env_flag = [] if name == "td3" else ["--env", env_id]
    code = cli.main(["train", name, *env_flag, "--seeds", "2", "--runs-root",
                     str(tmp_path), "--eval-episodes", "2", "--no-progress", *flags])
    out = capsys.readouterr().out
    assert code == 0, out
    (run_dir,) = list(tmp_path.iterdir())
    assert run_dir.name.startswith(f"{name}-{env_id.replace('/', '_')}-")
    assert (run_dir / "learning_curve.png").exists() and (run_dir / "eval.json").exists()
    assert "evaluation (deterministic)" in out


def test_algorithms_are_registered(capsys):
    assert cli.main(["algos"]) == 0
    listed = [line.split()[0] for line in capsys.readouterr().out.splitlines() if line.strip()]
    assert {"dqn", "ppo", "sac", "td3"} <= set(listed)


# --- Brax ----------------------------------------------------------------------------------------
@pytest.mark.slow
def test_sac_brax_smoke_runs_a_few_updates_with_finite_metrics():
    env, params = jaxrl_suite.make("brax/inverted_pendulum")
    config = sac.preset_config("brax/hopper", total_steps=8 * 24, num_envs=8, learning_starts=64,
                               buffer_size=256, batch_size=32, gradient_steps=2,
                               hidden_sizes=(32, 32))
    train = sac.make_train(config, env, params)
    result = jax.jit(train)(jax.random.key(0))
    assert result.metrics["critic_loss"].shape == (train.num_updates,) == (16,)
    for name in ("critic_loss", "actor_loss", "alpha", "entropy", "q_value"):
        assert np.isfinite(np.asarray(result.metrics[name])).all(), name


@pytest.mark.slow
# --- options and errors --------------------------------------------------------------------------
def test_prioritized_n_step_dqn_runs_and_updates_priorities():
    train, single, _ = small("dqn", prioritized=True, n_step=3)
    state = single(jax.random.key(0)).state
    buffer = state.experience.buffer
    first_leaf = buffer.tree.shape[0] // 2  # the sum tree keeps its leaves in its second half
    leaves = np.asarray(buffer.tree[first_leaf:][:800])
    assert np.all(leaves > 0)  # every stored transition has a priority
    assert len(np.unique(leaves)) > 100  # set from TD errors, not all left at the maximum
    assert float(buffer.max_priority) >= leaves.max() - 1e-6


@pytest.mark.parametrize(
    ("module", "overrides", "message"),
    [
        (dqn, dict(num_envs=0), "num_envs must be a positive integer"),
        (dqn, dict(total_steps=1_000, learning_starts=1_000), "leaves no update"),
        (dqn, dict(gamma=1.5), "gamma must be in"),
        (dqn, dict(n_step=0), "n_step must be a positive integer"),
        (sac, dict(tau=0.0), "tau must be in (0, 1]"),
        (sac, dict(buffer_size=0), "buffer_size must be a positive integer"),
        (sac, dict(log_std_min=2.0, log_std_max=-2.0), "log_std_min"),
        (td3, dict(gradient_steps=3, policy_delay=2), "multiple of policy_delay"),
        (td3, dict(activation="swishy"), "Unknown activation 'swishy'"),
    ],
)
def test_bad_config_fails_before_compiling(module, overrides, message):
    env_id = "gymnax/CartPole-v1" if module is dqn else "gymnax/Pendulum-v1"
    env, params = jaxrl_suite.make(env_id)
    with pytest.raises(ValueError) as error:
        module.make_train(module.Config(**overrides), env, params)
    assert message in str(error.value)


def test_action_spaces_the_algorithm_cannot_handle_are_refused():
    cartpole, cartpole_params = jaxrl_suite.make("gymnax/CartPole-v1")
    pendulum, pendulum_params = jaxrl_suite.make("gymnax/Pendulum-v1")
    with pytest.raises(ValueError, match="DQN handles Discrete action spaces"):
        dqn.make_train(dqn.Config(), pendulum, pendulum_params)
    with pytest.raises(ValueError, match="TD3 handles Box"):
        td3.make_train(td3.Config(), cartpole, cartpole_params)


def test_presets_apply_by_env_and_overrides_win():
    assert dqn.preset_config("gymnax/CartPole-v1").total_steps == 100_000
    assert sac.preset_config("gymnax/Pendulum-v1", batch_size=64).batch_size == 64
    assert td3.preset_config("gymnax/DeepSea-bsuite") == td3.Config()
    with pytest.raises(ValueError, match="Unknown SAC preset 'pendulun'"):
        sac.preset_config("pendulun")


@pytest.mark.slow
def test_replay_buffer_lives_in_the_training_state():
    train, single, _ = small("td3")
    state = single(jax.random.key(1), train.default_hparams).state
    assert state.experience.buffer.storage.observation.shape == (250, 3)
    assert int(state.experience.buffer.size) == 250  # 300 steps into 250 slots: wrapped
    assert int(state.experience.buffer.position) == 50


# --- the optimizer argument ----------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("name", ["dqn", "sac"])
def test_an_explicit_chain_equal_to_the_default_runs_bit_for_bit_the_same(name):
    # DQN's default: clip at max_grad_norm, Adam, the preset's rate; SAC's: Adam at each
    # network's rate (the Pendulum preset's are all 1e-3, so one chain serves the three).
    module = ALGORITHMS[name]
    env_id, overrides = SMALL[name]
    env, params = jaxrl_suite.make(env_id)
    config = module.preset_config(env_id, **overrides)
    if name == "dqn":
        explicit = optim.adam(config.learning_rate, max_grad_norm=config.max_grad_norm)
    else:
        assert config.actor_learning_rate == config.critic_learning_rate == (
            config.alpha_learning_rate)
        explicit = optim.adam(config.critic_learning_rate)
    key = jax.random.key(0)
    default = jit_fast_compile(module.make_train(config, env, params))(key)
    chosen = jit_fast_compile(module.make_train(config, env, params, optimizer=explicit))(key)
    # Not the optimiser states: a constant rate's chain holds no schedule count.
    for field in ("experience", "key", "update_step") + (
            ("params", "target_params") if name == "dqn" else
            ("actor_params", "critic_params", "target_critic_params", "log_alpha")):
        jax.tree.map(lambda a, b: np.testing.assert_array_equal(as_numpy(a), as_numpy(b)),
                     getattr(default.state, field), getattr(chosen.state, field))
    jax.tree.map(np.testing.assert_array_equal, default.metrics, chosen.metrics)


@pytest.mark.slow
def test_hypergradient_of_sac_through_training_matches_finite_differences():
    """d(mean Q over a 16-update SAC run)/d(critic learning rate), through every update.

    With ``adam_eps_root=1e-8`` the gradient is finite and agrees with a central difference
    (measured: -207.94 against -208.00 at h = 1e-4, -207.94 at h = 3e-5). With the default 0 it
    is NaN (measured): a ReLU unit that is dead on a minibatch gives a zero gradient, a zero
    second moment, and the derivative of its square root there is infinite.
    """
    env, params = jaxrl_suite.make("gymnax/Pendulum-v1")
    config = sac.preset_config("gymnax/Pendulum-v1", total_steps=80, learning_starts=64,
                               buffer_size=80, batch_size=16, hidden_sizes=(8, 8),
                               adam_eps_root=1e-8)
    train = sac.make_train(config, env, params)
    key = jax.random.key(0)

    def mean_q(rate):
        hparams = train.default_hparams.replace(critic_learning_rate=rate)
        return train(key, hparams).metrics["q_value"].mean()

    value_and_grad = jit_fast_compile(jax.value_and_grad(mean_q))  # one compile serves all
    rate, h = jnp.float32(1e-3), 1e-4
    _, grad = value_and_grad(rate)
    (up, _), (down, _) = value_and_grad(rate + h), value_and_grad(rate - h)
    assert np.isfinite(grad)
    # Round-off in the difference quotient is about 1e-7 * |Q| / h ~ 2e-3 (1e-5 relative); the
    # measured gap (3e-4 relative) is its truncation error. 1e-2 leaves room for other builds.
    np.testing.assert_allclose(grad, (up - down) / (2 * h), rtol=1e-2)
