"""The multi-objective envs (envs/mo/): transitions by hand, the shipped Pareto fronts by
exhaustive search, the mountain cars against the classic dynamics, and the conformance suite
over the ``mo/`` ids (the checks of tests/conformance.py; in this test process, not in
tests/test_conformance.py's, which is at the limit of compiled programs where XLA's CPU compiler
segfaults).

Compiled programs are shared: one jitted ``step_env`` per env id (``stepper``), one vmapped
transition table per grid env, one rollout per env in the conformance checks.
"""

from __future__ import annotations

import functools
import math
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import tomllib

import jaxrl_suite
from jaxrl_suite.envs import mo
from jaxrl_suite.envs.mo import deep_sea_treasure as dst
from jaxrl_suite.envs.mo import four_room as fr
from jaxrl_suite.envs.mo import minecart as mc
from jaxrl_suite.envs.mo import resource_gathering as rg
from tests import conformance as C

MO_IDS = ("mo/deep-sea-treasure", "mo/deep-sea-treasure-concave", "mo/four-room",
          "mo/fruit-tree-5", "mo/fruit-tree-6", "mo/fruit-tree-7", "mo/minecart-deterministic",
          "mo/mountaincar", "mo/mountaincar-continuous", "mo/resource-gathering")
FRONT_IDS = ("mo/deep-sea-treasure", "mo/deep-sea-treasure-concave", "mo/fruit-tree-5",
             "mo/fruit-tree-6", "mo/fruit-tree-7", "mo/resource-gathering")
GAMMA = 0.99  # the discount every shipped discounted front is stored for


@functools.cache
def made(env_id: str):
    return jaxrl_suite.make(env_id, wrappers=False)


@functools.cache
def stepper(env_id: str):
    """The raw env's ``step_env``, jitted once per id for every test here."""
    env, _ = made(env_id)
    return jax.jit(env.step_env)


def play(env_id: str, actions, params=None, state=None, keys=None):
    """Steps ``actions`` from a reset (or ``state``); returns the per-step (obs, reward,
    terminated, truncated) as NumPy arrays and the last state."""
    env, default = made(env_id)
    params = default if params is None else params
    if state is None:
        _, state = env.reset(jax.random.key(0), params)
    step = stepper(env_id)
    records = []
    for t, action in enumerate(actions):
        key = jax.random.key(1000 + t) if keys is None else keys[t]
        obs, state, reward, terminated, truncated, _ = step(key, state, jnp.asarray(action),
                                                            params)
        records.append((np.asarray(obs), np.asarray(reward), bool(terminated), bool(truncated)))
    return records, state


def non_dominated(points) -> np.ndarray:
    """The rows of ``points`` (n, k) that no other row weakly dominates (maximisation), unique
    and sorted."""
    points = np.unique(np.round(np.asarray(points, np.float64), 10), axis=0)
    ge = np.all(points[:, None, :] >= points[None, :, :], -1)
    gt = np.any(points[:, None, :] > points[None, :, :], -1)
    return points[~np.any(ge & gt, axis=0)]


def assert_same_points(actual, expected, atol=1e-6) -> None:
    actual, expected = np.asarray(actual, np.float64), np.asarray(expected, np.float64)
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    order = lambda p: p[np.lexsort(p.T[::-1])]  # noqa: E731
    np.testing.assert_allclose(order(actual), order(expected), atol=atol)


# --- the ids and the API ------------------------------------------------------------------------
def test_mo_ids_are_registered_with_descriptions_and_left_out_of_test_conformance():
    from tests import test_conformance

    # The MO-Brax ids (the Brax adapter, whose conformance brax/ ids check) are tested in
    # tests/test_mo_brax.py.
    registered = [e for e in jaxrl_suite.registered_envs()
                  if e.startswith("mo/") and not e.startswith("mo/brax-")]
    assert tuple(registered) == MO_IDS
    assert all(jaxrl_suite.env_spec(e).description for e in MO_IDS)
    assert not any(e.startswith("mo/") for e in test_conformance.ENV_IDS)


@pytest.mark.parametrize("env_id", MO_IDS)
def test_vector_reward_attributes(env_id):
    env, params = made(env_id)
    k = env.num_objectives
    space = env.reward_space(params)
    assert space.shape == (k,) and len(env.objective_names) == k
    assert env.reference_point.shape == (k,) and env.reference_point_source
    np.testing.assert_array_equal(mo.reference_point(env_id), env.reference_point)
    # Every reward of the conformance rollout (already compiled there) lies in reward_space.
    data = C.rollout_data(env_id)
    low, high = np.asarray(space.low, np.float32), np.asarray(space.high, np.float32)
    assert np.all(data["reward"] >= low - 1e-6) and np.all(data["reward"] <= high + 1e-6)
    assert data["episode_return"].shape[-1:] == (k,)


def test_reference_points_as_published():
    expected = {"mo/deep-sea-treasure": [0, -25], "mo/deep-sea-treasure-concave": [0, -25],
                "mo/fruit-tree-6": [0] * 6, "mo/minecart-deterministic": [0, 0, -200]}
    for env_id, point in expected.items():
        np.testing.assert_array_equal(mo.reference_point(env_id), point)


def test_pareto_front_api():
    env, _ = made("mo/deep-sea-treasure")
    np.testing.assert_array_equal(mo.pareto_front(env), mo.pareto_front("mo/deep-sea-treasure"))
    wrapped, _ = jaxrl_suite.make("mo/deep-sea-treasure")  # AutoReset(EpisodeStats(...))
    np.testing.assert_array_equal(mo.pareto_front(wrapped, GAMMA),
                                  mo.pareto_front("deep-sea-treasure", GAMMA))
    assert mo.pareto_front(env).shape == (10, 2)
    assert mo.pareto_front(env, gamma=1.0).shape == (10, 2)
    with pytest.raises(ValueError, match="stored for gamma"):
        mo.pareto_front(env, gamma=0.5)
    with pytest.raises(ValueError, match="no known Pareto front"):
        mo.pareto_front("mo/mountaincar")
    assert [e for e in MO_IDS if mo.has_front(e)] == sorted(FRONT_IDS + (
        "mo/minecart-deterministic",))
    assert not mo.front_data("mo/minecart-deterministic")["exact"]
    with pytest.raises(ValueError, match="approximation"):
        mo.pareto_front("mo/minecart-deterministic")
    approximate = mo.pareto_front("mo/minecart-deterministic", 0.98, allow_approximate=True)
    assert approximate.shape[1] == 3 and len(non_dominated(approximate)) == len(approximate)
    assert all(mo.front_data(e)["exact"] for e in FRONT_IDS)


def test_data_files_ship_with_the_package():
    config = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())
    assert "jaxrl_suite.envs.mo" in config["tool"]["setuptools"]["packages"]
    patterns = config["tool"]["setuptools"]["package-data"]["jaxrl_suite.envs.mo"]
    folder = Path(mo.__file__).parent
    shipped = {path for pattern in patterns for path in folder.glob(pattern)}
    assert set(folder.rglob("*.json")) == shipped and len(shipped) == len(FRONT_IDS) + 2


# --- Deep Sea Treasure --------------------------------------------------------------------------
UP, DOWN, LEFT, RIGHT = 0, 1, 2, 3


def test_dst_a_path_to_a_treasure_by_hand():
    # Right 6, down 5 to (5, 6); left into the rock at (5, 5) stays; down 2 to 19.6 at (7, 6).
    actions = [RIGHT] * 6 + [DOWN] * 5 + [LEFT] + [DOWN] * 2
    records, _ = play("mo/deep-sea-treasure", actions)
    obs = np.stack([r[0] for r in records])
    np.testing.assert_array_equal(obs[10], [5, 6])
    np.testing.assert_array_equal(obs[11], [5, 6])  # the rock
    np.testing.assert_array_equal(obs[-1], [7, 6])
    rewards = np.stack([r[1] for r in records])
    np.testing.assert_allclose(rewards[:-1], [[0.0, -1.0]] * 13)
    np.testing.assert_allclose(rewards[-1], [19.6, -1.0], rtol=1e-6)
    assert [r[2] for r in records] == [False] * 13 + [True]
    np.testing.assert_allclose(rewards.sum(0), [19.6, -14.0], rtol=1e-6)  # the front's is -13
    # The concave map: the same cells, Vamplew et al.'s values; off the grid stays in place.
    records, _ = play("mo/deep-sea-treasure-concave", [LEFT, UP, DOWN])
    np.testing.assert_array_equal([r[0] for r in records], [[0, 0], [0, 0], [1, 0]])
    np.testing.assert_allclose(records[-1][1], [1.0, -1.0])
    assert [r[2] for r in records] == [False, False, True]


def test_dst_time_limit_truncates():
    env, params = made("mo/deep-sea-treasure")
    _, state = env.reset(jax.random.key(0), params)
    _, _, reward, terminated, truncated, _ = stepper("mo/deep-sea-treasure")(
        jax.random.key(0), state.replace(time=jnp.int32(99)), jnp.int32(UP), params)
    assert bool(truncated) and not bool(terminated)
    np.testing.assert_allclose(reward, [0.0, -1.0])


@functools.cache
def grid_table(env_id: str, probability: float | None = None):
    """The env's own transitions from every cell (and, for Resource Gathering, flags) under
    every action, by one vmapped call of its ``step_env``: (states, next positions, rewards,
    terminated). ``probability``: Resource Gathering's enemy attack probability."""
    env, params = made(env_id)
    if env_id.startswith("mo/deep-sea-treasure"):
        cells = np.array([(r, c) for r in range(11) for c in range(11)], np.int32)
        states = dst.DSTState(time=jnp.zeros(len(cells), jnp.int32), position=jnp.asarray(cells))
        keys = cells
    else:
        params = params.replace(enemy_attack_probability=probability)
        keys = np.array([(r, c, g, d) for r in range(5) for c in range(5) for g in (0, 1)
                         for d in (0, 1)], np.int32)
        states = rg.RGState(time=jnp.zeros(len(keys), jnp.int32),
                            position=jnp.asarray(keys[:, :2]),
                            has_gold=jnp.asarray(keys[:, 2] == 1),
                            has_diamond=jnp.asarray(keys[:, 3] == 1))

    def all_actions(state):
        step = lambda a: env.step_env(jax.random.key(0), state, a, params)  # noqa: E731
        obs, _, reward, terminated, _, _ = jax.vmap(step)(jnp.arange(4))
        return obs, reward, terminated

    obs, reward, terminated = jax.jit(jax.vmap(all_actions))(states)
    return keys, np.asarray(obs).astype(np.int64), np.asarray(reward, np.float64), np.asarray(
        terminated)


def dst_front_by_search(env_id: str, gamma: float) -> np.ndarray:
    """The front of DST by breadth-first search over the env's own transitions: a policy that
    reaches a treasure in n steps scores ``[value * gamma**(n - 1), -sum_{t<n} gamma**t]``,
    the shortest path to a treasure dominates every longer one, and a policy reaching none
    scores ``[0, -100]`` (dominated). Every treasure's shortest path is exhausted."""
    cells, next_obs, reward, terminated = grid_table(env_id)
    index = {tuple(c): i for i, c in enumerate(cells.tolist())}
    distance = {0: 0}
    frontier, returns = [0], []
    while frontier:
        following = []
        for i in frontier:
            for a in range(4):
                if terminated[i, a]:
                    n = distance[i] + 1
                    returns.append([reward[i, a, 0] * gamma ** (n - 1),
                                    -sum(gamma ** t for t in range(n))])
                    continue
                j = index[tuple(next_obs[i, a])]
                if j not in distance:
                    distance[j] = distance[i] + 1
                    following.append(j)
        frontier = following
    return non_dominated(returns)


@pytest.mark.parametrize("env_id", ["mo/deep-sea-treasure", "mo/deep-sea-treasure-concave"])
def test_dst_fronts_by_exhaustive_search(env_id):
    assert_same_points(mo.pareto_front(env_id), dst_front_by_search(env_id, 1.0))
    assert_same_points(mo.pareto_front(env_id, GAMMA), dst_front_by_search(env_id, GAMMA))
    # As MO-Gymnasium publishes them (CONVEX_FRONT, CONCAVE_FRONT: value, -steps).
    values = dst.CONVEX_MAP if env_id == "mo/deep-sea-treasure" else dst.CONCAVE_MAP
    steps = [1, 3, 5, 7, 8, 9, 13, 14, 17, 19]
    treasures = sorted(values[values > 0].tolist())
    assert_same_points(mo.pareto_front(env_id), np.stack([treasures, -np.array(steps)], 1))


# --- Resource Gathering -------------------------------------------------------------------------
def test_rg_gold_pick_up_and_return_home():
    # Around the enemy at (1, 2) to the gold at (0, 2) and back: 12 steps, no enemy visited.
    there = [UP, UP, LEFT, UP, UP, RIGHT]
    back = [LEFT, DOWN, DOWN, RIGHT, DOWN, DOWN]
    records, _ = play("mo/resource-gathering", there + back)
    obs = np.stack([r[0] for r in records])
    np.testing.assert_array_equal(obs[5], [0, 2, 1, 0])  # on the gold, carrying it
    np.testing.assert_array_equal(obs[6], [0, 1, 1, 0])  # the gold is carried away
    np.testing.assert_array_equal(obs[-1], [4, 2, 1, 0])
    rewards = np.stack([r[1] for r in records])
    np.testing.assert_array_equal(rewards[:-1], np.zeros((11, 3)))
    np.testing.assert_array_equal(rewards[-1], [0, 1, 0])
    assert [r[2] for r in records] == [False] * 11 + [True]


def test_rg_both_resources_without_risk_whatever_the_keys():
    # Diamond first (east side), then the gold around both enemies, then home: 18 steps, the
    # ideal point [0, 1, 1], so the undiscounted front is that point alone.
    route = ([RIGHT, RIGHT, UP, UP, UP] + [LEFT, DOWN, LEFT, LEFT, UP, UP, RIGHT]
             + [LEFT, DOWN, DOWN, RIGHT, DOWN, DOWN])
    for seed in range(3):
        keys = jax.random.split(jax.random.key(seed), len(route))
        records, _ = play("mo/resource-gathering", route, keys=keys)
        np.testing.assert_array_equal(np.sum([r[1] for r in records], 0), [0, 1, 1])
        assert [r[2] for r in records] == [False] * 17 + [True]


def test_rg_enemy_attack_drawn_both_ways():
    env, params = made("mo/resource-gathering")
    to_enemy = [UP, UP]  # home (4, 2) -> (2, 2); the next UP enters the enemy at (1, 2)
    _, state = play("mo/resource-gathering", to_enemy)
    step = stepper("mo/resource-gathering")
    for probability, killed in ((1.0, True), (0.0, False)):
        obs, _, reward, terminated, _, _ = step(jax.random.key(0), state, jnp.int32(UP),
                                                params.replace(enemy_attack_probability=
                                                               probability))
        np.testing.assert_array_equal(obs, [1, 2, 0, 0])
        np.testing.assert_array_equal(reward, [-1, 0, 0] if killed else [0, 0, 0])
        assert bool(terminated) == killed
    # At the published 0.1, the step key decides: one key of each kind.
    draws = np.asarray(jax.vmap(jax.random.uniform)(jax.random.split(jax.random.key(5), 64)))
    assert (draws < 0.1).any() and (draws >= 0.1).any()
    keys = jax.random.split(jax.random.key(5), 64)
    for i in (int(np.argmax(draws < 0.1)), int(np.argmax(draws >= 0.1))):
        _, _, reward, terminated, _, _ = step(keys[i], state, jnp.int32(UP), params)
        assert bool(terminated) == bool(draws[i] < 0.1)
        assert float(reward[0]) == (-1.0 if draws[i] < 0.1 else 0.0)


def test_rg_params_are_traced_a_vmap_over_the_attack_probability():
    env, params = made("mo/resource-gathering")
    _, state = play("mo/resource-gathering", [UP, UP])
    step = jax.vmap(lambda p: env.step_env(
        jax.random.key(0), state, jnp.int32(UP), params.replace(enemy_attack_probability=p)))
    _, _, reward, terminated, _, _ = jax.jit(step)(jnp.array([0.0, 1.0]))
    np.testing.assert_array_equal(terminated, [False, True])
    np.testing.assert_array_equal(reward[:, 0], [0.0, -1.0])


def test_rg_home_ends_the_episode_even_by_bumping_the_border():
    records, _ = play("mo/resource-gathering", [DOWN])  # from home into the border: home again
    np.testing.assert_array_equal(records[0][0], [4, 2, 0, 0])
    np.testing.assert_array_equal(records[0][1], [0, 0, 0])
    assert records[0][2]


def rg_front_by_search(gamma: float, horizon: int = 100) -> np.ndarray:
    """The front of Resource Gathering by backward induction over sets of value vectors on the
    env's own transitions (with the attack probability 0 and 1: surviving and killed
    outcomes), over every deterministic policy of the 100-step episode (it may depend on the
    time left): ``V_h(s) = ND(U_a Q_h(s, a))`` with ``Q = {r}`` at a termination and
    ``p * killed + (1 - p) * gamma * V_{h-1}(s')`` on an enemy. The start's set is the front."""
    p = 0.1
    states, obs, reward, terminated = grid_table("mo/resource-gathering", 0.0)
    _, _, killed_reward, killed = grid_table("mo/resource-gathering", 1.0)
    enemy = killed & ~terminated  # an attack kills only on an enemy's cell
    index = {tuple(s): i for i, s in enumerate(states.tolist())}
    successor = np.array([[index[tuple(o)] for o in row] for row in obs.tolist()])
    value = [np.zeros((1, 3))] * len(states)
    for _ in range(horizon):
        new = []
        for i in range(len(states)):
            options = []
            for a in range(4):
                if terminated[i, a]:
                    options.append(reward[i, a][None])
                    continue
                future = gamma * value[successor[i, a]]
                if enemy[i, a]:
                    future = p * killed_reward[i, a] + (1 - p) * future
                options.append(reward[i, a] + future)
            new.append(non_dominated(np.concatenate(options)))
        value = new
    return value[index[(4, 2, 0, 0)]]


def test_rg_front_by_exhaustive_search():
    assert_same_points(mo.pareto_front("mo/resource-gathering"), [[0.0, 1.0, 1.0]])
    assert_same_points(mo.pareto_front("mo/resource-gathering"), rg_front_by_search(1.0))
    # The three risk-free routes: diamond (10 steps), gold (12), both (18); discounting keeps
    # every risky route dominated at 0.99.
    g = GAMMA
    expected = [[0, 0, g ** 9], [0, g ** 11, 0], [0, g ** 17, g ** 17]]
    assert_same_points(mo.pareto_front("mo/resource-gathering", g), expected)
    assert_same_points(mo.pareto_front("mo/resource-gathering", g), rg_front_by_search(g))


# --- Four-Room ----------------------------------------------------------------------------------
FR_LEFT, FR_UP, FR_RIGHT, FR_DOWN = 0, 1, 2, 3


def test_four_room_collects_a_shape_once_and_the_goal_ends_with_ones():
    # Start (12, 0); left and down bump the border; up 5 to (7, 0); the wall at (6, 0) blocks;
    # right 2 to (7, 2); up collects the "3" at (6, 2); down and up again collect nothing.
    actions = [FR_LEFT, FR_DOWN] + [FR_UP] * 5 + [FR_UP] + [FR_RIGHT] * 2 + [FR_UP, FR_DOWN,
                                                                            FR_UP]
    records, state = play("mo/four-room", actions)
    positions = np.stack([r[0][:2] for r in records])
    np.testing.assert_array_equal(positions[:2], [[12, 0], [12, 0]])
    np.testing.assert_array_equal(positions[7], [7, 0])
    np.testing.assert_array_equal(positions[10], [6, 2])
    rewards = np.stack([r[1] for r in records])
    np.testing.assert_array_equal(rewards.sum(0), [0, 0, 1])
    np.testing.assert_array_equal(rewards[10], [0, 0, 1])
    shape = int(np.flatnonzero(np.all(fr.SHAPE_POSITIONS == [6, 2], axis=1))[0])
    assert shape == 2  # MO-Gymnasium numbers shapes column by column: (0, 0), (5, 0), (6, 2)
    assert records[-1][0][2 + shape] == 1 and records[-1][0][2:].sum() == 1
    assert not any(r[2] for r in records)
    # Next to the goal (0, 12): entering it pays [1, 1, 1] and terminates.
    records, _ = play("mo/four-room", [FR_RIGHT],
                      state=state.replace(position=jnp.array([0, 11], jnp.int32)))
    np.testing.assert_array_equal(records[0][1], [1, 1, 1])
    assert records[0][2]


# --- Fruit Tree ---------------------------------------------------------------------------------
@functools.cache
def all_leaf_returns(depth: int, gamma: float) -> np.ndarray:
    """The (discounted) return of every one of the 2**depth action sequences, through the
    env."""
    env, params = made(f"mo/fruit-tree-{depth}")
    bits = (np.arange(2 ** depth)[:, None] >> np.arange(depth)[::-1]) & 1  # msb first

    def episode(actions):
        _, state = env.reset(jax.random.key(0), params)

        def body(carry, action):
            state, total, discount = carry
            _, state, reward, terminated, _, _ = env.step_env(jax.random.key(0), state, action,
                                                              params)
            return (state, total + discount * reward, discount * gamma), terminated

        (_, total, _), terminated = jax.lax.scan(body, (state, jnp.zeros(6), 1.0), actions)
        return total, terminated

    total, terminated = jax.jit(jax.vmap(episode))(jnp.asarray(bits, jnp.int32))
    assert np.asarray(terminated)[:, -1].all() and not np.asarray(terminated)[:, :-1].any()
    return np.asarray(total, np.float64)


@pytest.mark.parametrize("depth", [5, 6, 7])
def test_fruit_tree_fronts_are_all_leaves(depth):
    env_id = f"mo/fruit-tree-{depth}"
    undiscounted = all_leaf_returns(depth, 1.0)
    np.testing.assert_allclose(undiscounted, mo.fruits(depth), rtol=1e-6)  # leaf i = fruit i
    assert len(non_dominated(undiscounted)) == 2 ** depth  # every fruit is Pareto-optimal
    assert_same_points(mo.pareto_front(env_id), non_dominated(undiscounted), atol=1e-5)
    discounted = non_dominated(all_leaf_returns(depth, GAMMA))
    assert_same_points(mo.pareto_front(env_id, GAMMA), discounted, atol=1e-5)


# --- the mountain cars --------------------------------------------------------------------------
def classic_mountain_car(position, velocity, push, goal):
    """Gymnasium's MountainCar step in float64."""
    velocity = min(max(velocity + push - 0.0025 * math.cos(3 * position), -0.07), 0.07)
    position = min(max(position + velocity, -1.2), 0.6)
    if position == -1.2 and velocity < 0:
        velocity = 0.0
    return position, velocity, position >= goal and velocity >= 0


@pytest.mark.parametrize("start, action", [((-0.5, 0.0), 2), ((-0.3, -0.02), 0),
                                           ((0.49, 0.02), 2), ((-1.19, -0.05), 1)])
def test_mountaincar_against_the_classic_dynamics(start, action):
    env, params = made("mo/mountaincar")
    _, state = env.reset(jax.random.key(0), params)
    state = state.replace(position=jnp.float32(start[0]), velocity=jnp.float32(start[1]))
    (obs, reward, terminated, _), = play("mo/mountaincar", [action], state=state)[0]
    position, velocity, done = classic_mountain_car(*start, (action - 1) * 0.001, goal=0.5)
    np.testing.assert_allclose(obs, [position, velocity], atol=1e-6)
    assert terminated == done
    np.testing.assert_array_equal(reward, [0.0 if done else -1.0, -float(action == 0),
                                           -float(action == 2)])


@pytest.mark.parametrize("start, action", [((-0.5, 0.0), 0.5), ((0.44, 0.01), 1.0),
                                           ((-0.2, 0.03), 2.0)])
def test_mountaincar_continuous_against_the_classic_dynamics(start, action):
    env, params = made("mo/mountaincar-continuous")
    _, state = env.reset(jax.random.key(0), params)
    state = state.replace(position=jnp.float32(start[0]), velocity=jnp.float32(start[1]))
    (obs, reward, terminated, _), = play("mo/mountaincar-continuous",
                                        [np.array([action], np.float32)], state=state)[0]
    push = min(max(action, -1.0), 1.0) * 0.0015
    position, velocity, done = classic_mountain_car(*start, push, goal=0.45)
    np.testing.assert_allclose(obs, [position, velocity], atol=1e-6)
    assert terminated == done
    # The fuel cost is of the action as given (MO-Gymnasium does not clip it there).
    np.testing.assert_allclose(reward, [0.0 if done else -1.0, -action ** 2], rtol=1e-6)


def test_mountaincar_resets_in_the_classic_range():
    env, params = made("mo/mountaincar")
    obs, _ = jax.vmap(env.reset, in_axes=(0, None))(jax.random.split(jax.random.key(0), 256),
                                                     params)
    obs = np.asarray(obs)
    assert (obs[:, 0] >= -0.6).all() and (obs[:, 0] < -0.4).all() and (obs[:, 1] == 0).all()


# --- Minecart -----------------------------------------------------------------------------------
def test_minecart_accelerates_along_its_heading():
    records, _ = play("mo/minecart-deterministic", [mc.ACCELERATE])
    obs, reward, terminated, _ = records[0]
    # Four frames at speeds 0.0075, 0.015, 0.0225, 0.03 along 45 degrees.
    along = 0.075 / math.sqrt(2)
    np.testing.assert_allclose(obs, [along, along, 0.03, math.sqrt(0.5), math.sqrt(0.5), 0, 0],
                               atol=1e-6)
    np.testing.assert_allclose(reward, [0, 0, -0.12], atol=1e-7)
    assert not terminated


def test_minecart_mines_up_to_capacity_and_sells_at_home():
    env, params = made("mo/minecart-deterministic")
    _, state = env.reset(jax.random.key(0), params)
    at_mine = state.replace(position=jnp.array([0.84, 0.84]), departed=jnp.bool_(True))
    # Mine 2 yields [0.2, 0.2] a frame: 3 frames fill 1.2, the 4th only the 0.3 left.
    records, state = play("mo/minecart-deterministic", [mc.MINE], state=at_mine)
    obs, reward, terminated, _ = records[0]
    np.testing.assert_allclose(obs[5:], [0.5, 0.5], atol=1e-6)
    np.testing.assert_allclose(reward, [0, 0, -0.22], atol=1e-7)
    # Just outside home, heading for it: the first frame inside sells the load and ends.
    homing = state.replace(position=jnp.array([0.12, 0.12]), angle=jnp.float32(225.0),
                           speed=jnp.float32(0.03))
    records, _ = play("mo/minecart-deterministic", [mc.NONE], state=homing)
    obs, reward, terminated, _ = records[0]
    np.testing.assert_allclose(reward, [0.75, 0.75, -0.02], atol=1e-6)
    assert terminated
    np.testing.assert_allclose(obs[5:], [0, 0])


def test_minecart_brake_stops_and_a_cart_at_rest_stays():
    records, _ = play("mo/minecart-deterministic", [mc.ACCELERATE, mc.BRAKE, mc.NONE])
    positions = np.stack([r[0][:2] for r in records])
    np.testing.assert_array_equal(positions[0], positions[1])
    np.testing.assert_array_equal(positions[1], positions[2])
    assert records[2][0][2] == 0


# --- the conformance suite ----------------------------------------------------------------------
@pytest.mark.parametrize("env_id", MO_IDS)
@pytest.mark.parametrize("check", C.check_params())
def test_conformance(env_id, check):
    check(env_id)
