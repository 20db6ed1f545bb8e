"""Shared machinery of the env conformance suite: one compiled rollout per env id.

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
