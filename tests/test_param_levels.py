"""ParamLevels (levels that are params): gymnax Pendulum by hand, Brax physics scales."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import struct

import jaxrl_suite
from jaxrl_suite.env.levels import AutoReplay, ParamLevels
from jaxrl_suite.env.wrappers import AutoReset
from jaxrl_suite.envs.brax import PHYSICS_SCALES, BraxParams, scale_physics
from tests.conformance import jit_fast_compile
from tests.toy_envs import CounterEnv, CounterParams

# Pendulum params: max_steps_in_episode, max_speed, max_torque, dt, g, m, l.
PENDULUM_RANGES = {"max_torque": (1.0, 3.0), "g": (5.0, 15.0), "m": (0.5, 1.5)}


@pytest.fixture(scope="module")
def pendulum():
    """``(raw_env, default_params, ParamLevels(raw_env, PENDULUM_RANGES))``."""
    env, params = jaxrl_suite.make("gymnax/Pendulum-v1", wrappers=False)
    return env, params, ParamLevels(env, PENDULUM_RANGES)


def _field(level, name: str) -> float:
    return float(getattr(level, name))


def _assert_kept(got, want, err_msg: str = "") -> None:
    """``got`` (a traced output: float32) holds ``want`` (a Python number) at its precision."""
    got = np.asarray(got)
    np.testing.assert_array_equal(got, np.asarray(want, got.dtype), err_msg=err_msg)


# --- sampling and mutation ----------------------------------------------------------------------
def test_sample_level_inside_ranges_and_keeps_other_fields(pendulum):
    env, params, levels = pendulum
    sample = jax.jit(jax.vmap(levels.sample_level, in_axes=(0, None)))
    batch = sample(jax.random.split(jax.random.key(0), 64), params)
    for name, (low, high) in PENDULUM_RANGES.items():
        values = np.asarray(getattr(batch, name))
        assert values.dtype == np.float32
        assert np.all((values >= low) & (values <= high)), name
        assert np.unique(values).size == values.size, f"keys gave repeated {name}"
        assert values.max() - values.min() > 0.5 * (high - low), f"{name} barely spread"
    for field in dataclasses.fields(params):
        if field.name not in PENDULUM_RANGES:
            _assert_kept(getattr(batch, field.name), getattr(params, field.name), field.name)


def test_mutate_level_stays_in_ranges_and_moves_a_bounded_step(pendulum):
    _, params, levels = pendulum
    num_edits = 3
    parents = jax.vmap(levels.sample_level, in_axes=(0, None))(
        jax.random.split(jax.random.key(1), 256), params
    )
    mutate = jax.jit(jax.vmap(levels.mutate_level, in_axes=(0, 0, None, None)))
    children = mutate(jax.random.split(jax.random.key(2), 256), parents, num_edits, params)
    for name, (low, high) in PENDULUM_RANGES.items():
        parent, child = np.asarray(getattr(parents, name)), np.asarray(getattr(children, name))
        assert np.all((child >= low) & (child <= high)), name
        max_move = num_edits * levels.mutation_scale * (high - low)
        assert np.all(np.abs(child - parent) <= max_move * (1 + 1e-5)), name
        assert np.mean(child != parent) > 0.9, f"mutation left {name} unchanged"
    for name in ("max_speed", "dt", "l"):
        _assert_kept(getattr(children, name), getattr(params, name), name)


# --- the level is the dynamics ------------------------------------------------------------------
def test_step_runs_under_the_level_params(pendulum):
    """A ParamLevels step (given the default params) equals the raw step under the level."""
    env, params, levels = pendulum
    level = params.replace(max_torque=3.0, g=15.0, m=0.5)
    action = jnp.array([1.5])

    @jax.jit
    def steps(key):
        _, raw_state = env.reset(key, params)
        state = levels.reset_to_level(key, level, params)[1].replace(env_state=raw_state)
        wrapped = levels.step(key, state, action, params)
        under_level = env.step(key, raw_state, action, level)
        under_default = env.step(key, raw_state, action, params)
        return wrapped, under_level, under_default

    wrapped, under_level, under_default = steps(jax.random.key(3))
    obs, state, reward, terminated, truncated, _ = wrapped
    for got, want in zip((obs, reward, terminated, truncated), under_level[:1] + under_level[2:5]):
        np.testing.assert_array_equal(got, want)
    jax.tree.map(np.testing.assert_array_equal, state.env_state, under_level[1])
    jax.tree.map(_assert_kept, state.level, level)  # the level is kept
    assert not np.array_equal(obs, under_default[0]), "the level changed nothing"


def test_vmap_over_levels_gives_each_env_its_own_dynamics(pendulum):
    env, params, levels = pendulum
    batch = jax.vmap(levels.sample_level, in_axes=(0, None))(
        jax.random.split(jax.random.key(4), 8), params
    )
    key, action = jax.random.key(5), jnp.array([2.0])

    @jax.jit
    def batched_and_one_by_one(batch):
        _, raw_state = env.reset(key, params)  # every env starts from this state

        def level_step(level):
            state = levels.reset_to_level(key, level)[1].replace(env_state=raw_state)
            return levels.step(key, state, action, params)[0]

        def raw_step(level):
            return env.step(key, raw_state, action, level)[0]

        return jax.vmap(level_step)(batch), jax.lax.map(raw_step, batch)

    batched, one_by_one = batched_and_one_by_one(batch)
    np.testing.assert_allclose(batched, one_by_one, rtol=1e-6, atol=1e-6)
    assert np.unique(np.asarray(batched[:, 2])).size == 8, "levels share dynamics"


# --- after an episode: replay the level or draw a new one ---------------------------------------
@pytest.mark.parametrize("wrapper", [AutoReplay, AutoReset])
def test_level_after_episode_end(pendulum, wrapper):
    """Episodes of 3 steps: AutoReplay keeps its level, AutoReset draws a new one."""
    _, params, levels = pendulum
    env = wrapper(levels)
    short = params.replace(max_steps_in_episode=3)

    @jax.jit
    def rollout(key):
        reset_key, scan_key = jax.random.split(key)
        _, state = env.reset(reset_key, short)

        def body(state, step_key):
            _, state, _, terminated, truncated, _ = env.step(
                step_key, state, jnp.array([0.5]), short
            )
            return state, (env.level_of(state), terminated | truncated)

        return env.level_of(state), jax.lax.scan(body, state, jax.random.split(scan_key, 7))[1]

    first, (history, done) = rollout(jax.random.key(6))
    np.testing.assert_array_equal(done, [False, False, True, False, False, True, False])
    torques = np.asarray(history.max_torque)
    np.testing.assert_array_equal(torques[:2], _field(first, "max_torque"))  # same episode
    if wrapper is AutoReplay:
        np.testing.assert_array_equal(torques, _field(first, "max_torque"))
        for name in PENDULUM_RANGES:
            np.testing.assert_array_equal(getattr(history, name), _field(first, name))
    else:
        assert torques[2] != torques[1] and torques[5] != torques[4], torques
        np.testing.assert_array_equal(torques[2:5], torques[2])  # one level per episode
        assert np.all((torques >= 1.0) & (torques <= 3.0))


# --- bad input ----------------------------------------------------------------------------------
@struct.dataclass
class _VectorParams(CounterParams):
    weights: np.ndarray = dataclasses.field(default_factory=lambda: np.ones(2, np.float32))


class _VectorParamsEnv(CounterEnv):
    @property
    def default_params(self) -> _VectorParams:
        return _VectorParams()


@pytest.mark.parametrize(
    "ranges, field",
    [
        ({"max_torqe": (1.0, 2.0)}, "max_torqe"),  # unknown field
        ({"g": (12.0, 8.0)}, "g"),  # low > high
        ({"m": ("light", "heavy")}, "m"),  # not numbers
        ({"m": 2.0}, "m"),  # not a pair
        ({"l": (1.0, float("inf"))}, "l"),  # not finite
    ],
)
def test_bad_ranges_raise_naming_the_field(pendulum, ranges, field):
    env, _, _ = pendulum
    with pytest.raises(ValueError, match=repr(field)):
        ParamLevels(env, ranges)


def test_non_scalar_field_raises_naming_it():
    with pytest.raises(ValueError, match="'weights'"):
        ParamLevels(_VectorParamsEnv(), {"weights": (0.0, 1.0)})
    ParamLevels(_VectorParamsEnv(), {"reward_scale": (0.0, 1.0)})  # a scalar field is fine


# --- Brax physics -------------------------------------------------------------------------------
def test_scale_physics_scales_the_system_fields():
    """Eager and small: the fields each scale changes, on Brax's and MJX's side of System."""
    env, _ = jaxrl_suite.make("brax/inverted_pendulum", wrappers=False)
    sys = env.brax_env.sys
    # Default params set no scale: the Brax env itself runs, the program compiled before scales.
    assert all(getattr(env.default_params, name) is None for name in PHYSICS_SCALES)
    assert env.brax_env_under(env.default_params) is env.brax_env
    params = BraxParams(
        mass_scale=np.float32(2.0),
        friction_scale=np.float32(0.5),
        gravity_scale=np.float32(0.25),
        actuator_strength_scale=np.float32(3.0),
    )
    scaled = scale_physics(sys, params)
    close = np.testing.assert_allclose
    close(scaled.link.inertia.mass, 2 * sys.link.inertia.mass)
    close(scaled.link.inertia.i, 2 * sys.link.inertia.i)
    close(scaled.link.invweight, sys.link.invweight / 2)
    close(scaled.dof.invweight, sys.dof.invweight / 2)
    close(scaled.body_mass, 2 * sys.body_mass)
    close(scaled.body_inertia, 2 * sys.body_inertia)
    close(scaled.dof_invweight0, sys.dof_invweight0 / 2)
    close(scaled.geom_friction, 0.5 * sys.geom_friction)
    close(scaled.gravity, 0.25 * sys.gravity)
    close(scaled.opt.gravity, 0.25 * sys.opt.gravity)
    close(scaled.actuator.gain, 3 * sys.actuator.gain)
    close(scaled.actuator_gainprm[:, 0], 3 * sys.actuator_gainprm[:, 0])
    close(scaled.dof.armature, sys.dof.armature)  # rotor inertia is kept
    close(scaled.actuator.gear, sys.actuator.gear)
    only_gravity = scale_physics(sys, BraxParams(gravity_scale=2.0))
    close(only_gravity.gravity, 2 * sys.gravity)
    assert only_gravity.link.inertia.mass is sys.link.inertia.mass  # unset scales untouched


def test_scales_on_physics_free_brax_env_raise():
    env, params = jaxrl_suite.make("brax/fast", wrappers=False)
    with pytest.raises(ValueError, match="mass_scale"):
        env.reset(jax.random.key(0), params.replace(mass_scale=2.0))


@pytest.mark.slow
def test_brax_levels_change_the_dynamics():
    """brax/inverted_pendulum, one compiled program: from the same reset state and action,
    levels that differ in one scale step differently; scales of exactly 1.0 and the default
    params (no scales) step exactly as the Brax env itself."""
    env, params = jaxrl_suite.make("brax/inverted_pendulum", wrappers=False)
    scaled = ("mass_scale", "gravity_scale", "actuator_strength_scale")  # no contacts here
    ranges = {name: (0.5, 2.0) for name in scaled}
    levels = ParamLevels(env, ranges)
    ones = params.replace(**{name: np.float32(1.0) for name in ranges})
    doubled = [ones.replace(**{name: np.float32(2.0)}) for name in ranges]  # one scale each
    batch = jax.tree.map(lambda *leaves: jnp.stack(leaves), ones, *doubled)
    action = jnp.array([0.5])
    key = jax.random.key(7)

    @jit_fast_compile
    def first_steps(batch, sample_key):
        brax_state = env.brax_env.reset(key)
        brax_next = env.brax_env.step(brax_state, action)
        _, state = env.reset(key, params)
        default_next = env.step(key, state, action, params)[0]

        def level_steps(level):
            reset_obs, state = levels.reset_to_level(key, level)
            return reset_obs, levels.step(key, state, action, params)[0]

        sampled = levels.sample_level(sample_key, params)
        reset_obs, next_obs = jax.vmap(level_steps)(batch)
        return brax_state.obs, brax_next.obs, default_next, reset_obs, next_obs, sampled

    brax_obs, brax_next, default_next, reset_obs, next_obs, sampled = first_steps(
        batch, jax.random.key(8)
    )
    # obs = [cart position, pole angle, cart velocity, pole angular velocity]
    np.testing.assert_array_equal(reset_obs, np.broadcast_to(brax_obs, reset_obs.shape))
    np.testing.assert_array_equal(default_next, brax_next)  # the unscaled path, as before
    np.testing.assert_array_equal(next_obs[0], brax_next)  # scales of 1.0: the same physics
    for row, name in enumerate(ranges, start=1):
        assert not np.allclose(next_obs[row], next_obs[0], rtol=0, atol=1e-7), name
    # Twice the mass: half the cart's velocity change under the same force (within the
    # joint damping's share); twice the actuator strength: twice the change.
    velocity_change = next_obs[:, 2] - brax_obs[2]
    np.testing.assert_allclose(velocity_change[1] / velocity_change[0], 0.5, rtol=0.05)
    np.testing.assert_allclose(velocity_change[3] / velocity_change[0], 2.0, rtol=0.05)
    for name, (low, high) in ranges.items():
        assert low <= float(getattr(sampled, name)) <= high, name
