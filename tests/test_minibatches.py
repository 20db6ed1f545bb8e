"""jaxrl_suite.learn.minibatches by hand on tiny rollouts: every transition (or env) lands in
exactly one minibatch, the leaves stay aligned, a recurrent split keeps each env's time order."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrl_suite.learn import minibatches

# Transition (step t, env e) is numbered 10 * t + e: 3 steps, 4 envs.
NUMBERS = 10 * jnp.arange(3)[:, None] + jnp.arange(4)[None, :]


def test_over_transitions_is_one_permutation_for_every_leaf():
    rollout = {"id": NUMBERS, "twice": 2 * NUMBERS, "vector": jnp.stack([NUMBERS] * 2, -1)}
    out = minibatches.over_transitions(jax.random.key(0), rollout, 3)
    assert out["id"].shape == (3, 4) and out["vector"].shape == (3, 4, 2)
    assert sorted(np.asarray(out["id"]).ravel().tolist()) == sorted(NUMBERS.ravel().tolist())
    np.testing.assert_array_equal(out["twice"], 2 * out["id"])
    np.testing.assert_array_equal(out["vector"][..., 1], out["id"])
    # The order is the permutation of the flattened (step-major) transitions that key draws.
    order = jax.random.permutation(jax.random.key(0), 12)
    np.testing.assert_array_equal(out["id"].ravel(), NUMBERS.ravel()[order])


def test_over_envs_keeps_each_envs_steps_in_order():
    rollout = {"id": NUMBERS, "initial_hidden": jnp.arange(4)[:, None] * jnp.ones((1, 5))}
    out = minibatches.over_envs(jax.random.key(1), rollout, 2, {"initial_hidden": 0})
    assert out["id"].shape == (2, 3, 2) and out["initial_hidden"].shape == (2, 2, 5)
    envs = np.asarray(out["id"][:, 0, :]).ravel()  # the env of each minibatch column
    assert sorted(envs.tolist()) == [0, 1, 2, 3]
    for group in range(2):
        for column in range(2):
            env = int(out["id"][group, 0, column])
            np.testing.assert_array_equal(out["id"][group, :, column], 10 * np.arange(3) + env)
            np.testing.assert_array_equal(out["initial_hidden"][group, column], np.full(5, env))


def test_a_count_that_does_not_divide_is_refused():
    with pytest.raises(ValueError, match=r"divisor of the rollout's transitions \(12\); got 5"):
        minibatches.over_transitions(jax.random.key(0), {"id": NUMBERS}, 5)
    with pytest.raises(ValueError, match=r"divisor of the number of envs \(4\); got 3"):
        minibatches.over_envs(jax.random.key(0), {"id": NUMBERS}, 3)


def test_epochs_reshuffle_each_pass_and_hand_the_progress_to_the_step():
    data = {"x": jnp.arange(12.0).reshape(3, 4)}

    def step(total, batch, epoch_progress):
        return total + batch["x"].sum(), (epoch_progress, batch["x"])

    split = functools.partial(minibatches.over_transitions, num_minibatches=2)
    total, (progress, seen) = minibatches.epochs(step, 0.0, jax.random.key(0), data, 3, split)
    assert float(total) == 3 * float(data["x"].sum())  # every transition once per epoch
    np.testing.assert_allclose(np.asarray(progress), [[0, 0], [1 / 3, 1 / 3], [2 / 3, 2 / 3]])
    assert seen.shape == (3, 2, 6)
    orders = [tuple(np.asarray(seen[e]).reshape(-1)) for e in range(3)]
    assert len(set(orders)) > 1  # a fresh permutation per epoch
