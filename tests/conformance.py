"""The env conformance suite: its checks (``check_*``, ``CHECKS``) and their machinery, one
compiled rollout per env id.

Every registered env runs through ``rollout_data(env_id, short)``, which jit-compiles (once per
env, cached for the whole test session) a vmapped reset followed by a ``lax.scan`` of random
actions through ``EpisodeStats(AutoReset(raw_env))``. Inside the same scan the raw env's step is
taken from the same state with the same key, so the test can compare the wrapper's
``final_observation`` against what the env really produced. ``params`` is an argument of the
compiled function, so the short-episode rollout (``max_steps_in_episode`` overridden) reuses the
same compilation.

Physics envs (``brax/``, ``mjx/``) compile for 5-25 s each, so their program is smaller: the
stack is ``EpisodeStats(CachedAutoReset(raw_env))`` (no reset compiled inside the step; Brax's
own auto-reset semantics) and the raw re-step is left out. What those two leave unchecked there
does not depend on the env: fresh ``AutoReset`` and the pass-through of the step are checked on
every gymnax env.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxrl_suite
from jaxrl_suite.env.wrappers import AutoReset, CachedAutoReset, EpisodeStats

NUM_ENVS = 2
NUM_STEPS = 24
SHORT_EPISODE = 3  # max_steps_in_episode used to force truncations
# Physics envs skip the raw re-step inside the scan: it doubles their (large) compile time, and
# what it checks (the wrapper passes the step through unchanged) does not depend on the env; it is
# checked on every other env.
PHYSICS_PREFIXES = ("brax/", "mjx/")
# These programs run for milliseconds, so XLA's backend optimisation buys nothing and costs
# about 40% of their compile time (measured on brax/hopper: 15.3 s -> 9.5 s). Per-program
# options leave every other compilation in the test session at the default level. Not for MJX:
# unoptimised, its constraint solver loops run for minutes (mjx/pusher: 4 steps > 300 s).
FAST_COMPILE = {"xla_backend_optimization_level": 0}


def jit_fast_compile(fun: Any, env_id: str = "") -> Any:
    """``jax.jit`` for test programs whose run time is negligible next to their compile time."""
    if env_id.startswith("mjx/"):
        return jax.jit(fun)
    return jax.jit(fun, compiler_options=FAST_COMPILE)


@functools.cache
def build(env_id: str) -> tuple[Any, Any, Any]:
    """``(raw_env, wrapped_env, jitted_rollout)`` for ``env_id``; compiled lazily on first call."""
    raw, _ = jaxrl_suite.make(env_id, wrappers=False)
    physics = env_id.startswith(PHYSICS_PREFIXES)
    wrapped = EpisodeStats(CachedAutoReset(raw) if physics else AutoReset(raw))
    action_space = raw.action_space(raw.default_params)

    def single_rollout(key: jax.Array, params: Any) -> dict[str, Any]:
        reset_key, scan_key = jax.random.split(key)
        obs0, state0 = wrapped.reset(reset_key, params)

        def body(state: Any, step_key: jax.Array) -> tuple[Any, dict[str, Any]]:
            action_key, env_key = jax.random.split(step_key)
            action = action_space.sample(action_key)
            obs, next_state, reward, terminated, truncated, info = wrapped.step(
                env_key, state, action, params
            )
            if physics:  # CachedAutoReset restarts from the env's first reset
                reset_obs = state.env_state.initial_observation
            else:  # AutoReset splits its key as (step_key, reset_key): redo both on the raw env
                raw_step_key, raw_reset_key = jax.random.split(env_key)
                reset_obs, _ = raw.reset(raw_reset_key, params)
            record = {
                "action": action,
                "obs": obs,
                "reward": reward,
                "terminated": terminated,
                "truncated": truncated,
                "final_observation": info["final_observation"],
                "episode_return": info["episode_return"],
                "episode_length": info["episode_length"],
                "returned_episode": info["returned_episode"],
                "reset_obs": reset_obs,
            }
            if not physics:
                raw_obs, _, raw_reward, raw_terminated, raw_truncated, _ = raw.step(
                    raw_step_key, state.env_state, action, params
                )
                record.update(
                    raw_obs=raw_obs,
                    raw_reward=raw_reward,
                    raw_terminated=raw_terminated,
                    raw_truncated=raw_truncated,
                )
            return next_state, record

        _, trajectory = jax.lax.scan(body, state0, jax.random.split(scan_key, NUM_STEPS))
        return {"obs0": obs0, **trajectory}

    def rollout(key: jax.Array, params: Any) -> dict[str, Any]:
        keys = jax.random.split(key, NUM_ENVS)
        return jax.vmap(single_rollout, in_axes=(0, None))(keys, params)

    return raw, wrapped, jit_fast_compile(rollout, env_id)


def short_episode_params(raw: Any) -> Any:
    """Default params with ``max_steps_in_episode`` = SHORT_EPISODE, keeping the field's dtype."""
    params = raw.default_params
    if not any(f.name == "max_steps_in_episode" for f in dataclasses.fields(params)):
        return None
    default_limit = params.max_steps_in_episode
    return params.replace(max_steps_in_episode=type(default_limit)(SHORT_EPISODE))


@functools.cache
def rollout_data(env_id: str, short: bool = False, seed: int = 0) -> dict[str, np.ndarray] | None:
    """The rollout of ``env_id`` as numpy arrays (leading axes: env, step)."""
    raw, _, rollout = build(env_id)
    params = short_episode_params(raw) if short else raw.default_params
    if params is None:
        return None
    return as_numpy_tree(rollout(jax.random.key(seed), params))


def as_numpy_tree(tree: Any) -> Any:
    return jax.tree.map(np.asarray, tree)


def assert_trees_close(actual: Any, expected: Any) -> None:
    """Leafwise equality; floats within 1e-5 relative (separately compiled programs may
    reassociate floating-point sums), integers and booleans exactly."""
    leaves_a, leaves_b = jax.tree.leaves(actual), jax.tree.leaves(expected)
    assert len(leaves_a) == len(leaves_b)
    for a, b in zip(leaves_a, leaves_b):
        a, b = np.asarray(a), np.asarray(b)
        assert a.shape == b.shape and a.dtype == b.dtype, (a.shape, a.dtype, b.shape, b.dtype)
        if np.issubdtype(a.dtype, np.floating):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
        else:
            np.testing.assert_array_equal(a, b)


def leaves_equal(a: Any, b: Any) -> bool:
    leaves_a, leaves_b = jax.tree.leaves(a), jax.tree.leaves(b)
    return len(leaves_a) == len(leaves_b) and all(
        np.array_equal(np.asarray(x), np.asarray(y), equal_nan=True)
        for x, y in zip(leaves_a, leaves_b)
    )


def space_contains_batch(space: Any, batch: Any, batch_ndim: int) -> np.ndarray:
    """``space.contains`` applied to every element of a batch with ``batch_ndim`` leading axes."""
    contains = space.contains
    for _ in range(batch_ndim):
        contains = jax.vmap(contains)
    return np.asarray(jax.jit(contains)(jax.tree.map(jnp.asarray, batch)))


# --- the checks -----------------------------------------------------------------------------------
# Each check takes an env id (and ``short``: the rollout with SHORT_EPISODE-step episodes) and
# raises an AssertionError saying what is wrong. tests/test_conformance.py runs them over the
# registered ids, tests/test_mo_envs.py over the ``mo/`` ids (in another test process: the
# conformance process is at the limit of compiled programs where XLA's CPU compiler segfaults).
def build_or_skip(env_id: str):
    try:
        return build(env_id)
    except OSError as error:  # e.g. MNISTBandit downloads MNIST when constructed
        pytest.skip(f"{env_id} downloads data when built and this machine is offline: {error}")


def data_or_skip(env_id: str, short: bool) -> dict[str, np.ndarray]:
    build_or_skip(env_id)
    data = rollout_data(env_id, short)
    if data is None:
        pytest.skip(f"{env_id} has no max_steps_in_episode param to shorten episodes with")
    return data


def _done(data: dict[str, np.ndarray]) -> np.ndarray:
    return data["terminated"] | data["truncated"]


def check_spaces_shapes_and_dtypes(env_id: str) -> None:
    raw, _, _ = build_or_skip(env_id)
    obs_space = raw.observation_space(raw.default_params)
    action_space = raw.action_space(raw.default_params)
    assert isinstance(obs_space, jaxrl_suite.env.spaces.Space)
    assert isinstance(action_space, jaxrl_suite.env.spaces.Space)
    for short in (False, True):
        data = rollout_data(env_id, short)
        if data is None:
            continue
        n, t = NUM_ENVS, NUM_STEPS
        for name in ("obs0", "obs", "final_observation"):
            batch_ndim = 1 if name == "obs0" else 2
            leaves = jax.tree.leaves(data[name])
            if isinstance(obs_space, jaxrl_suite.env.spaces.Box | jaxrl_suite.env.spaces.Discrete):
                (leaf,) = leaves
                assert leaf.shape == (n, t)[:batch_ndim] + tuple(obs_space.shape), name
                assert leaf.dtype == obs_space.dtype, (name, leaf.dtype, obs_space.dtype)
            inside = space_contains_batch(obs_space, data[name], batch_ndim)
            assert inside.all(), f"{name} outside {obs_space} at {np.argwhere(~inside)[:3]}"
        assert space_contains_batch(action_space, data["action"], 2).all()
        reward_shape = getattr(raw, "reward_space", None)
        reward_shape = tuple(reward_shape(raw.default_params).shape) if reward_shape else ()
        assert data["reward"].shape == (n, t) + reward_shape
        assert data["reward"].dtype == np.float32
        assert np.isfinite(data["reward"]).all()
        for flag in ("terminated", "truncated", "returned_episode"):
            assert data[flag].shape == (n, t) and data[flag].dtype == np.bool_, flag
        assert not (data["terminated"] & data["truncated"]).any(), "both flags set on one step"


def check_deterministic_given_key(env_id: str) -> None:
    _, _, rollout = build_or_skip(env_id)
    raw = build(env_id)[0]
    first = as_numpy_tree(rollout(jax.random.key(7), raw.default_params))
    again = as_numpy_tree(rollout(jax.random.key(7), raw.default_params))
    assert leaves_equal(first, again)
    # Different keys give different random actions, so the runs must differ somewhere.
    other = as_numpy_tree(rollout(jax.random.key(8), raw.default_params))
    assert not leaves_equal(first, other)


def check_jit_and_vmap_match_single_eager_steps(env_id: str) -> None:
    """The first reset and step of env 0 in the vmapped, jitted rollout, redone without vmap."""
    raw, wrapped, _ = build_or_skip(env_id)
    params = raw.default_params
    data = rollout_data(env_id)
    reset_key, scan_key = jax.random.split(jax.random.split(jax.random.key(0), NUM_ENVS)[0])
    step_key = jax.random.split(scan_key, NUM_STEPS)[0]
    action_key, env_key = jax.random.split(step_key)
    action = jax.tree.map(lambda leaf: np.asarray(leaf[0, 0]), data["action"])

    def first_step(reset_key, env_key, action):
        obs0, state = wrapped.reset(reset_key, params)
        obs, _, reward, terminated, truncated, _ = wrapped.step(env_key, state, action, params)
        return obs0, obs, reward, terminated, truncated

    if env_id.startswith(PHYSICS_PREFIXES):
        # Compiling another physics step costs 5-20 s per env; the reset alone is checked, and
        # single physics steps are checked by hand in tests/test_brax_adapter.py.
        obs0 = jit_fast_compile(lambda key: wrapped.reset(key, params)[0], env_id)(reset_key)
        assert_trees_close(obs0, jax.tree.map(lambda leaf: leaf[0], data["obs0"]))
        return
    first = lambda leaf: leaf[0, 0]  # noqa: E731  (env 0, step 0 of every leaf: obs may be a dict)
    expected = (jax.tree.map(lambda leaf: leaf[0], data["obs0"]), jax.tree.map(first, data["obs"]),
                data["reward"][0, 0], data["terminated"][0, 0], data["truncated"][0, 0])
    assert_trees_close(
        jit_fast_compile(first_step, env_id)(reset_key, env_key, action), expected
    )
    assert_trees_close(first_step(reset_key, env_key, action), expected)  # eager


def check_autoreset_final_observation(env_id: str, short: bool) -> None:
    data = data_or_skip(env_id, short)
    done = _done(data)
    if "raw_obs" in data:
        # What the wrapper reports is what the raw env did from the same state and key.
        assert_trees_close(data["final_observation"], data["raw_obs"])
        assert_trees_close(
            [data["reward"], data["terminated"], data["truncated"]],
            [data["raw_reward"], data["raw_terminated"], data["raw_truncated"]],
        )
    # After an episode ends the next observation is the fresh reset's; otherwise unchanged.
    pick = lambda mask: lambda leaf: leaf[mask]  # noqa: E731
    assert_trees_close(jax.tree.map(pick(done), data["obs"]),
                         jax.tree.map(pick(done), data["reset_obs"]))
    assert_trees_close(jax.tree.map(pick(~done), data["obs"]),
                         jax.tree.map(pick(~done), data["final_observation"]))
    if short:
        assert done.any(), "short episodes must end within the rollout"


def check_episode_stats_and_truncation(env_id: str, short: bool) -> None:
    data = data_or_skip(env_id, short)
    raw = build(env_id)[0]
    params = short_episode_params(raw) if short else raw.default_params
    limit = getattr(params, "max_steps_in_episode", None)
    done = _done(data)
    np.testing.assert_array_equal(data["returned_episode"], done)
    for env in range(NUM_ENVS):
        episode_return = np.zeros(data["reward"].shape[2:], np.float64)
        episode_length = 0
        for t in range(NUM_STEPS):
            episode_return += data["reward"][env, t]
            episode_length += 1
            np.testing.assert_allclose(
                data["episode_return"][env, t], episode_return, rtol=1e-5, atol=1e-4
            )
            assert data["episode_length"][env, t] == episode_length
            if limit is not None:
                assert episode_length <= limit, "episode ran past its limit"
                at_limit = episode_length == int(limit)
                # Truncated exactly at the limit unless the MDP terminated there.
                assert data["truncated"][env, t] == (at_limit and not data["terminated"][env, t])
            if done[env, t]:
                episode_return[...] = 0.0
                episode_length = 0


# --- properties over many random rollouts ------------------------------------------------------
# The checks above on one rollout, repeated on many more random (key, action sequence) examples
# through the same compiled program (no compile is added: only run time, milliseconds a call).
# Physics envs run slower per call and take fewer: their families still get thousands each.
PROPERTY_SEEDS = 48
PHYSICS_PROPERTY_SEEDS = 4


def many_rollouts(env_id: str, short: bool) -> dict[str, np.ndarray] | None:
    """Rollouts of ``PROPERTY_SEEDS`` keys concatenated along the env axis."""
    raw, _, rollout = build_or_skip(env_id)
    params = short_episode_params(raw) if short else raw.default_params
    if params is None:
        return None
    count = PHYSICS_PROPERTY_SEEDS if env_id.startswith(PHYSICS_PREFIXES) else PROPERTY_SEEDS
    runs = [as_numpy_tree(rollout(jax.random.key(1000 + seed), params))
            for seed in range(count)]
    return jax.tree.map(lambda *leaves: np.concatenate(leaves, axis=0), *runs)


def check_properties_hold_over_many_random_rollouts(env_id: str) -> None:
    raw, _, rollout = build_or_skip(env_id)
    obs_space = raw.observation_space(raw.default_params)
    action_space = raw.action_space(raw.default_params)
    examples = 0
    for short in (False, True):
        data = many_rollouts(env_id, short)
        if data is None:
            continue
        examples += data["reward"].size
        for name in ("obs", "final_observation", "reset_obs"):
            inside = space_contains_batch(obs_space, data[name], 2)
            assert inside.all(), f"{name} outside {obs_space} at {np.argwhere(~inside)[:3]}"
        assert space_contains_batch(action_space, data["action"], 2).all()
        assert np.isfinite(data["reward"]).all(), "a non-finite reward"
        done = _done(data)
        assert not (data["terminated"] & data["truncated"]).any(), "both flags set on one step"
        assert np.array_equal(data["returned_episode"], done), "returned_episode is not done"
        # AutoReset: a step that ended reports its final observation and continues from a
        # reset; any other step's next observation is its final one.
        pick = lambda mask: lambda leaf: leaf[mask]  # noqa: E731
        assert_trees_close(jax.tree.map(pick(~done), data["obs"]),
                             jax.tree.map(pick(~done), data["final_observation"]))
        assert_trees_close(jax.tree.map(pick(done), data["obs"]),
                             jax.tree.map(pick(done), data["reset_obs"]))
        limit = (short_episode_params(raw) if short else raw.default_params)
        limit = getattr(limit, "max_steps_in_episode", None)
        if limit is not None:
            lengths = data["episode_length"][done]
            assert (lengths >= 1).all() and (lengths <= int(limit)).all(), lengths.max()
    # Determinism given the key, on one of the keys above.
    first = as_numpy_tree(rollout(jax.random.key(1000), raw.default_params))
    assert leaves_equal(first, as_numpy_tree(rollout(jax.random.key(1000),
                                                         raw.default_params)))
    floor = 2 * NUM_ENVS * NUM_STEPS * PHYSICS_PROPERTY_SEEDS  # 384 per physics env
    assert examples >= floor, examples


# (check, whether it also runs on short episodes), in the order the tests list them.
CHECKS = (
    (check_spaces_shapes_and_dtypes, False),
    (check_deterministic_given_key, False),
    (check_jit_and_vmap_match_single_eager_steps, False),
    (check_autoreset_final_observation, True),
    (check_episode_stats_and_truncation, True),
    (check_properties_hold_over_many_random_rollouts, False),
)


def check_params() -> list[Any]:
    """``pytest.param``s of every check (the short-episode ones twice) for one parametrized
    test: ``check(env_id)`` runs it."""
    params = []
    for check, has_short in CHECKS:
        name = check.__name__.removeprefix("check_")
        variants = ((False, "default_limit"), (True, "short_episodes")) if has_short else (
            (None, None),)
        for short, label in variants:
            call = check if short is None else functools.partial(check, short=short)
            params.append(pytest.param(call, id=name if label is None else f"{name}-{label}"))
    return params
