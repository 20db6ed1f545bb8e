"""Maze rendering: shapes, colours of each cell kind, the agent's triangle per direction, the view
highlight, level grids, rollout frames, a golden image, PNG/GIF files and ``jaxrl render``."""

from __future__ import annotations

import functools
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrl_suite import cli
from jaxrl_suite.envs.maze import (
    Level,
    Maze,
    level_from_text,
    load_level,
    named_level_names,
    stack_levels,
)
from jaxrl_suite.envs.maze.level import DIRECTION_VECTORS
from jaxrl_suite.envs.maze.render import (
    AGENT_COLOUR,
    FREE_COLOUR,
    GOAL_COLOUR,
    GRID_LINE_COLOUR,
    PADDING_COLOUR,
    WALL_COLOUR,
    random_policy,
    render_level,
    render_level_grid,
    render_state,
    rollout_frames,
    save_gif,
    save_png,
)

GOLDEN = Path(__file__).parent / "golden" / "maze_level.png"
# The golden level: every cell kind, walls touching the border, the agent facing north.
GOLDEN_LEVEL_TEXT = """
#....#
.#.#G.
.#^#..
...##.
"""
SMALL_LEVEL_TEXT = """
#..G
.>..
..#.
"""



def small_level(direction: int = 0) -> Level:
    level = level_from_text(SMALL_LEVEL_TEXT)
    return level.replace(agent_direction=jnp.asarray(direction, jnp.int32))


def tile(image: np.ndarray, row: int, column: int, tile_size: int) -> np.ndarray:
    """The ``(tile_size, tile_size, 3)`` pixels of cell ``(row, column)``."""
    return np.asarray(image)[row * tile_size:(row + 1) * tile_size,
                             column * tile_size:(column + 1) * tile_size]


def is_colour(pixels: np.ndarray, colour: tuple[int, int, int]) -> np.ndarray:
    return np.all(pixels == np.asarray(colour, np.uint8), axis=-1)


@functools.cache
def small_env(observation: str = "partial") -> Maze:
    return Maze(height=3, width=4, view_size=3, observation=observation)


# --- shapes -------------------------------------------------------------------------------------
def test_output_shapes_and_dtype():
    level = small_level()
    image = render_level(level, tile_size=8)
    assert image.shape == (24, 32, 3) and image.dtype == jnp.uint8
    env = small_env()
    _, state = env.reset_to_level(jax.random.key(0), level)
    frame = render_state(env, state, tile_size=8)
    assert frame.shape == (24, 32, 3) and frame.dtype == jnp.uint8
    levels = stack_levels([small_level(d) for d in range(4)] + [small_level(0)])
    # 5 levels: 3 columns by default (ceil(sqrt(5))), so 2 rows; 24x32 images, 2 px padding.
    grid = render_level_grid(levels, tile_size=8, padding=2)
    assert grid.shape == (2 * 26 + 2, 3 * 34 + 2, 3) and grid.dtype == jnp.uint8
    grid = render_level_grid(levels, columns=5, tile_size=8, padding=2)
    assert grid.shape == (26 + 2, 5 * 34 + 2, 3)


# --- pixels -------------------------------------------------------------------------------------
def test_cell_colours_on_a_hand_built_level():
    tile_size = 8
    image = np.asarray(render_level(small_level(), tile_size=tile_size))
    assert is_colour(tile(image, 0, 0, tile_size), WALL_COLOUR).all()
    assert is_colour(tile(image, 2, 2, tile_size), WALL_COLOUR).all()
    goal = tile(image, 0, 3, tile_size)
    assert is_colour(goal[1:, 1:], GOAL_COLOUR).all()
    free = tile(image, 2, 0, tile_size)
    assert is_colour(free[1:, 1:], FREE_COLOUR).all()
    # Thin grid lines along the top and left edges of free and goal cells.
    for cell in (free, goal):
        assert is_colour(cell[0], GRID_LINE_COLOUR).all()
        assert is_colour(cell[:, 0], GRID_LINE_COLOUR).all()
    # Red appears on the agent's cell (1, 1) only.
    red = is_colour(image, AGENT_COLOUR)
    assert red.any() and red.sum() == is_colour(tile(image, 1, 1, tile_size), AGENT_COLOUR).sum()


@pytest.mark.parametrize("direction", [0, 1, 2, 3])
def test_agent_triangle_points_in_its_direction(direction):
    tile_size = 16
    image = render_level(small_level(direction), tile_size=tile_size)
    red = is_colour(tile(image, 1, 1, tile_size), AGENT_COLOUR)  # (16, 16): [row, column]
    forward = DIRECTION_VECTORS[direction]  # (row, column) step
    right_hand = DIRECTION_VECTORS[(direction + 1) % 4]
    centre = (tile_size - 1) / 2  # 7.5: half-integer offsets below land on pixel indices

    def pixel(ahead: float, right: float) -> bool:
        row, column = centre + ahead * forward + right * right_hand
        return bool(red[int(row), int(column)])

    # The tip is in the forward half on the centre line; the forward corners are empty.
    assert pixel(3.5, -0.5) and pixel(3.5, 0.5)
    assert not pixel(3.5, -5.5) and not pixel(3.5, 5.5)
    # The base is wide, in the backward half.
    assert pixel(-4.5, -3.5) and pixel(-4.5, 3.5)
    # Nothing behind the base, and the forward half holds red pixels.
    assert not pixel(-7.5, 0.5)
    ahead_of_centre = ((np.indices(red.shape).T - centre) @ forward).T > 0
    assert red[ahead_of_centre].any()


def test_render_state_brightens_the_agents_view():
    tile_size = 8
    env = small_env()
    _, state = env.reset_to_level(jax.random.key(0), small_level())
    image = np.asarray(render_state(env, state, tile_size=tile_size))
    # The agent at (1, 1) faces east with a 3x3 view: columns 1..3 of every row are seen.
    assert is_colour(tile(image, 0, 0, tile_size), WALL_COLOUR).all()  # outside the view
    assert is_colour(tile(image, 2, 0, tile_size)[1:, 1:], FREE_COLOUR).all()
    seen_free = tile(image, 2, 1, tile_size)[1:, 1:]
    assert (seen_free > 0).all() and (seen_free == seen_free[0, 0]).all()
    seen_wall = tile(image, 2, 2, tile_size)
    assert (seen_wall > np.asarray(WALL_COLOUR)).all()
    assert (tile(image, 0, 3, tile_size)[1:, 1:, 1] > GOAL_COLOUR[1]).all()
    # The agent keeps its colour; without the view the picture is render_level's.
    assert is_colour(tile(image, 1, 1, tile_size), AGENT_COLOUR).any()
    plain = render_state(env, state, tile_size=tile_size, show_view=False)
    np.testing.assert_array_equal(plain, render_level(small_level(), tile_size=tile_size))
    full_env = small_env("full")
    _, full_state = full_env.reset_to_level(jax.random.key(0), small_level())
    np.testing.assert_array_equal(render_state(full_env, full_state, tile_size=tile_size),
                                  plain)


def test_render_state_draws_the_agent_where_the_state_has_it():
    env = small_env()
    _, state = env.reset_to_level(jax.random.key(0), small_level())
    moved = state.replace(agent_position=jnp.asarray([2, 3], jnp.int32),
                          agent_direction=jnp.asarray(3, jnp.int32))
    image = np.asarray(render_state(env, moved, tile_size=8, show_view=False))
    assert is_colour(tile(image, 2, 3, 8), AGENT_COLOUR).any()
    assert not is_colour(tile(image, 1, 1, 8), AGENT_COLOUR).any()


def test_level_grid_places_levels_in_reading_order():
    levels = stack_levels([small_level(d) for d in range(3)])
    grid = np.asarray(render_level_grid(levels, columns=2, tile_size=8, padding=2))
    assert grid.shape == (2 * 26 + 2, 2 * 34 + 2, 3)
    for index in range(3):
        row, column = divmod(index, 2)
        top, left = 2 + row * 26, 2 + column * 34
        np.testing.assert_array_equal(grid[top:top + 24, left:left + 32],
                                      render_level(small_level(index), tile_size=8))
    assert is_colour(grid[28:52, 36:68], PADDING_COLOUR).all()  # the unused fourth place
    assert is_colour(grid[:2], PADDING_COLOUR).all() and is_colour(grid[:, 34:36],
                                                                    PADDING_COLOUR).all()


def test_golden_image():
    from PIL import Image

    level = level_from_text(GOLDEN_LEVEL_TEXT)
    expected = np.asarray(Image.open(GOLDEN).convert("RGB"))
    np.testing.assert_array_equal(np.asarray(render_level(level, tile_size=8)), expected)


# --- jit and vmap -------------------------------------------------------------------------------
def test_jit_and_vmap_agree_with_single_renders():
    levels = stack_levels([small_level(d) for d in range(4)])
    batch = jax.jit(jax.vmap(functools.partial(render_level, tile_size=8)))(levels)
    assert batch.shape == (4, 24, 32, 3)
    for direction in range(4):
        np.testing.assert_array_equal(batch[direction],
                                      render_level(small_level(direction), tile_size=8))
    assert len({np.asarray(image).tobytes() for image in batch}) == 4
    # Op by op (jit disabled) the same pixels come out.
    with jax.disable_jit():
        np.testing.assert_array_equal(render_level(small_level(2), tile_size=8), batch[2])


def test_bad_inputs_are_clear_errors():
    with pytest.raises(ValueError, match="tile_size"):
        render_level(small_level(), tile_size=2)
    with pytest.raises(ValueError, match="render_level_grid"):
        render_level(stack_levels([small_level(), small_level()]))
    with pytest.raises(ValueError, match="batch"):
        render_level_grid(small_level())
    with pytest.raises(ValueError, match="uint8"):
        save_png(np.zeros((4, 4, 3), np.float32), "unused.png")
    with pytest.raises(TypeError, match="unwrapped Maze"):
        rollout_frames(object(), None, small_level(), random_policy(3), jax.random.key(0), 3)


# --- rollouts and files -------------------------------------------------------------------------
def test_rollout_frames_start_from_the_level_and_move(tmp_path):
    from PIL import Image

    env = small_env()
    level = small_level()
    frames = rollout_frames(env, None, level, random_policy(env.num_actions), jax.random.key(3),
                            num_steps=12, tile_size=8)
    assert frames.shape == (13, 24, 32, 3) and frames.dtype == jnp.uint8
    _, state = env.reset_to_level(jax.random.key(0), level)
    np.testing.assert_array_equal(frames[0], render_state(env, state, tile_size=8))
    assert len({np.asarray(frame).tobytes() for frame in frames}) > 1  # the agent acted
    path = save_gif(frames, tmp_path / "rollout.gif", fps=10)
    with Image.open(path) as gif:
        assert gif.size == (32, 24) and gif.n_frames >= 2
        gif.seek(0)
        np.testing.assert_array_equal(np.asarray(gif.convert("RGB")), frames[0])


def test_save_png_round_trips(tmp_path):
    from PIL import Image

    image = np.asarray(render_level(small_level(), tile_size=8))
    path = save_png(image, tmp_path / "level.png")
    with Image.open(path) as written:
        np.testing.assert_array_equal(np.asarray(written.convert("RGB")), image)


# --- the jaxrl render command -------------------------------------------------------------------
def cli_level_name() -> str:
    """A named level to draw: Labyrinth (a DCD held-out maze), else the first one shipped."""
    names = named_level_names()
    assert names, "no named maze levels are shipped in envs/maze/levels/"
    return "Labyrinth" if "Labyrinth" in names else names[0]


def test_cli_renders_a_named_level(tmp_path, capsys):
    from PIL import Image

    name = cli_level_name()
    height, width = load_level(name).shape
    output = tmp_path / "x.png"
    assert cli.main(["render", "maze", "--level", name, str(output)]) == 0
    with Image.open(output) as image:
        assert image.format == "PNG" and image.size == (width * 16, height * 16)
    out = capsys.readouterr().out
    assert str(output) in out and f"{width * 16}x{height * 16} pixels" in out


def test_cli_writes_a_rollout_gif_and_a_level_grid(tmp_path, capsys):
    from PIL import Image

    name = cli_level_name()
    height, width = load_level(name).shape
    gif = tmp_path / "rollout.gif"
    assert cli.main(["render", "maze", "--level", name, "--rollout-steps", "5",
                     "--tile-size", "8", str(gif)]) == 0
    with Image.open(gif) as image:
        assert image.format == "GIF" and image.size == (width * 8, height * 8)
    assert "6 frames" in capsys.readouterr().out
    grid = tmp_path / "grid.png"
    assert cli.main(["render", "maze", "--num-levels", "4", "--size", "7", "--seed", "1",
                     str(grid)]) == 0
    with Image.open(grid) as image:
        assert image.size == (2 * (7 * 8 + 2) + 2, 2 * (7 * 8 + 2) + 2)


def test_cli_refuses_unknown_levels_envs_and_outputs(tmp_path, capsys):
    output = str(tmp_path / "x.png")
    assert cli.main(["render", "maze", "--level", "NoSuchLevel", output]) == 2
    assert "No maze level named 'NoSuchLevel'" in capsys.readouterr().err
    assert cli.main(["render", "cartpole", output]) == 2
    error = capsys.readouterr().err
    assert "Envs that can be drawn; accepted: " in error
    assert "maze, maze-full" in error and "gridworld," in error
    assert cli.main(["render", "maze", str(tmp_path / "x.gif")]) == 2
    assert "--rollout-steps" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())
