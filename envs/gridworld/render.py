"""Pictures of grid worlds: a level (walls, start, objects coloured by type) as an RGB image,
a grid of levels, and the ``jaxrl render`` hook of the ``gridworld`` ids."""

from __future__ import annotations

from typing import Any

import jax
import numpy as np

from jaxrl_suite.envs.gridworld.gridworld import GridLevel, GridWorld
from jaxrl_suite.envs.maze.render import save_png

__all__ = ["render_level", "render_level_grid", "render_request", "save_png"]

FREE, WALL, START, BORDER = (235, 235, 235), (60, 60, 60), (40, 120, 220), (255, 255, 255)
# One colour per object type; positive and negative rewards read from the type's reward.
TYPE_COLOURS = np.array([(60, 180, 75), (230, 25, 75), (245, 130, 48), (145, 30, 180),
                         (70, 240, 240), (240, 50, 230), (188, 246, 12), (128, 128, 0)],
                        np.uint8)


def _check_tile_size(tile_size: Any) -> int:
    if isinstance(tile_size, bool) or not isinstance(tile_size, (int, np.integer)) or not (
            2 <= tile_size <= 64):
        raise ValueError(f"render_level: tile_size must be an integer in [2, 64]; got "
                         f"{tile_size!r}.")
    return int(tile_size)


def render_level(level: GridLevel, tile_size: int = 16) -> np.ndarray:
    """uint8 ``(side * tile, side * tile, 3)``: walls dark, the start a blue square, each object
    a disc of its type's colour (filled for a positive reward, a ring for a negative one)."""
    tile = _check_tile_size(tile_size)
    side = int(np.asarray(level.side))
    walls = np.asarray(level.walls)[:side, :side]
    image = np.empty((side * tile, side * tile, 3), np.uint8)
    image[:] = FREE
    for r, c in zip(*np.nonzero(walls), strict=True):
        image[r * tile:(r + 1) * tile, c * tile:(c + 1) * tile] = WALL
    yy, xx = np.mgrid[:tile, :tile]
    centre = (tile - 1) / 2
    distance = np.hypot(yy - centre, xx - centre)
    disc = distance <= tile * 0.38
    ring = disc & (distance >= tile * 0.22)
    start = np.asarray(level.start)
    margin = max(1, tile // 5)
    image[start[0] * tile + margin:(start[0] + 1) * tile - margin,
          start[1] * tile + margin:(start[1] + 1) * tile - margin] = START
    rewards = np.asarray(level.type_rewards)
    for i in range(int(np.asarray(level.num_objects))):
        r, c = np.asarray(level.object_positions)[i]
        kind = int(np.asarray(level.object_types)[i])
        mask = disc if rewards[kind] >= 0 else ring
        cell = image[r * tile:(r + 1) * tile, c * tile:(c + 1) * tile]
        cell[mask] = TYPE_COLOURS[kind % len(TYPE_COLOURS)]
    return image


def render_level_grid(levels: GridLevel, tile_size: int = 8, columns: int | None = None
                      ) -> np.ndarray:
    """A batch of levels (leading axis) side by side, padded to the largest, 2-pixel gaps."""
    count = int(np.asarray(levels.side).shape[0])
    images = [render_level(jax.tree.map(lambda x, i=i: np.asarray(x)[i], levels), tile_size)
              for i in range(count)]
    columns = columns or int(np.ceil(np.sqrt(count)))
    rows = int(np.ceil(count / columns))
    size = max(image.shape[0] for image in images)
    gap = 2
    canvas = np.empty((rows * (size + gap) - gap, columns * (size + gap) - gap, 3), np.uint8)
    canvas[:] = BORDER
    for i, image in enumerate(images):
        r, c = divmod(i, columns)
        canvas[r * (size + gap):r * (size + gap) + image.shape[0],
               c * (size + gap):c * (size + gap) + image.shape[1]] = image
    return canvas


def render_request(request: Any) -> str:
    """Draw what a ``RenderRequest`` asks of a gridworld id: a named level (``--level``), a
    level sampled from the id's distribution, or a grid of ``--num-levels`` of them."""
    from jaxrl_suite.env.registry import make
    from jaxrl_suite.envs.gridworld.named import load_level

    if request.rollout_steps is not None:
        raise ValueError("jaxrl render: grid worlds draw levels (PNG); --rollout-steps is the "
                         "maze's.")
    tile = request.tile_size if request.tile_size is not None else (
        8 if request.num_levels > 1 else 16)
    if request.level is not None:
        image = render_level(load_level(request.level), tile)
        save_png(image, request.output)
        return f"{image.shape[1]}x{image.shape[0]} pixels, named level {request.level}"
    env, params = make(request.env_id, wrappers=False)
    if not isinstance(env, GridWorld):
        raise ValueError(f"jaxrl render: {request.env_id} is not a grid world.")
    keys = jax.random.split(jax.random.key(request.seed), request.num_levels)
    levels = jax.jit(jax.vmap(env.sample_level, in_axes=(0, None)))(keys, params)
    image = (render_level_grid(levels, tile) if request.num_levels > 1
             else render_level(jax.tree.map(lambda x: x[0], levels), tile))
    save_png(image, request.output)
    return (f"{image.shape[1]}x{image.shape[0]} pixels, {request.num_levels} level(s) of "
            f"{request.env_id} (seed {request.seed})")
