"""Pictures of maze levels, states and rollouts, drawn with ``jnp`` so they run under ``jit``.

Every cell becomes a ``tile_size x tile_size`` square of pixels:

* free cell: black, with a thin grey grid line along its top and left edges;
* wall: grey (walls merge into solid blocks, so no grid line);
* goal: green, with the grid line;
* agent: a red triangle on its cell, pointing in its direction (0 east, 1 south, 2 west,
  3 north). Rows run downwards: row 0 is the top of the image.

The tiles are precomputed ``numpy`` arrays (one per cell kind, one triangle mask per direction)
chosen per cell by indexing, so ``render_level`` has no Python branching on traced values and
runs under ``jit`` and ``vmap`` (``tile_size`` is static: it sets the output shape). The three
``render_*`` functions are jitted already: drawn op by op, they would spend seconds dispatching
small operations.

Images are ``uint8`` arrays of shape ``(height_pixels, width_pixels, 3)`` (RGB). ``save_png`` and
``save_gif`` write them on the host with Pillow.
"""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxrl_suite.env.levels import AutoReplay
from jaxrl_suite.envs.maze.level import Level
from jaxrl_suite.envs.maze.maze import Maze, MazeState, view_offsets

__all__ = [
    "FREE_COLOUR",
    "GRID_LINE_COLOUR",
    "WALL_COLOUR",
    "GOAL_COLOUR",
    "AGENT_COLOUR",
    "PADDING_COLOUR",
    "render_level",
    "render_state",
    "render_level_grid",
    "rollout_frames",
    "random_policy",
    "save_png",
    "save_gif",
]

FREE_COLOUR = (0, 0, 0)
GRID_LINE_COLOUR = (56, 56, 56)
WALL_COLOUR = (140, 140, 140)
GOAL_COLOUR = (40, 200, 70)
AGENT_COLOUR = (230, 30, 30)
PADDING_COLOUR = (255, 255, 255)
# Cells of the agent's view move this fraction of the way to white.
VIEW_HIGHLIGHT = 0.3
# The triangle pointing east, as (x, y) corners in units of the tile side (y downwards); the
# other directions are this one turned by quarter turns, so all four have exactly one shape.
_EAST_TRIANGLE = ((0.12, 0.19), (0.88, 0.5), (0.12, 0.81))
_FREE, _WALL, _GOAL = 0, 1, 2


def _check_tile_size(tile_size: Any, where: str) -> int:
    if isinstance(tile_size, bool) or not isinstance(tile_size, (int, np.integer)) or (
        tile_size < 4
    ):
        raise ValueError(f"{where}: tile_size must be an integer >= 4 (pixels per cell); got "
                         f"{tile_size!r}.")
    return int(tile_size)


@functools.cache
def _cell_tiles(tile_size: int) -> np.ndarray:
    """uint8 ``(3, tile_size, tile_size, 3)``: the free, wall and goal tiles."""
    tiles = np.empty((3, tile_size, tile_size, 3), np.uint8)
    tiles[_FREE] = FREE_COLOUR
    tiles[_WALL] = WALL_COLOUR
    tiles[_GOAL] = GOAL_COLOUR
    for kind in (_FREE, _GOAL):
        tiles[kind, 0, :] = GRID_LINE_COLOUR
        tiles[kind, :, 0] = GRID_LINE_COLOUR
    return tiles


@functools.cache
def _triangle_masks(tile_size: int) -> np.ndarray:
    """bool ``(4, tile_size, tile_size)``: pixels of the agent's triangle for each direction
    (index ``[direction, row, column]``), tested at pixel centres."""
    centres = (np.arange(tile_size) + 0.5) / tile_size
    x, y = np.meshgrid(centres, centres)  # x: column, y: row, both (tile_size, tile_size)
    corners = np.asarray(_EAST_TRIANGLE)
    signs = []
    for (x0, y0), (x1, y1) in zip(corners, np.roll(corners, -1, axis=0)):
        signs.append((x1 - x0) * (y - y0) - (y1 - y0) * (x - x0))
    signs = np.stack(signs)
    east = np.all(signs >= 0, axis=0) | np.all(signs <= 0, axis=0)
    # np.rot90 with k = -d turns the image d quarter turns clockwise: east -> south -> west ...
    return np.stack([np.rot90(east, k=-direction) for direction in range(4)])


def _tiles_to_image(pixels: jax.Array) -> jax.Array:
    """``(H, W, t, t, 3)`` tiles to the ``(H * t, W * t, 3)`` image."""
    height, width, tile_size, _, channels = pixels.shape
    return pixels.transpose(0, 2, 1, 3, 4).reshape(height * tile_size, width * tile_size,
                                                   channels)


def _draw(level: Level, tile_size: int, highlight: jax.Array | None) -> jax.Array:
    """The image of ``level``; cells where ``highlight`` (bool ``(H, W)``) is True brightened."""
    tile_size = _check_tile_size(tile_size, "render_level")
    wall_map = jnp.asarray(level.wall_map, bool)
    if wall_map.ndim != 2:
        raise ValueError(
            f"render_level draws one level (wall_map of 2 axes); got wall_map of shape "
            f"{wall_map.shape}. Use render_level_grid for a batch, or jax.vmap(render_level)."
        )
    height, width = wall_map.shape
    rows = jnp.arange(height)[:, None]
    columns = jnp.arange(width)[None, :]
    goal, agent = level.goal_position, level.agent_position
    is_goal = (rows == goal[0]) & (columns == goal[1])
    is_agent = (rows == agent[0]) & (columns == agent[1])
    cell_kind = jnp.where(wall_map, _WALL, jnp.where(is_goal, _GOAL, _FREE))
    pixels = jnp.asarray(_cell_tiles(tile_size))[cell_kind]  # (H, W, t, t, 3)
    if highlight is not None:
        # Brighten before drawing the agent, so the agent stays the same red everywhere.
        brighter = pixels + VIEW_HIGHLIGHT * (255.0 - pixels)
        pixels = jnp.where(highlight[:, :, None, None, None], jnp.round(brighter), pixels)
        pixels = pixels.astype(jnp.uint8)
    triangle = jnp.asarray(_triangle_masks(tile_size))[jnp.asarray(level.agent_direction) % 4]
    agent_pixels = is_agent[:, :, None, None] & triangle[None, None]  # (H, W, t, t)
    pixels = jnp.where(agent_pixels[..., None], jnp.asarray(AGENT_COLOUR, jnp.uint8), pixels)
    return _tiles_to_image(pixels)


@functools.partial(jax.jit, static_argnames="tile_size")
def render_level(level: Level, tile_size: int = 16) -> jax.Array:
    """RGB image of one level: uint8 ``(height * tile_size, width * tile_size, 3)``.

    The agent is drawn at ``level.agent_position`` facing ``level.agent_direction``. Jitted, with
    ``tile_size`` static (op by op it would be many small dispatches); it also runs inside a
    caller's ``jit``, and ``vmap`` over a batch of levels gives a batch of images.
    """
    return _draw(level, tile_size, highlight=None)


def _view_mask(env: Maze, state: MazeState) -> jax.Array:
    """bool ``(H, W)``: the cells inside the agent's egocentric view (``Maze.view_size``)."""
    height, width = state.level.wall_map.shape
    offsets = jnp.asarray(view_offsets(env.view_size))[state.agent_direction % 4]
    cells = (state.agent_position + offsets).reshape(-1, 2)  # (view_size ** 2, 2)
    rows = jnp.arange(height)[:, None, None]
    columns = jnp.arange(width)[None, :, None]
    # Cells outside the grid match no (row, column) here, so they drop out by themselves.
    return jnp.any((rows == cells[:, 0]) & (columns == cells[:, 1]), axis=-1)


@functools.partial(jax.jit, static_argnames=("env", "tile_size", "show_view"))
def render_state(
    env: Maze, state: MazeState, tile_size: int = 16, show_view: bool = True
) -> jax.Array:
    """RGB image of a maze state: uint8 ``(height * tile_size, width * tile_size, 3)``.

    Draws ``state.level`` with the agent where the state has it (``state.agent_position``,
    ``state.agent_direction``). With ``show_view`` and a partially observing env, the cells of the
    agent's egocentric view are brightened (a fully observing agent sees everything, so nothing
    is). ``env`` supplies the view size and observation mode. Jitted, with ``env``,
    ``tile_size`` and ``show_view`` static.
    """
    level = state.level.replace(agent_position=state.agent_position,
                                agent_direction=state.agent_direction)
    partial = getattr(env, "observation", "partial") == "partial"
    highlight = _view_mask(env, state) if show_view and partial else None
    return _draw(level, tile_size, highlight)


@functools.partial(jax.jit, static_argnames=("columns", "tile_size", "padding"))
def render_level_grid(
    levels: Level, columns: int | None = None, tile_size: int = 8, padding: int = 2
) -> jax.Array:
    """One image of a batch of levels (a stacked ``Level`` with a leading axis of ``N``), in a
    grid of ``columns`` (default ``ceil(sqrt(N))``) by ``ceil(N / columns)`` rows, left to right
    then top to bottom, separated and framed by ``padding`` white pixels.

    Returns uint8 ``(rows * (H * tile_size + padding) + padding,
    columns * (W * tile_size + padding) + padding, 3)``; unused grid places stay white.
    Jitted, with ``columns``, ``tile_size`` and ``padding`` static.
    """
    wall_map = levels.wall_map
    if wall_map.ndim != 3:
        raise ValueError(
            f"render_level_grid draws a batch of levels (wall_map of 3 axes: batch, height, "
            f"width); got wall_map of shape {tuple(wall_map.shape)}. Use render_level for one."
        )
    num_levels = wall_map.shape[0]
    if num_levels < 1:
        raise ValueError("render_level_grid needs at least one level; got an empty batch.")
    if columns is None:
        columns = math.ceil(math.sqrt(num_levels))
    if isinstance(columns, bool) or not isinstance(columns, (int, np.integer)) or columns < 1:
        raise ValueError(f"render_level_grid: columns must be a positive integer; got "
                         f"{columns!r}.")
    if isinstance(padding, bool) or not isinstance(padding, (int, np.integer)) or padding < 0:
        raise ValueError(f"render_level_grid: padding must be an integer >= 0; got "
                         f"{padding!r}.")
    columns = min(int(columns), num_levels)
    rows = math.ceil(num_levels / columns)
    images = jax.vmap(functools.partial(render_level, tile_size=tile_size))(levels)
    _, image_height, image_width, _ = images.shape
    background = jnp.asarray(PADDING_COLOUR, jnp.uint8)
    # Empty places at the end, then padding below and right of each image; the frame's top and
    # left padding is added once to the whole grid.
    blank = jnp.broadcast_to(background, (rows * columns - num_levels, *images.shape[1:]))
    images = jnp.concatenate([images, blank])
    cell_height, cell_width = image_height + padding, image_width + padding
    cells = jnp.broadcast_to(background, (rows * columns, cell_height, cell_width, 3))
    cells = cells.at[:, :image_height, :image_width].set(images)
    grid = cells.reshape(rows, columns, cell_height, cell_width, 3).transpose(0, 2, 1, 3, 4)
    grid = grid.reshape(rows * cell_height, columns * cell_width, 3)
    framed = jnp.broadcast_to(background, (rows * cell_height + padding,
                                           columns * cell_width + padding, 3))
    return framed.at[padding:, padding:].set(grid)


# --- rollouts -----------------------------------------------------------------------------------
@functools.cache
def random_policy(num_actions: int) -> Callable[[jax.Array, Any], jax.Array]:
    """A policy ``(key, obs) -> action`` choosing uniformly among ``num_actions`` actions.

    Cached, so the same ``num_actions`` gives the same function and a jitted rollout using it
    compiles once."""

    def policy(key: jax.Array, obs: Any) -> jax.Array:
        return jax.random.randint(key, (), 0, num_actions, jnp.int32)

    return policy


@functools.partial(jax.jit, static_argnames=("env", "policy_fn", "num_steps", "tile_size",
                                              "show_view"))
def _rollout_frames(env, params, level, policy_fn, key, num_steps, tile_size, show_view):
    replay = AutoReplay(env)
    reset_key, steps_key = jax.random.split(key)
    obs, state = replay.reset_to_level(reset_key, level, params)

    def one_step(carry, step_key):
        obs, state = carry
        policy_key, env_key = jax.random.split(step_key)
        action = policy_fn(policy_key, obs)
        obs, state, *_ = replay.step_env(env_key, state, action, params)
        return (obs, state), render_state(env, state, tile_size, show_view)

    first = render_state(env, state, tile_size, show_view)
    _, frames = jax.lax.scan(one_step, (obs, state), jax.random.split(steps_key, num_steps))
    return jnp.concatenate([first[None], frames])


def rollout_frames(
    env: Maze,
    params: Any,
    level: Level,
    policy_fn: Callable[[jax.Array, Any], jax.Array],
    key: jax.Array,
    num_steps: int,
    tile_size: int = 16,
    show_view: bool = True,
) -> jax.Array:
    """Frames of ``policy_fn`` playing ``level`` for ``num_steps`` steps, replaying the level
    when an episode ends (``AutoReplay``): uint8 ``(num_steps + 1, H * tile_size,
    W * tile_size, 3)``, the start state first.

    ``env`` is an unwrapped ``Maze`` of the level's size (its states are what gets drawn);
    ``params`` its ``MazeParams`` (``None``: the defaults); ``policy_fn(key, obs) -> action``
    gets the env's observation (e.g. ``random_policy(env.num_actions)``). The rollout is one
    jitted ``lax.scan``; it compiles once per ``(env, policy_fn, num_steps, tile_size)``.
    """
    if not isinstance(env, Maze):
        raise TypeError(f"rollout_frames draws maze states and needs an unwrapped Maze; got "
                        f"{type(env).__name__}. Pass env.unwrapped or Maze(...) itself.")
    if isinstance(num_steps, bool) or not isinstance(num_steps, (int, np.integer)) or (
        num_steps < 0
    ):
        raise ValueError(f"rollout_frames: num_steps must be an integer >= 0; got "
                         f"{num_steps!r}.")
    tile_size = _check_tile_size(tile_size, "rollout_frames")
    env._check_level(level)
    params = env.resolve_params(params)
    return _rollout_frames(env, params, level, policy_fn, key, int(num_steps), tile_size,
                           bool(show_view))


# --- files --------------------------------------------------------------------------------------
def _host_image(image: Any, where: str) -> np.ndarray:
    array = np.asarray(image)
    if array.dtype != np.uint8 or array.ndim != 3 or array.shape[-1] != 3:
        raise ValueError(f"{where}: an image is uint8 (height, width, 3); got {array.dtype} of "
                         f"shape {array.shape}.")
    return array


def save_png(image: Any, path: str | os.PathLike) -> str:
    """Write one RGB image (uint8 ``(H, W, 3)``, e.g. from ``render_level``) as a PNG file.
    Returns the path written."""
    from PIL import Image  # lazily: Pillow is needed only for writing files

    Image.fromarray(_host_image(image, "save_png")).save(path, format="PNG")
    return os.fspath(path)


def save_gif(frames: Any, path: str | os.PathLike, fps: float = 8) -> str:
    """Write frames (uint8 ``(T, H, W, 3)``, e.g. from ``rollout_frames``) as a looping GIF at
    ``fps`` frames per second. Returns the path written."""
    from PIL import Image  # lazily: Pillow is needed only for writing files

    frames = np.asarray(frames)
    if frames.ndim != 4 or len(frames) == 0:
        raise ValueError(f"save_gif: frames are uint8 (T, height, width, 3) with T >= 1; got "
                         f"shape {frames.shape}.")
    if not fps > 0:
        raise ValueError(f"save_gif: fps must be positive; got {fps!r}.")
    images = [Image.fromarray(_host_image(frame, "save_gif")) for frame in frames]
    images[0].save(path, format="GIF", save_all=True, append_images=images[1:],
                   duration=round(1000 / fps), loop=0)
    return os.fspath(path)


# --- the render hook of `jaxrl render` (registered with the maze ids) -------------------------
def _request_levels(request: Any, key: jax.Array) -> tuple[Maze, Any, str]:
    """``(env, level or stacked levels, description)`` for a ``RenderRequest``."""
    from jaxrl_suite.env.registry import env_spec
    from jaxrl_suite.envs.maze.named import load_level

    if request.level is not None:
        level = load_level(request.level)
        height, width = level.shape
        if request.size is not None and (request.size, request.size) != (height, width):
            raise ValueError(f"jaxrl render: level {request.level!r} is {height}x{width}; "
                             f"--size {request.size} does not apply to a named level.")
        # A named level may be larger than the default 13x13: the env takes the level's shape.
        return (Maze(height=height, width=width), level,
                f"level {request.level} ({height}x{width})")
    size = 13 if request.size is None else request.size
    generator = (request.generator if request.generator is not None
                 else env_spec(request.env_id).kwargs.get("generator", "random_walls"))
    env = Maze(size, generator=generator)
    params = env.default_params
    if request.num_levels > 1:
        keys = jax.random.split(key, request.num_levels)
        # Jitted: op-by-op, the perfect-maze generator's loops take seconds to dispatch.
        levels = jax.jit(jax.vmap(env.sample_level, in_axes=(0, None)))(keys, params)
        what = f"{request.num_levels} levels"
    else:
        levels = jax.jit(env.sample_level)(key, params)
        what = "a level"
    return env, levels, f"{what} from {generator} ({size}x{size}, seed {request.seed})"


def render_request(request: Any) -> str:
    """Draw what a ``jaxrl_suite.env.registry.RenderRequest`` asks for a maze id (a named level, a
    generated level, a grid of them, or a random-policy rollout GIF) into ``request.output``.
    Returns a one-line description."""
    grid = request.num_levels > 1
    if grid and (request.level is not None or request.rollout_steps is not None):
        raise ValueError("jaxrl render: --num-levels N > 1 draws a grid of N generated levels; "
                         "it does not combine with --level or --rollout-steps.")
    level_key, rollout_key = jax.random.split(jax.random.key(request.seed))
    env, levels, description = _request_levels(request, level_key)
    tile_size = request.tile_size if request.tile_size is not None else (8 if grid else 16)
    if request.rollout_steps is not None:
        frames = rollout_frames(env, env.default_params, levels, random_policy(env.num_actions),
                                rollout_key, request.rollout_steps, tile_size)
        save_gif(frames, request.output)
        return (f"{frames.shape[2]}x{frames.shape[1]} pixels, {frames.shape[0]} frames of a "
                f"random-policy rollout on {description}")
    image = (render_level_grid(levels, tile_size=tile_size) if grid
             else render_level(levels, tile_size))
    save_png(image, request.output)
    return f"{image.shape[1]}x{image.shape[0]} pixels, {description}"
