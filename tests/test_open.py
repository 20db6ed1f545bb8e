"""OPEN's learned optimiser (meta/open.py): its inputs and dormancy by hand, stepping by
-lr * g equals SGD through PPO, noise on the actor only, centred steps, the update's gradient
in the optimiser's weights against finite differences, a meta-run that resumes bit for bit and
improves on its initialisation, the discovered optimiser used by `jaxrl train ppo`, errors."""

from __future__ import annotations

import dataclasses
import json
import shutil

import flax.linen as nn
import jax
import jax.flatten_util
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxrl_suite
from jaxrl_suite.algos import ppo
from jaxrl_suite.learn.networks import MLP, unit_dormancy
from jaxrl_suite.meta import open as open_lib
from jaxrl_suite.run.harness import run_training
from jaxrl_suite.run.options import RunOptions
from tests.states import assert_states_equal


def _params():
    """A two-network tree like PPO's: actor and critic, two dense layers each."""
    keys = jax.random.split(jax.random.key(3), 8)

    def layer(k1, k2, shape):
        return {"bias": jax.random.normal(k1, shape[1:]), "kernel": jax.random.normal(k2, shape)}

    return {name: {"params": {"Dense_0": layer(keys[4 * i], keys[4 * i + 1], (3, 4)),
                              "Dense_1": layer(keys[4 * i + 2], keys[4 * i + 3], (4, 2))}}
            for i, name in enumerate(("actor", "critic"))}


def _recording_optimizer(num_updates=5, steps_per_update=3):
    """An OPEN whose rule keeps its 19 inputs as the GRU carry and steps by nothing."""
    config = open_lib.Config(gru_size=open_lib.NUM_INPUTS, center_updates=False)
    return open_lib.open_optimizer(None, config, num_updates, steps_per_update,
                                   update_rule=lambda w, c, inputs, g: (inputs, 0.0 * g))


def test_the_optimiser_inputs_are_as_documented():
    params = _params()
    grads = jax.tree.map(lambda p: 0.1 * p + 0.05, params)
    optimizer = _recording_optimizer()
    state = optimizer.init(params)
    dormancy = jax.tree.map(lambda p: jnp.full(p.shape, 0.25), params)
    update = jax.jit(optimizer.update)
    for _ in range(5):  # steps 0..4: the last is update 1's minibatch step 1 of 3
        updates, state = update(grads, state, params, dormancy=dormancy)
    assert state.count == 5
    for leaf in jax.tree.leaves(updates):
        np.testing.assert_array_equal(leaf, 0.0)
    kernel = state.carry["actor"]["params"]["Dense_0"]["kernel"]  # the last step's inputs
    g = grads["actor"]["params"]["Dense_0"]["kernel"]
    p = params["actor"]["params"]["Dense_0"]["kernel"]
    # Momentum at decay b after 5 equal gradients: (1 - b^5) g.
    decays = np.asarray(open_lib.MOMENTUM_DECAYS)
    momenta = (1.0 - decays**5) * np.asarray(g)[..., None]
    np.testing.assert_allclose(state.momenta["actor"]["params"]["Dense_0"]["kernel"], momenta,
                               rtol=1e-3)  # float32 accumulation against float64
    raw = np.concatenate([np.asarray(p)[..., None], np.sign(momenta),
                          np.log(np.abs(momenta) + 1e-13), np.sign(g)[..., None],
                          np.log(np.abs(g) + 1e-13)[..., None]], axis=-1)
    normalised = raw / np.sqrt(1e-5 + np.mean(raw**2, axis=(0, 1), keepdims=True))
    np.testing.assert_allclose(kernel[..., :15], normalised, rtol=1e-3, atol=1e-4)
    np.testing.assert_allclose(kernel[..., 15], 1 / 5)  # training progress: update 1 of 5
    np.testing.assert_allclose(kernel[..., 16], 1 / 3)  # batch progress: step 1 of 3
    np.testing.assert_allclose(kernel[..., 17], 0.0)  # the first layer
    np.testing.assert_allclose(kernel[..., 18], 0.25)  # the dormancy given
    np.testing.assert_allclose(state.carry["critic"]["params"]["Dense_1"]["bias"][..., 17], 1.0)


def test_unit_dormancy_matches_a_hand_computation():
    module = MLP((3,), 2)
    inputs = jax.random.normal(jax.random.key(0), (5, 4))
    variables = module.init(jax.random.key(1), inputs)
    scores = unit_dormancy(module, variables, inputs, nn.tanh)
    w0, b0 = variables["params"]["Dense_0"]["kernel"], variables["params"]["Dense_0"]["bias"]
    w1, b1 = variables["params"]["Dense_1"]["kernel"], variables["params"]["Dense_1"]["bias"]
    hidden = np.tanh(np.asarray(inputs) @ np.asarray(w0) + np.asarray(b0))
    activity = np.abs(hidden).mean(axis=0)
    expected = activity / activity.mean()
    np.testing.assert_allclose(scores["params"]["Dense_0"]["bias"], expected, rtol=1e-5)
    np.testing.assert_allclose(scores["params"]["Dense_0"]["kernel"],
                               np.broadcast_to(expected, (4, 3)), rtol=1e-5)
    output = np.abs(hidden @ np.asarray(w1) + np.asarray(b1)).mean(axis=0)  # no activation
    np.testing.assert_allclose(scores["params"]["Dense_1"]["kernel"],
                               np.broadcast_to(output / output.mean(), (3, 2)), rtol=1e-5)


def test_noise_moves_only_the_actor_and_steps_are_centred():
    params = _params()
    grads = jax.tree.map(lambda p: 0.3 * p, params)
    weights = open_lib.init_optimizer_params(jax.random.key(5))

    def step(**overrides):
        config = dataclasses.replace(open_lib.Config(step_scale=1.0), **overrides)
        optimizer = open_lib.open_optimizer(weights, config, 10, 4)
        return jax.jit(optimizer.update)(grads, optimizer.init(params), params)[0]

    noisy, quiet = step(), step(stochastic=False)
    assert abs(sum(float(jnp.sum(u)) for u in jax.tree.leaves(noisy))) < 1e-4  # centred
    difference = jax.tree.map(lambda a, b: np.asarray(a - b), noisy, quiet)
    # The critic's steps differ by one constant (the centring shift), the actor's by noise.
    shifts = np.concatenate([d.ravel() for d in jax.tree.leaves(difference["critic"])])
    np.testing.assert_allclose(shifts, shifts[0], atol=1e-6)
    actor = np.concatenate([d.ravel() for d in jax.tree.leaves(difference["actor"])])
    assert np.std(actor) > 100 * max(np.std(shifts), 1e-9)
    # Uncentred, the critic's steps are the same with and without noise.
    raw = jax.tree.map(lambda a, b: np.asarray(a - b), step(center_updates=False),
                       step(center_updates=False, stochastic=False))
    for leaf in jax.tree.leaves(raw["critic"]):
        np.testing.assert_array_equal(leaf, 0.0)


def test_the_update_is_differentiable_in_the_optimiser_weights_as_finite_differences_say():
    params = _params()
    grads = jax.tree.map(lambda p: 0.2 * p - 0.1, params)
    config = open_lib.Config(step_scale=1.0, exponent_scale=0.5, gru_size=4, hidden_size=6)
    weights = open_lib.init_optimizer_params(jax.random.key(2), config)
    probe = jax.tree.map(lambda p: jax.random.normal(jax.random.key(9), p.shape), params)

    def loss(weights):
        optimizer = open_lib.open_optimizer(weights, config, 10, 4)
        updates = optimizer.update(grads, optimizer.init(params), params)[0]
        return sum(jnp.vdot(u, q) for u, q in zip(jax.tree.leaves(updates),
                                                  jax.tree.leaves(probe), strict=True))

    # Central differences along unit directions in the weights (jax's check_grads perturbs
    # every weight by eps at once, which moves the ReLUs' inputs across their kinks).
    value_and_gradient = jax.jit(jax.value_and_grad(loss))
    _, gradient = value_and_gradient(weights)
    flat, unravel = jax.flatten_util.ravel_pytree(weights)
    flat_gradient = jax.flatten_util.ravel_pytree(gradient)[0]
    at = jax.jit(lambda flat: loss(unravel(flat)))
    eps = 1e-3
    for seed in range(3):
        direction = jax.random.normal(jax.random.key(seed), flat.shape)
        direction = direction / jnp.linalg.norm(direction)
        finite = (at(flat + eps * direction) - at(flat - eps * direction)) / (2 * eps)
        analytic = jnp.vdot(flat_gradient, direction)
        assert abs(float(finite - analytic)) <= 2e-2 * max(1.0, abs(float(analytic))), (
            seed, float(finite), float(analytic))
    assert float(jnp.linalg.norm(flat_gradient)) > 1e-3  # the weights do move the update


# --- through PPO ------------------------------------------------------------------------------
TINY_PPO = ppo.Config(total_steps=4 * 16 * 4, num_envs=4, num_steps=16, num_minibatches=2,
                      update_epochs=2)


def _trained_params(optimizer):
    env, env_params = jaxrl_suite.make("gymnax/CartPole-v1")
    train = ppo.make_train(TINY_PPO, env, env_params, optimizer=optimizer)
    state = train.init(jax.random.key(0), train.default_hparams)
    run = jax.jit(lambda s: jax.lax.scan(lambda s, _: (train.update(s)[0], None), s, None,
                                         length=train.num_updates)[0])
    return state.params, run(state).params


def test_open_stepping_by_minus_lr_times_the_gradient_trains_ppo_exactly_as_sgd():
    rate = 0.01
    optimizer = open_lib.OpenOptimizer.for_ppo(
        open_lib.Config(center_updates=False), TINY_PPO,
        update_rule=lambda weights, carry, inputs, gradient: (carry, rate * gradient))
    initial, by_open = _trained_params(optimizer)
    _, by_sgd = _trained_params(optax.sgd(rate))
    assert_states_equal(by_open, by_sgd)
    moved = max(float(jnp.abs(a - b).max()) for a, b in zip(jax.tree.leaves(initial),
                                                            jax.tree.leaves(by_open)))
    assert moved > 1e-3  # it trained


# --- meta-training ------------------------------------------------------------------------------
TINY = open_lib.Config(population_size=8, generations=10, inner_total_steps=2048,
                       inner_num_envs=4, fitness_episodes=4, fitness_max_steps=200,
                       ppo_preset="none")


@pytest.mark.slow
def test_meta_run_resumes_bit_exactly_improves_and_its_optimiser_trains_ppo(tmp_path):
    options = RunOptions(env="gymnax/CartPole-v1", run_dir=str(tmp_path / "run"),
                         no_progress=True)
    straight, run_dir = run_training(open_lib, TINY, options)
    # As if killed after generation 9's checkpoint: the last one is gone.
    shutil.rmtree(run_dir / "checkpoints" / str(TINY.generations))
    resumed, _ = run_training(open_lib, TINY, dataclasses.replace(options, resume=str(run_dir)))
    assert_states_equal(straight.state, resumed.state)

    rows = (run_dir / "metrics.csv").read_text().splitlines()
    header = rows[0].split(",")
    assert len(rows) == 1 + TINY.generations
    for column in ("fitness_mean", "fitness_max", "adam_return", "mean_return", "best_fitness"):
        assert column in header
    # The search improves on its (random) initialisation: the members' mean fitness in the last
    # three generations beats the first three's (a random policy scores about 20 on CartPole,
    # the ceiling here is 200).
    fitness = np.array([float(row.split(",")[header.index("fitness_mean")]) for row in rows[1:]])
    assert fitness[-3:].mean() > fitness[:3].mean() + 8.0, fitness

    weights = open_lib.load_optimizer_params(run_dir / "optimizer.npz", TINY)
    for a, b in zip(jax.tree.leaves(weights),
                    jax.tree.leaves(jax.tree.map(lambda x: x[0], resumed.state.mean)),
                    strict=True):
        np.testing.assert_array_equal(a, b)
    assert (run_dir / "optimizer_best.npz").is_file()

    # `jaxrl meta eval RUN_DIR`: PPO with Adam and with the discovered optimiser (read as
    # `jaxrl train ppo --optimizer-params RUN_DIR` reads it: ppo.Config.optimizer_params), on
    # the same keys.
    from jaxrl_suite import cli

    assert cli.main(["meta", "eval", str(run_dir), "--horizons", "1", "--seeds", "2"]) == 0
    results = json.loads((run_dir / "meta_eval" / "results.json").read_text())
    assert results["columns"] == {"PPO (Adam)": "adam", "OPEN": "open"}
    (row,) = results["rows"]
    assert (row["target"], row["steps"]) == ("gymnax/CartPole-v1", TINY.inner_total_steps)
    for entry in row["returns"].values():
        assert len(entry["per_seed"]) == 2 and all(np.isfinite(entry["per_seed"]))
    assert row["returns"]["adam"]["per_seed"] != row["returns"]["open"]["per_seed"]
    table = (run_dir / "meta_eval" / "results.md").read_text()
    assert "| gymnax/CartPole-v1 | 1 | 2,048 |" in table


def test_the_ued_student_and_the_preference_set_take_the_learned_optimiser(tmp_path):
    from jaxrl_suite.algos import ued
    from jaxrl_suite.algos.morl import preference_set

    weights = open_lib.init_optimizer_params(jax.random.key(4))
    open_lib.save_optimizer_params(tmp_path / "optimizer.npz", weights)
    config = ued.Config(optimizer_params=str(tmp_path))
    student = ued.student_config(config)
    assert student.optimizer_params == str(tmp_path)
    assert ued.student_config(config, adversary=True).optimizer_params == ""  # Adam
    env, env_params = jaxrl_suite.make("maze")
    learner = ppo.make_learner(student, env, env_params)
    assert isinstance(learner.make_optimizer, open_lib.OpenOptimizer)
    for a, b in zip(jax.tree.leaves(learner.make_optimizer.default_weights),
                    jax.tree.leaves(weights), strict=True):
        np.testing.assert_array_equal(a, b)

    env, env_params = jaxrl_suite.make("mo/deep-sea-treasure")
    set_config = preference_set.Config(num_preferences=2, total_steps=2048,
                                       optimizer_params=str(tmp_path / "optimizer.npz"))
    train = preference_set.make_train(set_config, env, env_params)
    members = jax.eval_shape(train.init, jax.random.key(0), train.default_hparams)
    open_states = [leaf for leaf in jax.tree.leaves(
        members, is_leaf=lambda x: isinstance(x, open_lib.OpenState))
        if isinstance(leaf, open_lib.OpenState)]
    assert open_states and open_states[0].count.shape == (2,)  # one per preference
    with pytest.raises(ValueError, match="optimizer_params are the PPO learner's"):
        preference_set.make_train(dataclasses.replace(set_config, learner="sac"), env,
                                  env_params)


def test_errors_name_the_bad_value(tmp_path):
    env, env_params = jaxrl_suite.make("gymnax/CartPole-v1")
    with pytest.raises(ValueError, match="population_size must be even; got 7"):
        open_lib.make_train(dataclasses.replace(TINY, population_size=7), env, env_params)
    with pytest.raises(ValueError, match="step_scale must be > 0; got 0.0"):
        open_lib.make_train(dataclasses.replace(TINY, step_scale=0.0), env, env_params)
    with pytest.raises(ValueError, match="gru_size must be an integer >= 1; got 0"):
        open_lib.make_train(dataclasses.replace(TINY, gru_size=0), env, env_params)
    with pytest.raises(ValueError, match="a meta-run learns an optimiser"):
        open_lib.make_train(TINY, env, env_params).make_policy(None)
    path = tmp_path / "small.npz"
    small = dataclasses.replace(TINY, gru_size=4, hidden_size=8)
    open_lib.save_optimizer_params(path, open_lib.init_optimizer_params(jax.random.key(0), small))
    with pytest.raises(ValueError, match=r"this optimiser \(gru_size 8, hidden_size 16\) needs"):
        open_lib.load_optimizer_params(path)  # saved with gru 4, read as OPEN's default 8
    with pytest.raises(ValueError, match="optimizer_params 'nowhere' is neither an .npz file"):
        ppo.make_train(ppo.Config(optimizer_params="nowhere"), env, env_params)
    with pytest.raises(ValueError, match="not both"):
        ppo.make_train(ppo.Config(optimizer_params=str(path)), env, env_params,
                       optimizer=optax.sgd(0.1))
    with pytest.raises(ValueError, match="OPEN: the optimiser reads the parameters"):
        optimizer = open_lib.open_optimizer(None, TINY, 1, 1)
        optimizer.update({"a": jnp.ones(2)}, optimizer.init({"a": jnp.ones(2)}))
