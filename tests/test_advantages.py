"""GAE against values worked out by hand, with a termination and a truncation in the rollout."""

import jax.numpy as jnp
import numpy as np
import pytest

from jaxrl_suite.learn.advantages import generalized_advantages

GAMMA, LAMBDA = 0.9, 0.5


def test_gae_matches_hand_computation_with_termination_and_truncation():
    # Five steps of one env. Step 1 terminates (no bootstrap); step 3 is truncated, so it
    # bootstraps from V(final_observation) = 7.0, not from the reset observation's value (2.5).
    rewards = jnp.array([1.0, 2.0, 0.5, 1.0, 3.0])
    values = jnp.array([4.0, 3.0, 1.0, 2.0, 2.5])
    next_values = jnp.array([3.0, 99.0, 2.0, 7.0, 6.0])  # 99: ignored, the episode terminated
    terminated = jnp.array([False, True, False, False, False])
    truncated = jnp.array([False, False, False, True, False])

    # deltas: r + gamma * (1 - term) * next_value - value
    d4 = 3.0 + 0.9 * 6.0 - 2.5  # 5.9
    d3 = 1.0 + 0.9 * 7.0 - 2.0  # 5.3  (truncated: bootstraps from the final observation)
    d2 = 0.5 + 0.9 * 2.0 - 1.0  # 1.3
    d1 = 2.0 - 3.0  # -1.0 (terminated: no bootstrap)
    d0 = 1.0 + 0.9 * 3.0 - 4.0  # -0.3
    # advantages: A_t = delta_t + gamma * lambda * (1 - done_t) * A_{t+1}
    a4 = d4
    a3 = d3  # done at 3: the recursion stops at the boundary
    a2 = d2 + 0.45 * a3  # 1.3 + 2.385 = 3.685
    a1 = d1  # done at 1
    a0 = d0 + 0.45 * a1  # -0.3 - 0.45 = -0.75
    expected = np.array([a0, a1, a2, a3, a4])

    advantages, targets = generalized_advantages(
        rewards, values, next_values, terminated, truncated, GAMMA, LAMBDA
    )
    np.testing.assert_allclose(advantages, expected, rtol=1e-6)
    np.testing.assert_allclose(targets, expected + np.asarray(values), rtol=1e-6)
    assert advantages[2] == pytest.approx(3.685, rel=1e-6)


def test_gae_batch_axes_and_lambda_one_is_discounted_return():
    # lambda = 1 and no episode end inside: A_0 + V_0 = sum_t gamma^t r_t + gamma^T V_T.
    rewards = jnp.ones((4, 3))
    values = jnp.zeros((4, 3))
    next_values = jnp.zeros((4, 3)).at[-1].set(10.0)
    never = jnp.zeros((4, 3), bool)
    advantages, targets = generalized_advantages(
        rewards, values, next_values, never, never, 0.5, 1.0
    )
    expected = 1 + 0.5 + 0.25 + 0.125 + 0.0625 * 10.0
    np.testing.assert_allclose(targets[0], np.full(3, expected), rtol=1e-6)
    assert advantages.shape == (4, 3)
