"""Registry: ids, make(), overrides, wrappers, and errors for bad input."""

from __future__ import annotations

import gymnax
import jax
import pytest

import jaxrl_suite
from jaxrl_suite.env.wrappers import AutoReset, EpisodeStats
from jaxrl_suite.envs.brax import BRAX_ENV_NAMES
from jaxrl_suite.envs.gymnax import GymnaxEnv
from tests.toy_envs import CounterEnv


def test_every_gymnax_and_brax_env_is_registered():
    ids = set(jaxrl_suite.registered_envs())
    assert {f"gymnax/{i}" for i in gymnax.registered_envs} <= ids
    assert {f"brax/{n}" for n in BRAX_ENV_NAMES} <= ids
    assert {f"mjx/{n}" for n in BRAX_ENV_NAMES if n not in ("fast", "swimmer")} <= ids
    assert jaxrl_suite.registered_envs() == sorted(ids)


def test_make_wraps_by_default_and_not_when_asked():
    env, params = jaxrl_suite.make("gymnax/CartPole-v1")
    assert isinstance(env, EpisodeStats) and isinstance(env._env, AutoReset)
    assert isinstance(env.unwrapped, GymnaxEnv) and env.name == "gymnax/CartPole-v1"
    raw, _ = jaxrl_suite.make("gymnax/CartPole-v1", wrappers=False)
    assert isinstance(raw, GymnaxEnv)
    assert params == raw.default_params
    assert env.num_actions == 2


def test_param_overrides_and_constructor_options():
    _, params = jaxrl_suite.make("gymnax/CartPole-v1", max_steps_in_episode=200, gravity=3.0)
    assert params.max_steps_in_episode == 200 and params.gravity == 3.0
    env, _ = jaxrl_suite.make("gymnax/DeepSea-bsuite", env_kwargs={"size": 5})
    assert env.observation_space().shape == (5, 5)


def test_unknown_id_names_close_matches():
    with pytest.raises(ValueError, match=r"Did you mean: 'gymnax/CartPole-v1'"):
        jaxrl_suite.make("CartPole-v1")
    with pytest.raises(ValueError, match=r"gymnax/Acrobot-v1"):
        jaxrl_suite.make("gymnax/Acrobat-v1")
    with pytest.raises(ValueError, match="Unknown env id 'nothing-like-it'"):
        jaxrl_suite.make("nothing-like-it")
    with pytest.raises(TypeError, match="env id is a string"):
        jaxrl_suite.make(3)


def test_unknown_param_override_lists_accepted_fields():
    with pytest.raises(ValueError, match="no params field.*'max_steps'.*max_steps_in_episode"):
        jaxrl_suite.make("gymnax/CartPole-v1", max_steps=10)


def test_register_custom_env():
    jaxrl_suite.register("test/Counter-v0", CounterEnv, overwrite=True)
    env, params = jaxrl_suite.make("test/Counter-v0", terminal_at=7)
    assert params.terminal_at == 7
    obs, state = env.reset(jax.random.key(0), params)
    assert obs.shape == (2,)
    with pytest.raises(ValueError, match="already registered"):
        jaxrl_suite.register("test/Counter-v0", CounterEnv)
    with pytest.raises(TypeError, match="module:attribute"):
        jaxrl_suite.register("test/Bad-v0", "not-an-entry-point")


def test_bad_step_and_reset_input():
    env, params = jaxrl_suite.make("gymnax/CartPole-v1")
    obs, state = env.reset(jax.random.key(0), params)
    with pytest.raises(ValueError, match=r"action 2 is outside the action space Discrete\(2\)"):
        env.step(jax.random.key(1), state, 2, params)
    with pytest.raises(TypeError, match="integer actions"):
        env.step(jax.random.key(1), state, 1.0, params)
    with pytest.raises(ValueError, match=r"shape \(2,\)"):
        env.step(jax.random.key(1), state, jax.numpy.array([0, 1]), params)
    with pytest.raises(TypeError, match="params must be a .*EnvParams"):
        env.step(jax.random.key(1), state, 1, {"gravity": 9.8})
    pendulum_params = jaxrl_suite.make("gymnax/Pendulum-v1")[1]
    with pytest.raises(TypeError, match="params must be"):
        env.reset(jax.random.key(0), pendulum_params)
    with pytest.raises(TypeError, match="key must be a JAX PRNG key"):
        env.reset(0, params)
