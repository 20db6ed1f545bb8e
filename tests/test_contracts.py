"""The train and objective contracts meta-learning builds on (issue "core contracts", section 2).

PPO's replaceable parts: a complete optax optimiser (optax's sign convention), the policy
objective over an ``ObjectiveInputs`` record, the loss assembly, the training progress, traced
env params, stop-gradient at the rollout, rematerialisation, and the outer gradient of a run's
outcome with respect to an objective parameter against a central finite difference.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxrl_suite
from jaxrl_suite.algos import dqn, ppo
from jaxrl_suite.env.wrappers import AutoReset, EpisodeStats
from jaxrl_suite.learn import objectives
from tests.toy_envs import PointMassEnv

TINY = dict(total_steps=3 * 4 * 16, num_envs=4, num_steps=16, update_epochs=2,
            num_minibatches=2, hidden_sizes=(8,))


def cartpole():
    return jaxrl_suite.make("gymnax/CartPole-v1")


def leaves_equal(a, b) -> bool:
    return all(np.array_equal(np.asarray(x), np.asarray(y), equal_nan=True)
               for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True))


@functools.cache
def tiny_cartpole_default():
    env, params = cartpole()
    return jax.jit(ppo.make_train(ppo.Config(**TINY), env, params))(jax.random.key(0))


# --- the optimiser: optax's convention ---------------------------------------------------------
def test_a_transformation_that_ascends_is_refused_before_compiling():
    env, params = cartpole()
    with pytest.raises(ValueError, match="ascends the loss.*optax's convention"):
        ppo.make_train(ppo.Config(**TINY), env, params, optimizer=optax.scale_by_adam())
    with pytest.raises(TypeError, match="optimizer must be an optax.GradientTransformation"):
        ppo.make_train(ppo.Config(**TINY), env, params, optimizer="adam")


@pytest.mark.slow
def test_a_complete_optax_optimiser_equal_to_the_default_gives_the_default_run():
    """PPO's default is clip -> Adam -> -rate, annealed per update; the same chain written with
    optax's own pieces and passed in gives the same run (round-off aside: optax's schedule is
    evaluated per minibatch step)."""
    env, params = cartpole()
    config = ppo.Config(**TINY)
    steps_per_update = config.update_epochs * config.num_minibatches
    num_updates = config.total_steps // (config.num_envs * config.num_steps)
    schedule = lambda count: config.learning_rate * (  # noqa: E731
        1.0 - (count // steps_per_update) / num_updates)
    chain = optax.chain(optax.clip_by_global_norm(config.max_grad_norm),
                        optax.adam(schedule, eps=config.adam_epsilon))
    given = jax.jit(ppo.make_train(config, env, params, optimizer=chain))(jax.random.key(0))
    default = tiny_cartpole_default()
    for x, y in zip(jax.tree.leaves(given.state.params), jax.tree.leaves(default.state.params)):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=1e-5, atol=1e-6)
    assert "learning_rate" not in given.metrics  # a given optimiser keeps its own rate


@pytest.mark.slow
def test_optax_adam_trains_cartpole_as_the_default_does():
    """The README's example: ``optimizer=optax.adam(lr)`` (no clipping, no annealing) reaches
    the preset's learning threshold (``test_ppo``'s default reaches >= 475 too)."""
    env, params = cartpole()
    config = ppo.preset_config("gymnax/CartPole-v1")
    train = ppo.make_train(config, env, params, optimizer=optax.adam(config.learning_rate))
    result = jax.jit(jax.vmap(train))(jax.random.split(jax.random.key(42), 4))
    final = np.asarray(ppo.final_return(result))
    assert final.mean() >= 450, final  # a random policy scores about 22


# --- the objective and the loss assembly -------------------------------------------------------
@pytest.mark.slow
def test_an_objective_recomputing_the_clipped_surrogate_reproduces_ppo_bit_for_bit():
    def my_surrogate(inputs: objectives.ObjectiveInputs) -> jax.Array:
        epsilon = inputs.hparams.clip_epsilon
        clipped = jnp.clip(inputs.ratio, 1.0 - epsilon, 1.0 + epsilon)
        return -jnp.minimum(inputs.ratio * inputs.advantages,
                            clipped * inputs.advantages).mean()

    env, params = cartpole()
    mine = jax.jit(ppo.make_train(ppo.Config(**TINY), env, params,
                                  policy_objective=my_surrogate))(jax.random.key(0))
    assert leaves_equal(mine.state.params, tiny_cartpole_default().state.params)
    assert leaves_equal(mine.metrics, tiny_cartpole_default().metrics)


@pytest.mark.slow
def test_the_objective_sees_the_training_progress_from_0_to_1():
    """A TA-LPO-style objective reads ``progress``; an assembly reports it as a diagnostic."""
    seen_by_objective = []

    def time_aware(inputs):
        seen_by_objective.append(inputs.progress)
        return objectives.clipped_surrogate(inputs) * (1.0 - inputs.progress)

    def assembly(inputs, policy_loss):
        total, diagnostics = objectives.actor_critic_loss(inputs, policy_loss, clip_value=True)
        return total, {**diagnostics, "progress": inputs.progress,
                       "epoch_progress": inputs.epoch_progress}

    env, params = cartpole()
    config = ppo.Config(**{**TINY, "total_steps": 5 * 4 * 16, "update_epochs": 3})
    result = jax.jit(ppo.make_train(config, env, params, policy_objective=time_aware,
                                    loss_assembly=assembly))(jax.random.key(1))
    assert seen_by_objective, "the objective was not called"
    np.testing.assert_allclose(result.metrics["progress"], np.arange(5) / 5, rtol=1e-6)
    np.testing.assert_allclose(result.metrics["epoch_progress"], np.full(5, 1 / 3), rtol=1e-6)
    assert np.isfinite(result.metrics["total_loss"]).all()


def test_unknown_objective_name_is_refused():
    env, params = cartpole()
    with pytest.raises(ValueError, match="objective must be one of"):
        ppo.make_train(ppo.Config(**TINY, objective="lpo_v2"), env, params)


@pytest.mark.slow
def test_a2c_preset_learns_cartpole():
    env, params = cartpole()
    config = ppo.preset_config("a2c", total_steps=100_000)
    assert (config.update_epochs, config.num_minibatches, config.objective) == (
        1, 1, "policy_gradient")
    result = jax.jit(jax.vmap(ppo.make_train(config, env, params)))(
        jax.random.split(jax.random.key(7), 4))
    final = np.asarray(ppo.final_return(result))
    assert final.mean() >= 200, final  # a random policy scores about 22


# --- traced env params -------------------------------------------------------------------------
@pytest.mark.slow
def test_vmap_over_env_params_equals_separate_runs():
    env, params = cartpole()
    train = ppo.make_train(ppo.Config(**TINY), env, params)
    tasks = [params.replace(gravity=9.8), params.replace(gravity=20.0)]
    stacked = jax.tree.map(lambda *x: jnp.stack([jnp.asarray(v) for v in x]), *tasks)
    key = jax.random.key(2)
    together = jax.jit(jax.vmap(train, in_axes=(None, None, 0)))(key, None, stacked)
    single = jax.jit(train)
    runs = [single(key, None, task) for task in tasks]
    for i, alone in enumerate(runs):
        for x, y in zip(jax.tree.leaves(alone.state.params),
                        jax.tree.leaves(jax.tree.map(lambda v, i=i: v[i], together.state.params))):
            np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=1e-4, atol=1e-5)
    # The tasks really differ, and the traced default equals the closed-over one.
    assert not leaves_equal(runs[0].state.params, runs[1].state.params)
    closed = tiny_cartpole_default()
    for x, y in zip(jax.tree.leaves(single(jax.random.key(0), None, params).state.params),
                    jax.tree.leaves(closed.state.params)):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=1e-4, atol=1e-5)


def test_an_algorithm_that_closes_over_its_env_params_says_so():
    env, params = cartpole()
    train = dqn.make_train(dqn.Config(total_steps=200, learning_starts=100), env, params)
    with pytest.raises(ValueError, match="does not take them as an argument"):
        train(jax.random.key(0), None, params)


# --- gradients through training ----------------------------------------------------------------
POINT_TINY = dict(total_steps=2 * 4 * 8, num_envs=4, num_steps=8, update_epochs=2,
                  num_minibatches=2, hidden_sizes=(8,), anneal_lr=False, learning_rate=1e-2,
                  adam_eps_root=1e-8)


def point_mass():
    env = PointMassEnv()
    return EpisodeStats(AutoReset(env)), env.default_params


def meta_objective(inputs):
    """The clipped surrogate plus ``theta`` times a squared-ratio penalty (a one-parameter
    learned drift); ``theta`` is ``hparams.meta``."""
    return (objectives.clipped_surrogate(inputs)
            + inputs.hparams.meta * jnp.mean(jnp.square(inputs.ratio - 1.0)))


def outcome_after_two_updates(stop_gradients: bool, remat: bool = False,
                              dtype: str = "float32"):
    """``theta -> return of a fixed-noise rollout after 2 PPO updates`` on the point mass,
    whose dynamics (and reparameterised Gaussian actions) are differentiable."""
    env, params = point_mass()
    config = ppo.Config(**POINT_TINY, stop_rollout_gradients=stop_gradients,
                        remat_learn=remat, dtype=dtype)
    train = ppo.make_train(config, env, params, policy_objective=meta_objective)
    learner = ppo.make_learner(config, env, params)
    num_envs = config.num_envs

    def outcome(theta):
        hparams = train.default_hparams.replace(meta=theta)
        state = train.run_updates(train.initial_state(jax.random.key(0), hparams), 2)[0]
        observation, env_state = jax.vmap(learner.env.reset, in_axes=(0, None))(
            jax.random.split(jax.random.key(9), num_envs), params)
        carry = learner.initial_carry(observation, env_state)
        _, trajectory = learner.rollout(state.params, carry, jax.random.key(10),
                                        jax.random.key(11))
        return trajectory.reward.sum(0).mean()

    return outcome


# Measured in float64 with these settings (relative error of the gradient against the central
# difference): 6e-8 at step 1e-3, 6e-10 at 1e-4, 7e-11 at 1e-5, 3e-9 at 1e-6 (round-off takes
# over). In float32 the old test needed rtol 0.05 at step 0.05. RTOL_FD leaves ~15x margin.
FD_STEP = 1e-4
RTOL_FD = 1e-8


@pytest.mark.slow
def test_outer_gradient_of_the_return_matches_a_central_finite_difference():
    # float64 throughout (params, observations, rewards, the env), so the central difference's
    # error is its O(step^2) truncation, not float32 round-off divided by the step.
    with jax.enable_x64(True):  # jax.experimental.enable_x64 is gone in jax 0.10
        outcome = outcome_after_two_updates(stop_gradients=False, dtype="float64")
        theta = jnp.float64(0.5)
        value, gradient = jax.jit(jax.value_and_grad(outcome))(theta)
        assert gradient.dtype == jnp.float64 and value.dtype == jnp.float64
        evaluate = jax.jit(outcome)
        finite_difference = (evaluate(theta + FD_STEP) - evaluate(theta - FD_STEP)) / (2 * FD_STEP)
        assert np.isfinite(float(gradient)) and np.isfinite(float(value))
        assert abs(float(finite_difference)) > 1e-3, "theta must move the outcome for a real check"
        print("float64 gradient", float(gradient), "central difference", float(finite_difference),
              "relative error", abs(float(gradient) / float(finite_difference) - 1.0))
        np.testing.assert_allclose(float(gradient), float(finite_difference), rtol=RTOL_FD)
        # Rematerialising the inner updates gives the same gradient.
        remat = jax.jit(jax.grad(outcome_after_two_updates(stop_gradients=False, remat=True,
                                                           dtype="float64")))
        np.testing.assert_allclose(float(remat(theta)), float(gradient), rtol=1e-10)


@pytest.mark.slow
@pytest.mark.parametrize("stop", [True, False])
def test_rollout_data_carries_no_gradient_unless_asked(stop):
    env, params = point_mass()
    config = ppo.Config(**POINT_TINY, stop_rollout_gradients=stop)
    learner = ppo.make_learner(config, env, params)
    observation, env_state = jax.vmap(learner.env.reset, in_axes=(0, None))(
        jax.random.split(jax.random.key(0), config.num_envs), params)
    network = learner.init_params(jax.random.key(1), observation)
    carry = learner.initial_carry(observation, env_state)

    def data_sum(network_params):
        _, trajectory = learner.rollout(network_params, carry, jax.random.key(2),
                                        jax.random.key(3))
        values, advantages, targets = learner.assess(network_params, trajectory,
                                                     ppo.Hyperparams.from_config(config))
        return (trajectory.log_prob.sum() + trajectory.reward.sum() + values.sum()
                + advantages.sum() + targets.sum())

    grads = jax.grad(data_sum)(network)
    total = sum(float(jnp.abs(g).sum()) for g in jax.tree.leaves(grads))
    assert (total == 0.0) == stop, total


# --- the harness runs any Train ------------------------------------------------------------------
@pytest.mark.slow
def test_the_harness_runs_a_prebuilt_train_resumes_it_and_fingerprints_its_hparams(tmp_path):
    """A ``Train`` built in Python (here PPO with its own objective and a 2-member population
    of ``meta`` values) gets a run folder, checkpoints and an exact resume; resuming with
    another population is refused."""
    import shutil

    from jaxrl_suite.run.checkpoints import Checkpointer
    from jaxrl_suite.run.harness import RunOptions, run_training

    env, params = cartpole()
    train = ppo.make_train(ppo.Config(**{**TINY, "total_steps": 4 * 4 * 16}), env, params,
                           policy_objective=lambda inputs: objectives.clipped_surrogate(inputs)
                           + inputs.hparams.meta * jnp.mean(jnp.square(inputs.ratio - 1.0)))
    population = jax.tree.map(lambda x: jnp.stack([x, x]), train.default_hparams).replace(
        meta=jnp.array([0.0, 1.0], jnp.float32))
    options = RunOptions(env="gymnax/CartPole-v1", seeds=2, run_dir=str(tmp_path / "run"),
                         checkpoint_every=2, no_progress=True, eval_episodes=0)
    full, run_dir = run_training("ppo-meta", options=options, train=train, hparams=population)
    assert (run_dir / "metrics.csv").exists() and full.metrics["episode_return"].shape == (4, 2)
    record = (run_dir / "config.json").read_text()
    assert '"algo": "ppo-meta"' in record and '"hparams"' in record

    shutil.rmtree(run_dir / "checkpoints" / "4")  # the last checkpoint is lost
    resume = RunOptions(**{**options.__dict__, "resume": str(run_dir)})
    resumed, _ = run_training("ppo-meta", options=resume, train=train, hparams=population)
    assert resumed.metrics["episode_return"].shape == (2, 2)  # the two updates after update 2
    assert leaves_equal(full.state.params, resumed.state.params)
    checkpointer = Checkpointer(run_dir / "checkpoints")
    assert checkpointer.latest_update() == 4
    checkpointer.close()

    other = population.replace(meta=jnp.array([0.0, 2.0], jnp.float32))
    with pytest.raises(ValueError, match="Cannot resume .*hparams"):
        run_training("ppo-meta", options=resume, train=train, hparams=other)
    with pytest.raises(TypeError, match="train must be a jaxrl_suite.run.training.Train"):
        run_training("ppo-meta", options=options, train=lambda env, params: "not a train")


# --- rendering dispatches through the env's registry entry ---------------------------------------
def test_jaxrl_render_dispatches_through_the_registry_render_hook(tmp_path, capsys):
    from jaxrl_suite import cli
    from jaxrl_suite.env.registry import renderable_envs

    assert {"maze", "maze-rooms"} <= set(renderable_envs())
    assert "gymnax/CartPole-v1" not in renderable_envs()
    requests = []

    def hook(request):
        requests.append(request)
        return "nothing drawn"

    jaxrl_suite.register("test/Drawable-v0", "tests.toy_envs:TwoArmEnv", render=hook,
                         overwrite=True)
    output = str(tmp_path / "x.png")
    assert cli.main(["render", "test/Drawable-v0", output, "--seed", "3"]) == 0
    assert requests[0].env_id == "test/Drawable-v0" and requests[0].seed == 3
    assert "nothing drawn" in capsys.readouterr().out
    assert cli.main(["render", "gymnax/CartPole-v1", output]) == 2
    assert "registers no render hook; accepted: " in capsys.readouterr().err
    with pytest.raises(TypeError, match="render for 'test/Bad-v0' must be a callable"):
        jaxrl_suite.register("test/Bad-v0", "tests.toy_envs:TwoArmEnv", render=42)


# --- one typed description per algorithm -------------------------------------------------------
def test_every_registered_algorithm_declares_its_spec_and_the_harness_reads_only_that():
    from jaxrl_suite.run.algorithms import ALGORITHMS, AlgorithmSpec, algorithm_spec, load_algorithm
    from jaxrl_suite.run.harness import RunOptions, run_training

    for name in ALGORITHMS:
        module = load_algorithm(name)
        spec = algorithm_spec(module)
        assert isinstance(spec, AlgorithmSpec) and spec.name == name
        assert module.preset_config == spec.preset_config and module.main == spec.main
        assert isinstance(spec.preset_config(spec.default_env), spec.config)
        assert spec.x_axis == ("gradient_steps" if spec.needs_dataset else "env_steps")
    with pytest.raises(TypeError, match="declares ALGORITHM = AlgorithmSpec"):
        run_training(objectives, None, RunOptions())  # a module that is not an algorithm
