"""Brax/MJX adapter: transitions computed by hand, termination vs truncation."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxrl_suite
from jaxrl_suite.envs.brax import BRAX_ENV_NAMES, BraxParams
from tests.conformance import jit_fast_compile


def test_registered_names_match_brax():
    from brax import envs as brax_envs

    assert sorted(BRAX_ENV_NAMES) == sorted(brax_envs._envs)


def test_fast_env_transitions_by_hand():
    """Brax's 'fast' env: vel += 0.02 if action > 0; pos += 0.02 * vel; reward = pos."""
    env, params = jaxrl_suite.make("brax/fast", wrappers=False, max_steps_in_episode=3)
    assert isinstance(params, BraxParams)
    step = jax.jit(env.step)
    obs, state = env.reset(jax.random.key(0), params)
    np.testing.assert_array_equal(obs, [0.0, 0.0])
    expected = [  # (action, pos, vel, truncated)
        (1.0, 0.0004, 0.02, False),  # vel 0 + 0.02; pos 0 + 0.02 * 0.02
        (-1.0, 0.0008, 0.02, False),  # no push: vel stays; pos + 0.02 * 0.02
        (1.0, 0.0016, 0.04, True),  # vel 0.04; pos 0.0008 + 0.0008; third step hits the limit
    ]
    for action, pos, vel, want_truncated in expected:
        obs, state, reward, terminated, truncated, _ = step(
            jax.random.key(1), state, jnp.array([action]), params
        )
        np.testing.assert_allclose(obs, [pos, vel], rtol=1e-5)
        np.testing.assert_allclose(reward, pos, rtol=1e-5)
        assert reward.dtype == jnp.float32
        assert not bool(terminated) and bool(truncated) == want_truncated


@pytest.mark.slow
@pytest.mark.parametrize("env_id", ["brax/inverted_pendulum", "mjx/inverted_pendulum"])
def test_inverted_pendulum_fall_is_termination(env_id):
    """Reward is 1 per step; a pole beyond 0.2 rad terminates; the limit truncates."""
    env, params = jaxrl_suite.make(env_id, wrappers=False, max_steps_in_episode=2)
    brax_env = env.brax_env

    def from_pose(key, hinge_angle, time):
        _, state = env.reset(key, params)
        pipeline_state = brax_env.pipeline_init(jnp.array([0.0, hinge_angle]), jnp.zeros(2))
        brax_state = state.brax_state.replace(pipeline_state=pipeline_state)
        return state.replace(brax_state=brax_state, time=jnp.int32(time))

    @functools.partial(jit_fast_compile, env_id=env_id)
    def step_from(hinge_angle, time):
        state = from_pose(jax.random.key(0), hinge_angle, time)
        return env.step(jax.random.key(1), state, jnp.zeros(1), params)

    obs, _, reward, terminated, truncated, _ = step_from(0.3, 0)  # already past 0.2 rad
    assert abs(float(obs[1])) > 0.2
    assert bool(terminated) and not bool(truncated) and float(reward) == 1.0
    obs, _, reward, terminated, truncated, _ = step_from(0.0, 1)  # upright, at the limit
    assert abs(float(obs[1])) < 0.2
    assert not bool(terminated) and bool(truncated) and float(reward) == 1.0
    obs, _, _, terminated, truncated, _ = step_from(0.3, 1)  # both: termination wins
    assert bool(terminated) and not bool(truncated)
