"""The maze editor (PAIRED's adversary env): scripted edits build exactly the expected level,
the phases and termination come at the right steps, and any action sequence gives a valid level.

Every scripted test runs through one jitted scan per editor (``run_editor``), compiled once.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxrl_suite
from jaxrl_suite.envs.maze import (
    Maze,
    MazeEditor,
    MazeEditorParams,
    is_valid_level,
    level_to_text,
    make_editor,
)
from jaxrl_suite.envs.maze.level import AGENT_CHARACTERS

# 5 x 5 grid, 3 wall steps: episodes of 5 steps (walls at steps 0-2, goal 3, agent 4).
EDITOR = make_editor(Maze(size=5), num_walls=3)
WIDTH = 5


def cell(row: int, column: int, width: int = WIDTH) -> int:
    """The action (flat cell index) of ``(row, column)``."""
    return row * width + column


@functools.cache
def run_editor(editor: MazeEditor):
    """Jitted ``(key, actions int32 (T,)) -> (obs0, per-step outputs, final state)``: a reset
    and ``T`` steps; per-step outputs are stacked along the first axis."""

    def run(key, actions):
        reset_key, scan_key = jax.random.split(key)
        obs0, state0 = editor.reset(reset_key)

        def body(state, inputs):
            step_key, action = inputs
            obs, state, reward, terminated, truncated, info = editor.step(step_key, state, action)
            return state, {"obs": obs, "state": state, "reward": reward,
                           "terminated": terminated, "truncated": truncated}

        step_keys = jax.random.split(scan_key, actions.shape[0])
        final_state, outputs = jax.lax.scan(body, state0, (step_keys, actions))
        return obs0, outputs, final_state

    return jax.jit(run)


def build(actions: list[int], editor: MazeEditor = EDITOR, seed: int = 0):
    """Run ``actions``, padded with action 0 to two steps past the episode's end (steps after
    the end change nothing), so every script of an editor shares one compilation."""
    padded = actions + [0] * (editor.num_steps + 2 - len(actions))
    return run_editor(editor)(jax.random.key(seed), jnp.asarray(padded, jnp.int32))


def text_of(editor: MazeEditor, state) -> str:
    return level_to_text(editor.level(state))


def with_agent(text: str, direction) -> str:
    """``text`` with its agent marker 'A' replaced by the character of ``direction``."""
    return text.replace("A", AGENT_CHARACTERS[int(direction)])


def test_scripted_actions_build_the_expected_level() -> None:
    actions = [cell(0, 1), cell(2, 2), cell(4, 0), cell(3, 3), cell(0, 0)]
    _, _, state = build(actions)
    expected = with_agent(
        """
        A#...
        .....
        ..#..
        ...G.
        #....
        """,
        state.agent_direction,
    )
    assert text_of(EDITOR, state) == "\n".join(expected.split())
    assert bool(is_valid_level(EDITOR.level(state)))


def test_flat_index_is_row_times_width_plus_column_on_a_non_square_grid() -> None:
    editor = make_editor(Maze(height=3, width=4), num_walls=2)
    actions = [cell(1, 3, 4), cell(2, 0, 4), cell(0, 2, 4), cell(2, 3, 4)]
    _, _, state = build(actions, editor)
    expected = with_agent("..G.\n...#\n#..A", state.agent_direction)
    assert text_of(editor, state) == expected


def test_repeated_wall_placement_is_a_no_op() -> None:
    _, outputs, state = build([cell(1, 1)] * 3 + [cell(4, 4), cell(0, 0)])
    walls = np.asarray(outputs["state"].wall_map)
    assert walls[0].sum() == 1 and walls[0][1, 1]
    np.testing.assert_array_equal(walls[1], walls[0])
    np.testing.assert_array_equal(walls[2], walls[0])
    assert np.asarray(state.wall_map).sum() == 1


def test_goal_placed_on_a_wall_clears_it() -> None:
    _, outputs, state = build([cell(1, 1), cell(1, 2), cell(1, 3), cell(1, 2), cell(0, 0)])
    assert bool(np.asarray(outputs["state"].wall_map)[2][1, 2])  # a wall before the goal step
    assert not bool(state.wall_map[1, 2])
    np.testing.assert_array_equal(state.goal_position, [1, 2])
    assert int(np.asarray(state.wall_map).sum()) == 2


def test_agent_placed_on_a_wall_clears_it() -> None:
    _, _, state = build([cell(2, 2), cell(3, 3), cell(4, 4), cell(0, 0), cell(3, 3)])
    np.testing.assert_array_equal(state.agent_position, [3, 3])
    assert not bool(state.wall_map[3, 3])


def test_agent_placed_on_the_goal_moves_to_the_next_cell_and_clears_it() -> None:
    # The next cell in row-major order holds a wall, which is cleared for the agent.
    _, _, state = build([cell(1, 4), cell(2, 0), cell(0, 0), cell(1, 4), cell(1, 4)])
    np.testing.assert_array_equal(state.goal_position, [1, 4])
    np.testing.assert_array_equal(state.agent_position, [2, 0])
    assert not bool(state.wall_map[2, 0])
    assert bool(is_valid_level(EDITOR.level(state)))


def test_agent_on_the_goal_in_the_last_cell_wraps_to_the_first() -> None:
    _, _, state = build([cell(0, 0), cell(0, 0), cell(0, 0), cell(4, 4), cell(4, 4)])
    np.testing.assert_array_equal(state.agent_position, [0, 0])
    assert not bool(state.wall_map[0, 0])
    assert bool(is_valid_level(EDITOR.level(state)))


def test_terminated_exactly_at_the_agent_step_reward_zero_never_truncated() -> None:
    # Two steps past the end (only possible without AutoReset) change nothing.
    actions = [cell(0, 1), cell(2, 2), cell(4, 0), cell(3, 3), cell(0, 0), cell(1, 1), cell(2, 3)]
    assert len(actions) == EDITOR.num_steps + 2
    _, outputs, state = build(actions)
    np.testing.assert_array_equal(outputs["terminated"], [False] * 4 + [True] * 3)
    assert not np.asarray(outputs["truncated"]).any()
    assert outputs["reward"].dtype == jnp.float32 and not np.asarray(outputs["reward"]).any()
    np.testing.assert_array_equal(outputs["obs"]["time"], [1, 2, 3, 4, 5, 5, 5])
    final = jax.tree.map(lambda leaf: leaf[4], outputs["state"])
    for after_end in (5, 6):
        jax.tree.map(np.testing.assert_array_equal, final,
                     jax.tree.map(lambda leaf, t=after_end: leaf[t], outputs["state"]))


def test_observations_show_the_grid_and_the_phase() -> None:
    actions = [cell(0, 1), cell(2, 2), cell(4, 0), cell(3, 3), cell(0, 0)]
    obs0, outputs, state = build(actions)
    space = EDITOR.observation_space()
    assert obs0["image"].dtype == jnp.uint8 and obs0["image"].shape == (5, 5, 3)
    assert obs0["time"].dtype == jnp.int32 and int(obs0["time"]) == 0
    assert not np.asarray(obs0["image"]).any()  # empty grid; goal and agent not placed
    assert bool(space.contains(obs0))
    images = np.asarray(outputs["obs"]["image"])
    assert bool(jax.vmap(space.contains)(outputs["obs"]).all())
    # Before the goal step the goal and agent channels are empty (positions are the sentinel).
    assert not images[:3, ..., 1:].any()
    np.testing.assert_array_equal(images[2, ..., 0], np.asarray(outputs["state"].wall_map[2]))
    final = images[EDITOR.num_steps - 1]
    np.testing.assert_array_equal(final[..., 0], np.asarray(state.wall_map))
    assert final[..., 1].sum() == 1 and final[3, 3, 1] == 1
    assert final[..., 2].sum() == 1 and final[0, 0, 2] == 1


def test_agent_direction_is_drawn_from_the_key() -> None:
    actions = [cell(0, 1), cell(2, 2), cell(4, 0), cell(3, 3), cell(0, 0)]
    directions = {int(build(actions, seed=seed)[2].agent_direction) for seed in range(24)}
    assert directions == {0, 1, 2, 3}


@pytest.mark.slow
def test_random_action_sequences_always_build_valid_levels() -> None:
    """A vmapped batch of random sequences; half draw from a few cells only, so the goal and
    agent collide with walls and with each other often."""
    run = run_editor(EDITOR)
    batch = 512
    wide_key, narrow_key, run_key = jax.random.split(jax.random.key(3), 3)
    wide = jax.random.randint(wide_key, (batch // 2, EDITOR.num_steps), 0, 25)
    narrow = jax.random.randint(narrow_key, (batch // 2, EDITOR.num_steps), 23, 25)
    actions = jnp.concatenate([wide, narrow]).astype(jnp.int32)
    _, outputs, states = jax.vmap(run)(jax.random.split(run_key, batch), actions)
    levels = jax.vmap(EDITOR.level)(states)
    assert bool(jax.jit(jax.vmap(is_valid_level))(levels).all())
    assert np.asarray(outputs["terminated"])[:, -1].all()
    agent_on_goal_cell = np.asarray(actions[:, -1] == actions[:, -2])
    assert agent_on_goal_cell.sum() > batch // 8  # the collision case was exercised


def test_level_is_jittable_and_feeds_the_maze() -> None:
    maze = Maze(size=5)
    _, _, state = build([cell(0, 1), cell(2, 2), cell(4, 0), cell(3, 3), cell(0, 0)])
    level = jax.jit(EDITOR.level)(state)
    _, maze_state = maze.reset_to_level(jax.random.key(0), level)
    np.testing.assert_array_equal(maze_state.agent_position, [0, 0])


def test_spaces_and_registration() -> None:
    assert EDITOR.action_space().n == 25 and EDITOR.num_steps == 5
    assert EDITOR.observation_space()["time"].n == 6
    assert EDITOR.default_params == MazeEditorParams()
    editor, params = jaxrl_suite.make("maze-editor", wrappers=False)
    assert isinstance(editor, MazeEditor) and editor.shape == (13, 13)
    assert editor.num_walls == 25 and editor.num_actions == 169
    assert isinstance(params, MazeEditorParams)
    assert not hasattr(params, "max_steps_in_episode")


def test_episodes_end_and_restart_under_the_default_wrappers() -> None:
    """``make``'s ``EpisodeStats(AutoReset(editor))`` over 12 steps of a 5-step editor (the
    conformance rollout is shorter than the registered editor's 27-step episode)."""
    env, params = jaxrl_suite.make(
        "maze-editor", env_kwargs={"maze": Maze(size=5), "num_walls": 3}
    )

    @jax.jit
    def rollout(key):
        reset_key, scan_key = jax.random.split(key)
        _, state0 = env.reset(reset_key, params)

        def body(state, step_key):
            action_key, env_key = jax.random.split(step_key)
            action = env.action_space(params).sample(action_key)
            obs, state, _, terminated, truncated, info = env.step(env_key, state, action, params)
            return state, (obs["time"], terminated | truncated, info["episode_length"],
                           info["final_observation"]["time"])

        return jax.lax.scan(body, state0, jax.random.split(scan_key, 12))[1]

    time, done, episode_length, final_time = (np.asarray(x) for x in rollout(jax.random.key(0)))
    np.testing.assert_array_equal(done, [False] * 4 + [True] + [False] * 4 + [True] + [False] * 2)
    np.testing.assert_array_equal(time, [1, 2, 3, 4, 0, 1, 2, 3, 4, 0, 1, 2])
    np.testing.assert_array_equal(final_time[done], [5, 5])
    np.testing.assert_array_equal(episode_length[done], [5, 5])


def test_out_of_range_action_is_refused_eagerly() -> None:
    _, state = EDITOR.reset(jax.random.key(0))
    with pytest.raises(ValueError, match="outside the action space"):
        EDITOR.step(jax.random.key(1), state, jnp.int32(25))


@pytest.mark.parametrize("num_walls", [-1, 2.5, True, "3", None])
def test_bad_num_walls_raises(num_walls) -> None:
    with pytest.raises(ValueError, match="num_walls"):
        make_editor(Maze(size=5), num_walls=num_walls)


def test_zero_walls_is_accepted_and_bad_maze_raises() -> None:
    assert make_editor(Maze(size=5), num_walls=0).num_steps == 2
    with pytest.raises(TypeError, match="Maze"):
        make_editor("maze")  # type: ignore[arg-type]
