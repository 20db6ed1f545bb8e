"""Code written for gymnax runs unchanged on ``make(id)``: gymnax's ``info`` keys, gymnax's own
wrappers on the project's spaces, Python-literal actions inside traced loops, and the debug
check that catches a raw env stepped past an episode's end."""

from __future__ import annotations

import warnings

import gymnax
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from gymnax.environments import spaces as gymnax_spaces
from gymnax.wrappers import (
    FlattenObservationWrapper,
    LegacyStepAPIWrapper,
    LogWrapper,
    StickyActionWrapper,
)

import jaxrl_suite
from jaxrl_suite.env import spaces
from jaxrl_suite.env.wrappers import (
    AutoReset,
    CachedAutoReset,
    EpisodeEndCheck,
    FinishedEpisodeWarning,
    has_wrapper,
)
from tests.toy_envs import CounterEnv, CounterState


def scan_steps(env, params, actions, seed=0):
    """Reset, then step through ``actions`` in one jitted scan; the per-step outputs."""

    def rollout(key):
        obs, state = env.reset(key, params)

        def body(state, inputs):
            key, action = inputs
            obs, state, reward, terminated, truncated, info = env.step(key, state, action, params)
            return state, (reward, terminated, truncated, info)

        keys = jax.random.split(jax.random.key(seed + 1), len(actions))
        return jax.lax.scan(body, state, (keys, jnp.asarray(actions)))[1]

    return jax.jit(rollout)(jax.random.key(seed))


# --- 1. info holds gymnax 1.x's keys ------------------------------------------------------------
def test_make_info_has_gymnax_keys_with_gymnax_values_and_dtypes():
    ours, params = jaxrl_suite.make("gymnax/CartPole-v1")  # EpisodeStats(AutoReset(adapter))
    theirs, _ = gymnax.make("CartPole-v1")
    params = params.replace(max_steps_in_episode=6)  # truncations as well as terminations
    actions = np.asarray(jax.random.randint(jax.random.key(3), (30,), 0, 2))
    _, ours_terminated, ours_truncated, ours_info = scan_steps(ours, params, actions)
    _, _, _, theirs_info = scan_steps(theirs, params, actions)
    assert set(theirs_info) == {"discount", "terminated", "truncated", "final_observation"}
    assert set(theirs_info) <= set(ours_info)
    assert {"episode_return", "episode_length", "returned_episode"} <= set(ours_info)
    for key, value in theirs_info.items():
        assert ours_info[key].dtype == value.dtype, key
        np.testing.assert_array_equal(ours_info[key], value, err_msg=key)
    np.testing.assert_array_equal(ours_info["terminated"], ours_terminated)
    np.testing.assert_array_equal(ours_info["truncated"], ours_truncated)
    assert ours_truncated.any() and ours_terminated.dtype == jnp.bool_
    # gymnax's README-style bootstrapping mask
    np.testing.assert_array_equal(1 - ours_info["terminated"], ours_info["discount"])


@pytest.mark.parametrize("auto_reset", [AutoReset, CachedAutoReset])
def test_project_envs_get_a_discount_where_the_env_gives_none(auto_reset):
    env = auto_reset(CounterEnv())
    # terminal_at = 4: +2, +2 terminates at step 2; then +1, +1 is truncated at the limit of 2.
    params = env.default_params.replace(max_steps_in_episode=2)
    _, terminated, truncated, info = scan_steps(env, params, [1, 1, 0, 0, 0, 0])
    np.testing.assert_array_equal(terminated, [False, True, False, False, False, False])
    np.testing.assert_array_equal(truncated, [False, False, False, True, False, True])
    assert info["discount"].dtype == jnp.float32
    np.testing.assert_array_equal(info["discount"], 1.0 - terminated)
    np.testing.assert_array_equal(info["terminated"], terminated)
    np.testing.assert_array_equal(info["truncated"], truncated)


# --- 2. gymnax's wrappers and spaces ------------------------------------------------------------
def test_project_spaces_are_gymnax_spaces_with_the_project_behaviour():
    env, params = jaxrl_suite.make("gymnax/CartPole-v1")
    assert isinstance(env.observation_space(params), gymnax_spaces.Box)
    assert isinstance(env.action_space(params), gymnax_spaces.Discrete)
    maze, _ = jaxrl_suite.make("maze")
    assert isinstance(maze.observation_space(), gymnax_spaces.Dict)
    assert maze.observation_space().num_spaces == 2
    # The project's constructors and checks are kept (gymnax's Discrete takes dtype by keyword
    # only and its contains ignores shapes).
    assert spaces.Discrete(3, jnp.int32) == spaces.Discrete(3)
    assert not bool(spaces.Discrete(3).contains(jnp.array([1])))
    with pytest.raises(ValueError, match="positive integer"):
        spaces.Discrete(0)
    # gymnax's own conversion to Gymnasium spaces takes them.
    box = gymnax_spaces.gymnax_space_to_gym_space(env.observation_space(params))
    assert box.shape == (4,)
    assert gymnax_spaces.gymnax_space_to_gym_space(spaces.Discrete(3)).n == 3


def test_state_space_where_gymnax_has_one():
    env, params = jaxrl_suite.make("gymnax/CartPole-v1")
    theirs, _ = gymnax.make("CartPole-v1")
    space = env.state_space(params)  # through the wrappers, as gymnax's wrappers proxy it
    assert isinstance(space, spaces.Dict)
    assert set(space.spaces) == set(theirs.state_space(params).spaces)
    _, state = env.unwrapped.reset(jax.random.key(0), params)
    assert bool(space["theta"].contains(state.theta))
    with pytest.raises(NotImplementedError, match="no state space"):
        CounterEnv().state_space()


def test_purejaxrl_loop_with_gymnax_wrappers_on_make():
    """PureJaxRL's env set-up and rollout (vmapped envs, a jitted scan) on ``make(id)`` with
    gymnax's own FlattenObservationWrapper, LogWrapper and the 5-tuple LegacyStepAPIWrapper."""
    base, params = jaxrl_suite.make("gymnax/CartPole-v1")
    params = params.replace(max_steps_in_episode=20)
    env = LegacyStepAPIWrapper(LogWrapper(FlattenObservationWrapper(base)))
    num_envs, steps = 4, 60
    assert env.observation_space(params).shape == (4,) and env.action_space(params).n == 2

    def rollout(key):
        reset_key, key = jax.random.split(key)
        obs, state = jax.vmap(env.reset, in_axes=(0, None))(
            jax.random.split(reset_key, num_envs), params)

        def body(carry, key):
            obs, state = carry
            action_key, step_key = jax.random.split(key)
            action = jax.random.randint(action_key, (num_envs,), 0, env.num_actions)
            obs, state, reward, done, info = jax.vmap(env.step, in_axes=(0, 0, 0, None))(
                jax.random.split(step_key, num_envs), state, action, params)
            return (obs, state), (done, info)

        return jax.lax.scan(body, (obs, state), jax.random.split(key, steps))[1]

    done, info = jax.tree.map(np.asarray, jax.jit(rollout)(jax.random.key(0)))
    assert done.shape == (steps, num_envs) and done.any()
    np.testing.assert_array_equal(info["returned_episode"], done)
    # gymnax's LogWrapper and the project's EpisodeStats agree on every finished episode.
    np.testing.assert_allclose(info["returned_episode_returns"][done],
                               info["episode_return"][done])
    np.testing.assert_array_equal(info["returned_episode_lengths"][done],
                                  info["episode_length"][done])
    assert info["final_observation"].shape == (steps, num_envs, 4)


def test_gymnax_wrappers_on_project_native_envs():
    # A toy env with a Box observation under gymnax's Flatten and Log wrappers ...
    jaxrl_suite.register("test/Counter-v0", CounterEnv, overwrite=True)
    counter, params = jaxrl_suite.make("test/Counter-v0")
    env = LogWrapper(FlattenObservationWrapper(counter))
    _, terminated, truncated, info = scan_steps(env, params, [1, 1, 1, 0])
    np.testing.assert_array_equal(info["returned_episode"], terminated | truncated)
    assert info["returned_episode_returns"][1] == 4.0  # 2 + 2, terminated at count >= 4
    # ... and the maze (Dict observations) under gymnax's StickyActionWrapper, which refuses
    # anything but a gymnax Discrete action space, and LogWrapper, in PureJaxRL's 5-tuple.
    maze, maze_params = jaxrl_suite.make("maze", max_steps_in_episode=5)
    env = LegacyStepAPIWrapper(LogWrapper(StickyActionWrapper(maze, 0.5)))
    obs, state = env.reset(jax.random.key(0), maze_params)

    def body(state, key):
        obs, state, reward, done, info = env.step(key, state, 2, maze_params)
        return state, (done, info["returned_episode_lengths"])

    done, lengths = jax.jit(lambda s: jax.lax.scan(body, s, jax.random.split(
        jax.random.key(1), 12))[1])(state)
    assert done.sum() >= 2 and set(np.asarray(lengths)[np.asarray(done)]) <= {1, 2, 3, 4, 5}


# --- 3. Python-literal actions inside traced loops ----------------------------------------------
class MultiCounterEnv(CounterEnv):
    """CounterEnv with a MultiDiscrete([2, 3]) action: count grows by the action's sum + 1."""

    def action_space(self, params=None) -> spaces.MultiDiscrete:
        return spaces.MultiDiscrete([2, 3])

    def step_env(self, key, state, action, params):
        return super().step_env(key, state, jnp.sum(jnp.asarray(action)), params)


@pytest.mark.parametrize("action", [1, np.int32(1), np.int64(1), np.array(1), jnp.asarray(1)],
                         ids=["int", "np.int32", "np.int64", "np.array", "jax.Array"])
@pytest.mark.parametrize("wrappers", [True, False])
def test_concrete_actions_inside_jit_scan_and_vmap(action, wrappers):
    env, params = jaxrl_suite.make("gymnax/CartPole-v1", wrappers=wrappers)
    obs, state = env.reset(jax.random.key(0), params)

    def body(state, key):
        obs, state, reward, *_ = env.step(key, state, action, params)
        return state, reward

    rewards = jax.jit(lambda s: jax.lax.scan(body, s, jax.random.split(jax.random.key(1), 3)))(
        state)[1]
    assert rewards.shape == (3,)
    states = jax.vmap(env.reset, in_axes=(0, None))(jax.random.split(jax.random.key(2), 4),
                                                    params)[1]
    rewards = jax.vmap(lambda k, s: env.step(k, s, action, params)[2])(
        jax.random.split(jax.random.key(3), 4), states)
    assert rewards.shape == (4,)


def test_concrete_multidiscrete_actions_inside_scan():
    env = MultiCounterEnv()
    for action in (np.array([1, 2]), np.array([0, 1], np.int64), jnp.asarray([1, 2])):
        _, _, reward, *_ = jax.jit(lambda s, a=action: env.step(jax.random.key(0), s, a))(
            env.reset(jax.random.key(0))[1])
        assert float(reward) in (4.0, 2.0)
    with pytest.raises(ValueError, match=r"outside the action space MultiDiscrete\(\[2, 3\]\)"):
        jax.jit(lambda s: env.step(jax.random.key(0), s, np.array([1, 3])))(
            env.reset(jax.random.key(0))[1])


@pytest.mark.parametrize("action", [2, -1, np.int32(5), np.array(7)])
def test_concrete_out_of_range_action_is_refused_in_and_out_of_jit(action):
    env, params = jaxrl_suite.make("gymnax/CartPole-v1")
    _, state = env.reset(jax.random.key(0), params)
    with pytest.raises(ValueError, match="outside the action space Discrete"):
        env.step(jax.random.key(1), state, action, params)
    with pytest.raises(ValueError, match="accepted: integers 0..1"):
        jax.jit(lambda s: env.step(jax.random.key(1), s, action, params))(state)


# --- 4. debug mode: a raw env stepped past an episode's end -------------------------------------
def _terminal_counter_state():
    return CounterState(time=jnp.int32(0), count=jnp.int32(3))  # any action terminates


def test_debug_mode_warns_when_a_finished_episode_is_stepped():
    jaxrl_suite.register("test/Counter-v0", CounterEnv, overwrite=True)
    env, params = jaxrl_suite.make("test/Counter-v0", wrappers=False, debug=True)
    assert isinstance(env, EpisodeEndCheck)
    _, state = env.reset(jax.random.key(0), params)
    state = state.replace(env_state=_terminal_counter_state())
    num_envs = 3
    states = jax.tree.map(lambda x: jnp.broadcast_to(x, (num_envs, *jnp.shape(x))), state)

    def loop(states):  # a PureJaxRL-style loop that expects auto-reset, on a raw env
        def body(states, key):
            _, states, _, terminated, *_ = jax.vmap(env.step, in_axes=(0, 0, 0, None))(
                jax.random.split(key, num_envs), states, jnp.zeros(num_envs, jnp.int32), params)
            return states, terminated

        return jax.lax.scan(body, states, jax.random.split(jax.random.key(1), 4))

    with pytest.warns(FinishedEpisodeWarning, match="already ended"):
        jax.block_until_ready(jax.jit(loop)(states))
        jax.effects_barrier()
    # The first step (on a live episode) does not warn; the env's outputs are unchanged.
    with warnings.catch_warnings():
        warnings.simplefilter("error", FinishedEpisodeWarning)
        _, after, _, terminated, *_ = jax.jit(env.step)(jax.random.key(2), state, 0, params)
        assert bool(terminated) and bool(after.finished)
        with pytest.raises(Exception, match="already ended"):
            jax.block_until_ready(jax.jit(env.step)(jax.random.key(3), after, 0, params))
    # A reset clears it.
    _, fresh = env.reset(jax.random.key(4), params)
    assert not bool(fresh.finished)


def test_debug_mode_from_the_environment_and_only_on_raw_envs(monkeypatch):
    jaxrl_suite.register("test/Counter-v0", CounterEnv, overwrite=True)
    assert not isinstance(jaxrl_suite.make("test/Counter-v0", wrappers=False)[0],
                          EpisodeEndCheck)
    monkeypatch.setenv("JAXRL_DEBUG", "1")
    raw, _ = jaxrl_suite.make("test/Counter-v0", wrappers=False)
    assert isinstance(raw, EpisodeEndCheck) and isinstance(raw.unwrapped, CounterEnv)
    wrapped, _ = jaxrl_suite.make("test/Counter-v0")  # auto-resets: never steps an ended one
    assert not has_wrapper(wrapped, EpisodeEndCheck)
    monkeypatch.setenv("JAXRL_DEBUG", "0")
    assert not isinstance(jaxrl_suite.make("test/Counter-v0", wrappers=False)[0],
                          EpisodeEndCheck)


def test_debug_check_makes_one_host_call_per_step_for_a_whole_vmapped_batch(monkeypatch):
    from jaxrl_suite.env import wrappers

    calls = []

    def counting(finished):
        calls.append(np.shape(finished))
        return finished

    monkeypatch.setattr(wrappers, "_warn_if_finished", counting)  # before tracing
    env = EpisodeEndCheck(CounterEnv())
    params = env.default_params.replace(terminal_at=100)
    num_envs, steps = 64, 5
    _, states = jax.vmap(env.reset, in_axes=(0, None))(
        jax.random.split(jax.random.key(0), num_envs), params)

    def body(states, key):
        states = jax.vmap(env.step, in_axes=(0, 0, 0, None))(
            jax.random.split(key, num_envs), states, jnp.zeros(num_envs, jnp.int32), params)[1]
        return states, None

    final, _ = jax.jit(lambda s: jax.lax.scan(body, s, jax.random.split(jax.random.key(1),
                                                                         steps)))(states)
    jax.block_until_ready(final)
    assert calls == [(num_envs,)] * steps and not final.finished.any()
