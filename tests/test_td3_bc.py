"""TD3+BC: the lambda-normalised actor loss by hand (lambda carries no gradient), the target
(timeouts bootstrap, terminals do not) from dataset rows, config errors, seeds under vmap equal
separate runs, and learning beyond the behaviour policy on the Pendulum medium dataset."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrl_suite import make
from jaxrl_suite.algos.offline import td3_bc
from jaxrl_suite.data.datasets import DatasetInfo, behaviour_score, make_dataset
from tests.offline_data import pendulum_family

ENV_ID = "gymnax/Pendulum-v1"


@pytest.fixture(scope="module")
def env():
    return make(ENV_ID)


def tiny_dataset(num_transitions: int = 400):
    """Random Pendulum-shaped transitions in 200-step episodes that end in a timeout."""
    rng = np.random.default_rng(0)
    observations = rng.normal(size=(num_transitions, 3)).astype(np.float32)
    return make_dataset(
        observations, rng.uniform(-2, 2, (num_transitions, 1)),
        -rng.uniform(0, 16, num_transitions), observations + 0.1,
        np.zeros(num_transitions, bool), np.arange(num_transitions) % 200 == 199,
        info=DatasetInfo(name="tiny", ref_min_score=-1200.0, ref_max_score=-150.0),
    )


def tiny_config(**overrides) -> td3_bc.Config:
    settings = dict(dataset="tiny", total_updates=20, eval_interval=10, batch_size=16,
                    evaluation_episodes=1, hidden_sizes=(8,))
    return td3_bc.Config(**{**settings, **overrides})


def test_actor_loss_by_hand_and_lambda_carries_no_gradient():
    q = jnp.array([-2.0, -4.0, -6.0])
    policy_action = jnp.array([[0.5], [0.0], [-1.0]])
    dataset_action = jnp.array([[0.0], [0.0], [1.0]])
    loss, lam = td3_bc.td3_bc_actor_loss(q, policy_action, dataset_action, 2.5)
    # lambda = 2.5 / mean|Q| = 2.5 / 4; -lambda mean(Q) = 2.5; BC = (0.25 + 0 + 4) / 3.
    assert float(lam) == pytest.approx(0.625)
    assert float(loss) == pytest.approx(2.5 + 4.25 / 3, rel=1e-6)
    # With lambda held fixed dL/dQ_i = -lambda / 3. Were lambda differentiated, the Q term would
    # be the constant -alpha mean(Q) / mean|Q| = 2.5 for all-negative Q, with zero gradient.
    grad_q = jax.grad(lambda q: td3_bc.td3_bc_actor_loss(q, policy_action, dataset_action,
                                                         2.5)[0])(q)
    np.testing.assert_allclose(grad_q, -0.625 / 3 * np.ones(3), rtol=1e-6)
    grad_pi = jax.grad(lambda pi: td3_bc.td3_bc_actor_loss(q, pi, dataset_action, 2.5)[0])(
        policy_action)
    np.testing.assert_allclose(grad_pi, 2.0 * (policy_action - dataset_action) / 3, rtol=1e-6)


def test_timeouts_bootstrap_and_terminals_do_not():
    # Rows: mid-episode, a timeout (truncation), a terminal.
    observations = np.zeros((3, 3), np.float32)
    dataset = make_dataset(observations, np.zeros((3, 1)), [1.0, 2.0, 3.0], observations + 1.0,
                           terminals=[False, False, True], timeouts=[False, True, False])
    batch = dataset.transitions(jnp.arange(3))
    next_q = jnp.array([[10.0, 20.0, 30.0], [12.0, 19.0, 31.0]])  # (num_critics, batch)
    target = td3_bc.td_target(batch.reward, batch.terminated, next_q, 0.9)
    np.testing.assert_allclose(target, [1.0 + 9.0, 2.0 + 0.9 * 19.0, 3.0], rtol=1e-6)


@pytest.mark.parametrize("field, value", [
    ("alpha", -1.0), ("policy_noise", -0.1), ("noise_clip", -0.5), ("policy_freq", 0),
    ("tau", 2.0), ("gamma", -0.1), ("critic_learning_rate", 0.0), ("num_critics", 0),
    ("hidden_sizes", (0,)), ("batch_size", 0),
])
def test_bad_config_raises_naming_the_field(env, field, value):
    with pytest.raises(ValueError, match=field):
        td3_bc.make_train(tiny_config(**{field: value}), *env, dataset=tiny_dataset())


def test_eval_interval_must_hold_whole_actor_cycles(env):
    with pytest.raises(ValueError, match="eval_interval"):
        td3_bc.make_train(tiny_config(policy_freq=3), *env, dataset=tiny_dataset())


def test_presets():
    config = td3_bc.preset_config(ENV_ID, dataset="x")
    assert (config.alpha, config.policy_noise, config.noise_clip, config.policy_freq) == (
        2.5, 0.2, 0.5, 2)
    assert config.total_updates == 30_000
    with pytest.raises(ValueError, match="preset"):
        td3_bc.preset_config("no-such-preset")


@pytest.mark.slow
def test_vmapped_seeds_equal_separate_runs(env):
    train = td3_bc.make_train(tiny_config(), *env, dataset=tiny_dataset())
    keys = jax.random.split(jax.random.key(3), 2)
    batched = jax.jit(jax.vmap(train))(keys)
    single = jax.jit(train)
    for seed in range(2):
        alone = single(keys[seed])
        for name, value in alone.metrics.items():
            np.testing.assert_allclose(batched.metrics[name][seed], value, rtol=1e-5,
                                       atol=1e-6, err_msg=name)
        for in_batch, apart in zip(jax.tree.leaves(batched.state.learner),
                                   jax.tree.leaves(alone.state.learner), strict=True):
            np.testing.assert_allclose(in_batch[seed], apart, rtol=1e-5, atol=1e-6)
    assert not np.allclose(batched.metrics["critic_loss"][0], batched.metrics["critic_loss"][1])


def test_one_critic_step_per_actor_step_traces(env):
    # policy_freq 1: the core then draws batches (batch_size, ...), without the leading axis.
    train = td3_bc.make_train(tiny_config(policy_freq=1), *env, dataset=tiny_dataset())
    result = jax.eval_shape(train, jax.random.key(0))  # traced, not compiled
    assert result.metrics["actor_loss"].shape == (2,)


@pytest.mark.slow
def test_td3_bc_beats_the_behaviour_policy_on_pendulum_medium(env):
    # Cheap settings (the preset's published ones need ~1e4 steps of (256, 256) on 1e5
    # transitions): lr 1e-3 and tau 0.05 instead of 3e-4 and 0.005. Measured on the 1e4-transition
    # medium dataset (behaviour 34.9): the mean of the evaluations at 3k, 3.5k and 4k steps was
    # 44-45 for each of 4 seeds; about 15 s for the run on 2 shared CPU cores.
    medium = pendulum_family()["medium"]
    behaviour = behaviour_score(medium)
    config = td3_bc.preset_config(
        ENV_ID, dataset="pendulum-medium", total_updates=4_000, eval_interval=500,
        hidden_sizes=(64, 64), actor_learning_rate=1e-3, critic_learning_rate=1e-3, tau=0.05,
    )
    result = jax.jit(td3_bc.make_train(config, *env, dataset=medium))(jax.random.key(0))
    scores = np.asarray(result.metrics["normalized_score"])
    assert scores[-3:].mean() > behaviour + 5.0, (scores, behaviour)
