"""The maze: hand-computed transitions and observations, BFS distances, generators and mutations
(property tests), named levels, and the AutoReplay / AutoReset distinction.

Compiled functions are built once per module (``functools.cache``) and reused across tests.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import jaxrl_suite
from jaxrl_suite.env.levels import AutoReplay, is_level_env
from jaxrl_suite.env.wrappers import AutoReset, EpisodeStats
from jaxrl_suite.envs.maze import (
    Level,
    Maze,
    distance_to_goal,
    is_valid_level,
    level_from_text,
    level_to_text,
    load_level,
    load_levels,
    named_level_names,
    optimal_num_steps,
    optimal_return,
    pad_level,
    shortest_path_length,
)
from jaxrl_suite.envs.maze.generators import room_wall_lines

LEFT, RIGHT, FORWARD = 0, 1, 2

# Agent at (2, 2) facing east; walls at (1, 1), (1, 3), (3, 4), (4, 1); goal at (1, 2).
SMALL = """
.....
.#G#.
..>..
....#
.#...
"""


def kinds(image: np.ndarray) -> list[str]:
    """An observation image as rows of characters: '.' empty, '#' wall, 'G' goal, 'A' agent."""
    image = np.asarray(image)
    assert image.dtype == np.uint8 and set(np.unique(image)) <= {0, 1}
    assert (image.sum(-1) == 1).all(), "every cell is one-hot"
    symbols = ".#GA"
    return ["".join(symbols[k] for k in row) for row in image.argmax(-1)]


@functools.cache
def compiled(env: Maze):
    """jitted (reset_to_level, step) of one env, cached so tests share compilations."""
    return jax.jit(env.reset_to_level), jax.jit(env.step)


SMALL_ENV = Maze(size=5, view_size=3)
SMALL_FULL_ENV = Maze(size=5, observation="full")


def test_level_text_round_trip_and_fields():
    level = level_from_text(SMALL)
    assert level.shape == (5, 5)
    assert level.wall_map.dtype == jnp.bool_
    np.testing.assert_array_equal(level.goal_position, [1, 2])
    np.testing.assert_array_equal(level.agent_position, [2, 2])
    assert int(level.agent_direction) == 0
    assert level_to_text(level) == SMALL.strip()
    assert bool(is_valid_level(level))


@pytest.mark.parametrize(
    "text, message",
    [
        ("..\n...", "row 1 has 3 cells"),
        ("G.\n..", "exactly one goal"),
        (">G\nG.", "found 2 goal"),
        (">x\nG.", "unknown character 'x'"),
        ("", "empty"),
    ],
)
def test_level_text_errors_name_the_problem(text, message):
    with pytest.raises(ValueError, match=message):
        level_from_text(text)


@pytest.mark.parametrize(
    "direction, expected",
    [
        (0, ["..#", "#..", "G.."]),  # east: the view's rows are columns 4, 3, 2
        (1, ["..#", "...", "..."]),  # south: rows 4, 3, 2, the agent's left is east
        (2, ["...", "..#", "..G"]),  # west: columns 0, 1, 2, the agent's left is south
        (3, ["...", "#G#", "..."]),  # north: rows 0, 1, 2
    ],
)
def test_partial_view_by_hand(direction, expected):
    level = level_from_text(SMALL).replace(agent_direction=jnp.int32(direction))
    reset, _ = compiled(SMALL_ENV)
    obs, _ = reset(jax.random.key(0), level, SMALL_ENV.default_params)
    assert kinds(obs["image"]) == expected
    assert int(obs["direction"]) == direction


def test_partial_view_outside_the_grid_is_wall():
    level = level_from_text("^...\n....\n...G")  # agent at (0, 0) facing north
    env = Maze(height=3, width=4, view_size=3)
    obs, _ = env.reset_to_level(jax.random.key(0), level)
    # Ahead and to the left is outside the grid; the agent's row shows (0, -1), (0, 0), (0, 1).
    assert kinds(obs["image"]) == ["###", "###", "#.."]


def test_full_view_by_hand():
    obs, _ = compiled(SMALL_FULL_ENV)[0](
        jax.random.key(0), level_from_text(SMALL), SMALL_FULL_ENV.default_params
    )
    assert kinds(obs["image"]) == [".....", ".#G#.", "..A..", "....#", ".#..."]
    assert obs["image"].shape == (5, 5, 4)


def test_transitions_by_hand():
    """Walls block, turns turn, the goal pays 1 - 0.9 t / T and terminates."""
    env = SMALL_ENV
    reset, step = compiled(env)
    params = env.default_params
    _, state = reset(jax.random.key(0), level_from_text(SMALL), params)
    expected = [  # action, position after, direction after, reward, terminated
        (FORWARD, (2, 3), 0, 0.0, False),
        (LEFT, (2, 3), 3, 0.0, False),
        (FORWARD, (2, 3), 3, 0.0, False),  # (1, 3) is a wall
        (LEFT, (2, 3), 2, 0.0, False),
        (FORWARD, (2, 2), 2, 0.0, False),
        (RIGHT, (2, 2), 3, 0.0, False),
        (FORWARD, (1, 2), 3, 1.0 - 0.9 * 7 / 250, True),
    ]
    for t, (action, position, direction, reward, terminated) in enumerate(expected, start=1):
        _, state, r, term, trunc, _ = step(jax.random.key(t), state, jnp.int32(action), params)
        np.testing.assert_array_equal(state.agent_position, position)
        assert int(state.agent_direction) == direction
        np.testing.assert_allclose(float(r), reward, rtol=1e-6)
        assert bool(term) == terminated and not bool(trunc)
        assert int(state.time) == t


def test_cannot_leave_the_grid_and_truncates_at_the_limit():
    env = Maze(height=3, width=4, view_size=3)
    params = env.default_params.replace(max_steps_in_episode=3)
    level = level_from_text("^...\n....\n...G")
    _, state = env.reset_to_level(jax.random.key(0), level, params)
    for t in range(1, 4):
        _, state, reward, terminated, truncated, _ = env.step(
            jax.random.key(t), state, jnp.int32(FORWARD), params
        )
        np.testing.assert_array_equal(state.agent_position, (0, 0))
        assert float(reward) == 0.0 and not bool(terminated)
        assert bool(truncated) == (t == 3)


def test_a_python_int_action_steps_as_an_array_does():
    """``step`` accepts a plain int (it is in the action space), eagerly too."""
    env = SMALL_ENV
    _, state = env.reset_to_level(jax.random.key(0), level_from_text(SMALL))
    for action in (LEFT, RIGHT, FORWARD):
        from_int = env.step(jax.random.key(1), state, action)
        from_array = env.step(jax.random.key(1), state, jnp.int32(action))
        for a, b in zip(jax.tree.leaves(from_int), jax.tree.leaves(from_array)):
            np.testing.assert_array_equal(a, b)


def test_minigrid_actions_3_to_6_do_nothing():
    env = Maze(size=5, view_size=3, minigrid_actions=True)
    assert env.action_space().n == 7
    _, state = env.reset_to_level(jax.random.key(0), level_from_text(SMALL))
    for action in range(3, 7):
        _, after, reward, terminated, _, _ = env.step(jax.random.key(1), state, jnp.int32(action))
        np.testing.assert_array_equal(after.agent_position, state.agent_position)
        assert int(after.agent_direction) == int(state.agent_direction)
        assert float(reward) == 0.0 and not bool(terminated)
    with pytest.raises(ValueError, match="outside the action space"):
        SMALL_ENV.step(jax.random.key(1), state, jnp.int32(3))


# --- BFS ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "text, moves, actions",
    [
        (">...G", 4, 4),
        ("G...<", 4, 4),
        ("G...>", 4, 6),  # turn around first: two turns
        ("v...G", 4, 5),
        (">.#.G", -1, -1),  # a wall cuts the corridor
        ("G#\n##\n.^", -1, -1),  # the start is walled off
        (">..\n##.\nG..", 6, 8),  # east 2, turn, south 2, turn, west 2
    ],
)
def test_shortest_paths_by_hand(text, moves, actions):
    level = level_from_text(text)
    assert int(shortest_path_length(level)) == moves
    assert int(optimal_num_steps(level)) == actions
    expected_return = 0.0 if actions < 0 else 1.0 - 0.9 * actions / 250
    np.testing.assert_allclose(float(optimal_return(level, 250)), expected_return, rtol=1e-6)


def test_distance_map_by_hand():
    level = level_from_text(">..\n##.\nG..")
    unreachable = 3 * 3 * 4 + 1
    np.testing.assert_array_equal(
        distance_to_goal(level),
        [[6, 5, 4], [unreachable, unreachable, 3], [0, 1, 2]],
    )


@pytest.mark.slow
def test_optimal_steps_match_a_real_episode():
    """Following BFS greedily reaches the goal in exactly optimal_num_steps actions."""
    level = load_level("SixteenRooms")
    env = Maze()
    steps = int(optimal_num_steps(level))
    # Greedy on the state-space costs: re-solve from each state and pick an action that lowers it.
    _, state = env.reset_to_level(jax.random.key(0), level)
    step = jax.jit(env.step)
    remaining = jax.jit(lambda s: optimal_num_steps(env.level_of(s).replace(
        agent_position=s.agent_position, agent_direction=s.agent_direction)))
    for t in range(steps):
        for action in (FORWARD, LEFT, RIGHT):
            _, candidate, reward, terminated, _, _ = step(jax.random.key(t), state, action)
            if bool(terminated) or int(remaining(candidate)) == steps - t - 1:
                break
        state = candidate
    assert bool(terminated) and t == steps - 1
    np.testing.assert_allclose(float(reward), float(optimal_return(level, 250)), rtol=1e-6)


# --- generators and mutations -------------------------------------------------------------------
@functools.cache
def batch_sampler(generator: str, size: int):
    env = Maze(size=size, generator=generator)
    return env, jax.jit(jax.vmap(env.sample_level, in_axes=(0, None)))


def _numpy_free_edges(wall_map: np.ndarray) -> int:
    free = ~wall_map
    return int((free[:, 1:] & free[:, :-1]).sum() + (free[1:, :] & free[:-1, :]).sum())


@pytest.mark.slow
@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), num_walls=st.integers(0, 200))
def test_random_walls_levels_are_valid_with_exact_wall_count(seed, num_walls):
    env, sample = batch_sampler("random_walls", 13)
    params = env.default_params.replace(num_walls=num_walls)
    levels = sample(jax.random.split(jax.random.key(seed), 8), params)
    assert bool(jax.vmap(is_valid_level)(levels).all())
    walls = np.asarray(levels.wall_map).sum(axis=(1, 2))
    np.testing.assert_array_equal(walls, min(num_walls, 13 * 13 - 2))


@pytest.mark.slow
@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), size=st.sampled_from([5, 12, 13]))
def test_perfect_mazes_are_trees(seed, size):
    """Every free cell reaches the goal, and free cells with their adjacencies form a tree
    (edges = cells - 1), so each pair of cells is joined by exactly one path."""
    _, sample = batch_sampler("perfect_maze", size)
    levels = sample(jax.random.split(jax.random.key(seed), 4), Maze().default_params)
    assert bool(jax.vmap(is_valid_level)(levels).all())
    distances = np.asarray(jax.vmap(distance_to_goal)(levels))
    for wall_map, distance in zip(np.asarray(levels.wall_map), distances):
        free = ~wall_map
        assert (distance[free] < size * size * 4 + 1).all()
        assert _numpy_free_edges(wall_map) == free.sum() - 1


@pytest.mark.slow
@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2**31 - 1))
def test_empty_rooms_are_connected_rooms(seed):
    env, sample = batch_sampler("empty_rooms", 13)
    levels = sample(jax.random.split(jax.random.key(seed), 4), env.default_params)
    assert bool(jax.vmap(is_valid_level)(levels).all())
    lines = room_wall_lines(13, 4)
    distances = np.asarray(jax.vmap(distance_to_goal)(levels))
    for wall_map, distance in zip(np.asarray(levels.wall_map), distances):
        assert (distance[~wall_map] < 13 * 13 * 4 + 1).all()
        # Only wall lines hold walls; each line has one doorway per room it borders.
        interior = np.ones(13, bool)
        interior[lines] = False
        assert not wall_map[np.ix_(interior, interior)].any()
        for line in lines:
            assert (~wall_map[line, :]).sum() == 4 and (~wall_map[:, line]).sum() == 4


@functools.cache
def batch_mutator():
    env = Maze()
    return jax.jit(jax.vmap(env.mutate_level, in_axes=(0, 0, None)))


@pytest.mark.slow
@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), num_edits=st.integers(0, 30))
def test_mutations_keep_levels_valid_and_change_little(seed, num_edits):
    env, sample = batch_sampler("random_walls", 13)
    key = jax.random.key(seed)
    levels = sample(jax.random.split(key, 16), env.default_params)
    mutated = batch_mutator()(jax.random.split(jax.random.fold_in(key, 1), 16), levels, num_edits)
    assert bool(jax.vmap(is_valid_level)(mutated).all())
    changed_walls = np.asarray(mutated.wall_map != levels.wall_map).sum(axis=(1, 2))
    moved_goal = np.asarray((mutated.goal_position != levels.goal_position).any(-1))
    moved_agent = np.asarray((mutated.agent_position != levels.agent_position).any(-1))
    assert (changed_walls + moved_goal + moved_agent <= num_edits).all()
    if num_edits == 0:
        assert jax.tree.all(jax.tree.map(lambda a, b: bool((a == b).all()), mutated, levels))


@pytest.mark.slow
def test_mutations_use_every_kind_of_edit():
    env, sample = batch_sampler("random_walls", 13)
    levels = sample(jax.random.split(jax.random.key(5), 64), env.default_params)
    mutated = batch_mutator()(jax.random.split(jax.random.key(6), 64), levels, 1)
    added = np.asarray(mutated.wall_map & ~levels.wall_map).sum()
    removed = np.asarray(~mutated.wall_map & levels.wall_map).sum()
    goal_moves = np.asarray((mutated.goal_position != levels.goal_position).any(-1)).sum()
    agent_moves = np.asarray((mutated.agent_position != levels.agent_position).any(-1)).sum()
    assert min(added, removed, goal_moves, agent_moves) > 0
    assert added + removed + goal_moves + agent_moves == 64


def test_reset_is_reset_to_sampled_level():
    env = Maze()
    params = env.default_params
    key = jax.random.key(3)
    obs, state = env.reset(key, params)
    obs2, state2 = env.reset_to_level(key, env.sample_level(key, params), params)
    assert jax.tree.all(jax.tree.map(lambda a, b: bool((a == b).all()), (obs, state),
                                     (obs2, state2)))


# --- named levels -------------------------------------------------------------------------------
DCD_NAMES = [
    "SixteenRooms", "SixteenRooms2", "Labyrinth", "LabyrinthFlipped", "Labyrinth2",
    "StandardMaze", "StandardMaze2", "StandardMaze3",
]


@pytest.mark.slow
def test_every_named_level_loads_valid_and_solvable():
    names = named_level_names()
    assert set(DCD_NAMES) <= set(names)
    assert any(load_level(name).shape[0] >= 51 for name in names), "a large perfect maze ships"
    for name in names:
        level = load_level(name)
        assert bool(is_valid_level(level)), name
        assert int(shortest_path_length(level)) > 0, name
        assert level_to_text(level) + "\n" == (
            jaxrl_suite.envs.maze.named.level_text(name).strip() + "\n"
        )


def test_labyrinth_flipped_mirrors_labyrinth():
    labyrinth, flipped = load_level("Labyrinth"), load_level("LabyrinthFlipped")
    np.testing.assert_array_equal(labyrinth.wall_map[:, ::-1], flipped.wall_map)


def test_named_levels_stack_and_pad():
    levels = load_levels(DCD_NAMES)
    assert levels.wall_map.shape == (len(DCD_NAMES), 13, 13)
    padded = pad_level(load_level("Labyrinth"), 15, 16)
    assert padded.shape == (15, 16) and bool(padded.wall_map[13:, :].all())
    assert int(shortest_path_length(padded)) == int(shortest_path_length(load_level("Labyrinth")))


def test_unknown_level_name_suggests_close_ones():
    with pytest.raises(ValueError, match="Did you mean 'Labyrinth'"):
        load_level("Labyrnth")


# --- AutoReplay vs AutoReset ---------------------------------------------------------------------
@functools.cache
def episode_ends_rollout(wrapper: type):
    """jitted: 4 envs on 4 given levels, 12 steps of always turning left with an episode limit of
    3, returning the level played at every step."""
    env = EpisodeStats(wrapper(Maze()))
    params = env.default_params.replace(max_steps_in_episode=3)

    def rollout(key, levels):
        keys = jax.random.split(key, 4)
        _, state = jax.vmap(env.reset_to_level, in_axes=(0, 0, None))(keys, levels, params)

        def one_step(state, step_key):
            _, state, _, _, truncated, info = jax.vmap(env.step, in_axes=(0, 0, None, None))(
                jax.random.split(step_key, 4), state, jnp.int32(LEFT), params
            )
            return state, (jax.vmap(env.level_of)(state), truncated)

        return jax.lax.scan(one_step, state, jax.random.split(key, 12))[1]

    return jax.jit(rollout)


@pytest.mark.slow
def test_auto_replay_resets_to_the_same_level_and_auto_reset_to_a_new_one():
    env, sample = batch_sampler("random_walls", 13)
    levels = sample(jax.random.split(jax.random.key(11), 4), env.default_params)
    for wrapper, same in ((AutoReplay, True), (AutoReset, False)):
        played, truncated = episode_ends_rollout(wrapper)(jax.random.key(1), levels)
        assert int(np.asarray(truncated).sum()) == 4 * 4  # every third step ends an episode
        walls = np.asarray(played.wall_map)  # (step, env, H, W)
        for t in range(12):
            matches = (walls[t] == np.asarray(levels.wall_map)).all(axis=(1, 2))
            if same or t < 2:
                assert matches.all(), (wrapper.__name__, t)
            else:
                assert not matches.any(), (wrapper.__name__, t)


def test_auto_replay_observes_as_the_reset_would():
    """AutoReplay computes the observation once, from the chosen state: it must equal the
    observation a fresh reset to the level gives."""
    env = AutoReplay(SMALL_ENV)
    params = SMALL_ENV.default_params.replace(max_steps_in_episode=2)
    level = level_from_text(SMALL)
    first_obs, state = env.reset_to_level(jax.random.key(0), level, params)
    obs, state, _, _, _, info = env.step(jax.random.key(1), state, jnp.int32(LEFT), params)
    assert kinds(info["final_observation"]["image"]) == kinds(obs["image"])
    obs, state, _, _, truncated, info = env.step(jax.random.key(2), state, jnp.int32(LEFT), params)
    assert bool(truncated)
    assert kinds(obs["image"]) == kinds(first_obs["image"])
    assert int(obs["direction"]) == 0 and int(info["final_observation"]["direction"]) == 2


def test_training_stacks_keep_auto_replay():
    """An algorithm's training stack (auto_reset_env) adds EpisodeStats to an AutoReplay env and
    no AutoReset over it: the replayed level must not be replaced by a generated one."""
    from jaxrl_suite.env.wrappers import auto_reset_env, has_wrapper, resets_automatically

    stack = auto_reset_env(AutoReplay(Maze()))
    assert has_wrapper(stack, EpisodeStats) and not has_wrapper(stack, AutoReset)
    assert resets_automatically(stack) and not resets_automatically(Maze())
    assert has_wrapper(auto_reset_env(Maze()), AutoReset)


def test_level_env_api_through_wrappers():
    env = EpisodeStats(AutoReplay(Maze()))
    assert is_level_env(env) and not is_level_env(jaxrl_suite.make("gymnax/CartPole-v1")[0])
    level = load_level("Labyrinth")
    _, state = env.reset_to_level(jax.random.key(0), level)
    np.testing.assert_array_equal(env.level_of(state).wall_map, level.wall_map)
    with pytest.raises(TypeError, match="level environment"):
        AutoReplay(jaxrl_suite.make("gymnax/CartPole-v1", wrappers=False)[0])
    with pytest.raises(TypeError, match="not a level environment"):
        jaxrl_suite.make("gymnax/CartPole-v1")[0].reset_to_level(jax.random.key(0), level)


# --- bad input ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"view_size": 4}, "view_size must be odd"),
        ({"view_size": 0}, "view_size must be an integer >= 1"),
        ({"size": 1}, "height must be an integer >= 2"),
        ({"generator": "caves"}, "generator must be one of"),
        ({"observation": "pixels"}, "observation must be one of"),
        ({"generator": "empty_rooms", "rooms_per_side": 8}, "do not fit"),
    ],
)
def test_bad_settings_raise_clear_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Maze(**kwargs)


def test_level_of_the_wrong_shape_is_refused():
    with pytest.raises(ValueError, match="this env is 13x13 but the level's wall_map has shape"):
        Maze().reset_to_level(jax.random.key(0), level_from_text(SMALL))
    with pytest.raises(TypeError, match="a level is a jaxrl_suite.envs.maze.Level"):
        Maze().reset_to_level(jax.random.key(0), {"walls": 1})
    assert isinstance(load_level("Labyrinth"), Level)


@pytest.mark.slow
def test_packed_row_and_gathered_views_agree():
    """Grids whose padded rows fit 32 bits read view walls from packed rows, wider ones by
    gathering cells: both give the same observations, in every direction, near every edge."""
    packed, gathered = Maze(), Maze()
    gathered._packed_rows = False
    assert packed._packed_rows and not Maze(size=29)._packed_rows
    _, sample = batch_sampler("random_walls", 13)
    levels = sample(jax.random.split(jax.random.key(2), 169), Maze().default_params)
    # Put the agent on every cell (walls or not: observing does not care) in all directions.
    cells = jnp.stack(jnp.divmod(jnp.arange(169), 13), axis=1).astype(jnp.int32)
    _, states = jax.vmap(packed.reset_to_level)(
        jax.random.split(jax.random.key(0), 169), levels.replace(agent_position=cells)
    )
    for direction in range(4):
        turned = states.replace(agent_direction=jnp.full(169, direction, jnp.int32))
        np.testing.assert_array_equal(
            jax.vmap(packed.observe)(turned)["image"], jax.vmap(gathered.observe)(turned)["image"]
        )
