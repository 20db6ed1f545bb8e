"""gymnax adapter: CartPole transitions computed by hand."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

import jaxrl_suite

ENV, PARAMS = jaxrl_suite.make("gymnax/CartPole-v1", wrappers=False)
STEP = jax.jit(ENV.step)


def cartpole_state(x=0.0, x_dot=0.0, theta=0.0, theta_dot=0.0, time=0):
    _, state = ENV.reset(jax.random.key(0), PARAMS)
    return state.replace(x=jnp.float32(x), x_dot=jnp.float32(x_dot), theta=jnp.float32(theta),
                         theta_dot=jnp.float32(theta_dot), time=jnp.int32(time))


def test_push_right_from_rest():
    # Force +10 N on a cart at rest with the pole upright; Euler step of 0.02 s:
    #   temp      = 10 / 1.1                                        =   9.090909
    #   theta_acc = (0 - temp) / (0.5 * (4/3 - 0.1 / 1.1))          = -14.634146
    #   x_acc     = temp - 0.05 * theta_acc / 1.1                   =   9.756098
    # x and theta move by the *old* velocities (0); velocities by 0.02 * acceleration.
    obs, state, reward, terminated, truncated, _ = STEP(
        jax.random.key(1), cartpole_state(), 1, PARAMS
    )
    np.testing.assert_allclose(obs, [0.0, 0.19512196, 0.0, -0.29268292], rtol=1e-6, atol=1e-7)
    assert float(reward) == 1.0 and not terminated and not truncated
    assert int(state.time) == 1


def test_pole_falling_past_12_degrees_terminates():
    # theta 0.2 rad + 0.02 s * 1 rad/s = 0.22 rad > 12 degrees (0.20944 rad)
    obs, _, reward, terminated, truncated, _ = STEP(
        jax.random.key(1), cartpole_state(theta=0.2, theta_dot=1.0), 0, PARAMS
    )
    np.testing.assert_allclose(obs[2], 0.22, rtol=1e-6)
    assert bool(terminated) and not bool(truncated) and float(reward) == 1.0


def test_time_limit_truncates_and_termination_wins_a_tie():
    _, _, _, terminated, truncated, _ = STEP(
        jax.random.key(1), cartpole_state(time=499), 1, PARAMS
    )
    assert bool(truncated) and not bool(terminated)
    _, _, _, terminated, truncated, _ = STEP(
        jax.random.key(1), cartpole_state(theta=0.2, theta_dot=1.0, time=499), 0, PARAMS
    )
    assert bool(terminated) and not bool(truncated)
    # The limit is a param: no recompilation needed to change it.
    short = PARAMS.replace(max_steps_in_episode=5)
    _, _, _, _, truncated, _ = STEP(jax.random.key(1), cartpole_state(time=4), 1, short)
    assert bool(truncated)


def test_rewards_are_float32_even_where_gymnax_gives_int():
    env, params = jaxrl_suite.make("gymnax/UmbrellaChain-bsuite", wrappers=False)
    obs, state = env.reset(jax.random.key(0), params)
    _, _, reward, *_ = env.step(jax.random.key(1), state, 0, params)
    assert reward.dtype == jnp.float32
