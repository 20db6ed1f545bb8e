"""API conformance of every registered env (a new env joins by registering).

Checked for each id: reset/step under jit and vmap; observations, actions, rewards and flags have
the shapes and dtypes of the spaces; determinism given the key; jit equals eager and vmap equals
a single env; ``AutoReset``'s ``final_observation`` is the observation the env really produced and
the next observation is a reset one; ``EpisodeStats`` sums returns and lengths; truncation at
the episode limit is ``truncated`` and never ``terminated``.
"""

from __future__ import annotations

import jax
import numpy as np
import pytest

import jaxrl_suite
from tests import conformance as C

# The ten named grid worlds are one class (GridWorld) with a fixed level each: two of them, one
# per observation kind, stand for the rest, which keeps the side test process's compiled programs
# near what they were (XLA's CPU backend segfaulted writing the compilation cache in that
# process, once, with all ten added).
NAMED_GRIDWORLDS_CHECKED = ("gridworld/longer", "gridworld/rand_small")
ENV_IDS = [env_id for env_id in jaxrl_suite.registered_envs()
           if not env_id.startswith("gridworld/") or env_id in NAMED_GRIDWORLDS_CHECKED]
PHYSICS_PREFIXES = C.PHYSICS_PREFIXES


# Compile-heavy envs, left out of `make test-fast`: Brax and MJX; the gymnax envs whose checks
# took 8 to 30 s in all on 2 cores (MinAtar; Acrobot's RK4 step) where most take 3 to 8 s; and
# the maze's other level generators (12 to 21 s; the step and observations are `maze`'s).
SLOW_SUFFIXES = ("-MinAtar",)
SLOW_IDS = ("gymnax/Acrobot-v1", "maze-perfect", "maze-rooms")


def _param(env_id: str):
    slow = (env_id.startswith(PHYSICS_PREFIXES) or env_id.endswith(SLOW_SUFFIXES)
            or env_id in SLOW_IDS)
    return pytest.param(env_id, marks=[pytest.mark.slow] if slow else [], id=env_id)


all_envs = pytest.mark.parametrize("env_id", [_param(e) for e in ENV_IDS])


def build_or_skip(env_id: str):
    try:
        return C.build(env_id)
    except OSError as error:  # e.g. MNISTBandit downloads MNIST when constructed
        pytest.skip(f"{env_id} downloads data when built and this machine is offline: {error}")


def data_or_skip(env_id: str, short: bool) -> dict[str, np.ndarray]:
    build_or_skip(env_id)
    data = C.rollout_data(env_id, short)
    if data is None:
        pytest.skip(f"{env_id} has no max_steps_in_episode param to shorten episodes with")
    return data


def _done(data: dict[str, np.ndarray]) -> np.ndarray:
    return data["terminated"] | data["truncated"]


@all_envs
def test_spaces_shapes_and_dtypes(env_id: str) -> None:
    raw, _, _ = build_or_skip(env_id)
    obs_space = raw.observation_space(raw.default_params)
    action_space = raw.action_space(raw.default_params)
    assert isinstance(obs_space, jaxrl_suite.env.spaces.Space)
    assert isinstance(action_space, jaxrl_suite.env.spaces.Space)
    for short in (False, True):
        data = C.rollout_data(env_id, short)
        if data is None:
            continue
        n, t = C.NUM_ENVS, C.NUM_STEPS
        for name in ("obs0", "obs", "final_observation"):
            batch_ndim = 1 if name == "obs0" else 2
            leaves = jax.tree.leaves(data[name])
            if isinstance(obs_space, jaxrl_suite.env.spaces.Box | jaxrl_suite.env.spaces.Discrete):
                (leaf,) = leaves
                assert leaf.shape == (n, t)[:batch_ndim] + tuple(obs_space.shape), name
                assert leaf.dtype == obs_space.dtype, (name, leaf.dtype, obs_space.dtype)
            inside = C.space_contains_batch(obs_space, data[name], batch_ndim)
            assert inside.all(), f"{name} outside {obs_space} at {np.argwhere(~inside)[:3]}"
        assert C.space_contains_batch(action_space, data["action"], 2).all()
        reward_shape = getattr(raw, "reward_space", None)
        reward_shape = tuple(reward_shape(raw.default_params).shape) if reward_shape else ()
        assert data["reward"].shape == (n, t) + reward_shape
        assert data["reward"].dtype == np.float32
        assert np.isfinite(data["reward"]).all()
        for flag in ("terminated", "truncated", "returned_episode"):
            assert data[flag].shape == (n, t) and data[flag].dtype == np.bool_, flag
        assert not (data["terminated"] & data["truncated"]).any(), "both flags set on one step"


@all_envs
def test_deterministic_given_key(env_id: str) -> None:
    _, _, rollout = build_or_skip(env_id)
    raw = C.build(env_id)[0]
    first = C.as_numpy_tree(rollout(jax.random.key(7), raw.default_params))
    again = C.as_numpy_tree(rollout(jax.random.key(7), raw.default_params))
    assert C.leaves_equal(first, again)
    # Different keys give different random actions, so the runs must differ somewhere.
    other = C.as_numpy_tree(rollout(jax.random.key(8), raw.default_params))
    assert not C.leaves_equal(first, other)


@all_envs
def test_jit_and_vmap_match_single_eager_steps(env_id: str) -> None:
    """The first reset and step of env 0 in the vmapped, jitted rollout, redone without vmap."""
    raw, wrapped, _ = build_or_skip(env_id)
    params = raw.default_params
    data = C.rollout_data(env_id)
    reset_key, scan_key = jax.random.split(jax.random.split(jax.random.key(0), C.NUM_ENVS)[0])
    step_key = jax.random.split(scan_key, C.NUM_STEPS)[0]
    action_key, env_key = jax.random.split(step_key)
    action = jax.tree.map(lambda leaf: np.asarray(leaf[0, 0]), data["action"])

    def first_step(reset_key, env_key, action):
        obs0, state = wrapped.reset(reset_key, params)
        obs, _, reward, terminated, truncated, _ = wrapped.step(env_key, state, action, params)
        return obs0, obs, reward, terminated, truncated

    if env_id.startswith(PHYSICS_PREFIXES):
        # Compiling another physics step costs 5-20 s per env; the reset alone is checked, and
        # single physics steps are checked by hand in tests/test_brax_adapter.py.
        obs0 = C.jit_fast_compile(lambda key: wrapped.reset(key, params)[0], env_id)(reset_key)
        C.assert_trees_close(obs0, jax.tree.map(lambda leaf: leaf[0], data["obs0"]))
        return
    first = lambda leaf: leaf[0, 0]  # noqa: E731  (env 0, step 0 of every leaf: obs may be a dict)
    expected = (jax.tree.map(lambda leaf: leaf[0], data["obs0"]), jax.tree.map(first, data["obs"]),
                data["reward"][0, 0], data["terminated"][0, 0], data["truncated"][0, 0])
    C.assert_trees_close(
        C.jit_fast_compile(first_step, env_id)(reset_key, env_key, action), expected
    )
    C.assert_trees_close(first_step(reset_key, env_key, action), expected)  # eager


@all_envs
@pytest.mark.parametrize("short", [False, True], ids=["default_limit", "short_episodes"])
def test_autoreset_final_observation(env_id: str, short: bool) -> None:
    data = data_or_skip(env_id, short)
    done = _done(data)
    if "raw_obs" in data:
        # What the wrapper reports is what the raw env did from the same state and key.
        C.assert_trees_close(data["final_observation"], data["raw_obs"])
        C.assert_trees_close(
            [data["reward"], data["terminated"], data["truncated"]],
            [data["raw_reward"], data["raw_terminated"], data["raw_truncated"]],
        )
    # After an episode ends the next observation is the fresh reset's; otherwise unchanged.
    pick = lambda mask: lambda leaf: leaf[mask]  # noqa: E731
    C.assert_trees_close(jax.tree.map(pick(done), data["obs"]),
                         jax.tree.map(pick(done), data["reset_obs"]))
    C.assert_trees_close(jax.tree.map(pick(~done), data["obs"]),
                         jax.tree.map(pick(~done), data["final_observation"]))
    if short:
        assert done.any(), "short episodes must end within the rollout"


@all_envs
@pytest.mark.parametrize("short", [False, True], ids=["default_limit", "short_episodes"])
def test_episode_stats_and_truncation(env_id: str, short: bool) -> None:
    data = data_or_skip(env_id, short)
    raw = C.build(env_id)[0]
    params = C.short_episode_params(raw) if short else raw.default_params
    limit = getattr(params, "max_steps_in_episode", None)
    done = _done(data)
    np.testing.assert_array_equal(data["returned_episode"], done)
    for env in range(C.NUM_ENVS):
        episode_return = np.zeros(data["reward"].shape[2:], np.float64)
        episode_length = 0
        for t in range(C.NUM_STEPS):
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
    params = C.short_episode_params(raw) if short else raw.default_params
    if params is None:
        return None
    count = PHYSICS_PROPERTY_SEEDS if env_id.startswith(PHYSICS_PREFIXES) else PROPERTY_SEEDS
    runs = [C.as_numpy_tree(rollout(jax.random.key(1000 + seed), params))
            for seed in range(count)]
    return jax.tree.map(lambda *leaves: np.concatenate(leaves, axis=0), *runs)


@all_envs
def test_properties_hold_over_many_random_rollouts(env_id: str) -> None:
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
            inside = C.space_contains_batch(obs_space, data[name], 2)
            assert inside.all(), f"{name} outside {obs_space} at {np.argwhere(~inside)[:3]}"
        assert C.space_contains_batch(action_space, data["action"], 2).all()
        assert np.isfinite(data["reward"]).all(), "a non-finite reward"
        done = _done(data)
        assert not (data["terminated"] & data["truncated"]).any(), "both flags set on one step"
        assert np.array_equal(data["returned_episode"], done), "returned_episode is not done"
        # AutoReset: a step that ended reports its final observation and continues from a
        # reset; any other step's next observation is its final one.
        pick = lambda mask: lambda leaf: leaf[mask]  # noqa: E731
        C.assert_trees_close(jax.tree.map(pick(~done), data["obs"]),
                             jax.tree.map(pick(~done), data["final_observation"]))
        C.assert_trees_close(jax.tree.map(pick(done), data["obs"]),
                             jax.tree.map(pick(done), data["reset_obs"]))
        limit = (C.short_episode_params(raw) if short else raw.default_params)
        limit = getattr(limit, "max_steps_in_episode", None)
        if limit is not None:
            lengths = data["episode_length"][done]
            assert (lengths >= 1).all() and (lengths <= int(limit)).all(), lengths.max()
    # Determinism given the key, on one of the keys above.
    first = C.as_numpy_tree(rollout(jax.random.key(1000), raw.default_params))
    assert C.leaves_equal(first, C.as_numpy_tree(rollout(jax.random.key(1000),
                                                         raw.default_params)))
    floor = 2 * C.NUM_ENVS * C.NUM_STEPS * PHYSICS_PROPERTY_SEEDS  # 384 per physics env
    assert examples >= floor, examples
