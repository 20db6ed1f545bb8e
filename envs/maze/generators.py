"""Maze level generators and ACCEL's mutations, all jit-compiled with fixed shapes.

* ``random_walls_level``: ``num_walls`` walls on distinct random cells, then goal and agent on
  two distinct free cells (the DR generator of the DCD papers; ``num_walls`` may be traced).
* ``empty_rooms_level``: the grid split into ``rooms_per_side`` x ``rooms_per_side`` empty rooms
  by wall lines, with one random doorway in every wall between two neighbouring rooms.
* ``perfect_maze_level``: a perfect maze (every free cell reachable from every other by exactly
  one path): cells on even coordinates joined along a random spanning tree.
* ``mutate_level``: ``num_edits`` random edits, each one of add a wall, remove a wall, move the
  goal, move the agent. Every output is a valid level (agent and goal on free cells, distinct);
  solvability is not kept, as in ACCEL (the level sampler's scores decide what survives).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxrl_suite.envs.maze.level import Level

__all__ = [
    "random_walls_level",
    "empty_rooms_level",
    "perfect_maze_level",
    "place_agent_and_goal",
    "mutate_level",
    "room_wall_lines",
]


def _pick_cell(key: jax.Array, allowed: jax.Array) -> tuple[jax.Array, jax.Array]:
    """A uniformly random ``(row, column)`` among ``allowed`` cells (bool ``(H, W)``), and
    whether there was any (when none, the returned cell is meaningless)."""
    scores = jnp.where(allowed, jax.random.uniform(key, allowed.shape), -1.0)
    flat = jnp.argmax(scores.ravel())
    width = allowed.shape[1]
    return jnp.stack([flat // width, flat % width]).astype(jnp.int32), jnp.any(allowed)


def _cell_mask(shape: tuple[int, int], position: jax.Array) -> jax.Array:
    return jnp.zeros(shape, bool).at[position[0], position[1]].set(True)


def place_agent_and_goal(key: jax.Array, wall_map: jax.Array) -> Level:
    """A level on ``wall_map`` with goal and agent on two distinct random free cells and a random
    direction. ``wall_map`` must have at least two free cells."""
    goal_key, agent_key, direction_key = jax.random.split(key, 3)
    free = ~wall_map
    goal, _ = _pick_cell(goal_key, free)
    agent, _ = _pick_cell(agent_key, free & ~_cell_mask(wall_map.shape, goal))
    direction = jax.random.randint(direction_key, (), 0, 4, jnp.int32)
    return Level(wall_map, goal, agent, direction)


def random_walls_level(key: jax.Array, height: int, width: int, num_walls: Any) -> Level:
    """``num_walls`` walls on distinct uniformly random cells (clipped to ``height * width - 2``
    so agent and goal fit), goal and agent on random free cells, random direction."""
    score_key, direction_key = jax.random.split(key)
    num_cells = height * width
    scores = _distinct_scores(score_key, num_cells)
    walls = _lowest(scores, num_walls)
    # Given which cells are walls, the other cells' scores are still exchangeable, so the free
    # cells with the highest and second-highest scores are a uniformly random pair: no further
    # random draws (which cost more than the rest of the generator) are needed.
    goal = jnp.argmax(scores)
    agent = jnp.argmax(jnp.where(jnp.arange(num_cells) == goal, 0, scores))
    direction = jax.random.randint(direction_key, (), 0, 4, jnp.int32)
    return Level(
        wall_map=walls.reshape(height, width),
        goal_position=jnp.stack([goal // width, goal % width]).astype(jnp.int32),
        agent_position=jnp.stack([agent // width, agent % width]).astype(jnp.int32),
        agent_direction=direction,
    )


def _distinct_scores(key: jax.Array, num_cells: int) -> jax.Array:
    """uint32 ``(num_cells,)`` random scores, all distinct: random bits with the cell index in
    the low bits. The order of the cells is uniformly random except where the random high bits
    tie (probability under 0.1% for a 13x13 grid), which the index breaks."""
    index_bits = max(1, int(np.ceil(np.log2(num_cells))))
    high_mask = np.uint32((0xFFFFFFFF >> index_bits) << index_bits)
    bits = jax.random.bits(key, (num_cells,), jnp.uint32)
    return (bits & high_mask) | jnp.arange(num_cells, dtype=jnp.uint32)


def _lowest(scores: jax.Array, count: Any) -> jax.Array:
    """bool mask of the ``count`` (clipped to ``len(scores) - 2``) lowest of distinct scores.

    The ``count``-th lowest is found exactly by a 32-step binary search on the threshold:
    vectorised compares instead of a sort, which XLA runs on CPU about ten times slower
    (measured on 8192 13x13 levels: 12 ms against 142 ms).
    """
    count = jnp.clip(jnp.asarray(count, jnp.int32), 0, scores.shape[0] - 2)

    # Invariant: fewer than `count` scores lie below `low`, at least `count` below `high`.
    def halve(_, bounds):
        low, high = bounds
        middle = low + (high - low) // 2
        enough = jnp.sum(scores < middle) >= count
        return jnp.where(enough, low, middle), jnp.where(enough, middle, high)

    _, high = jax.lax.fori_loop(
        0, 32, halve, (jnp.uint32(0), jnp.uint32(0xFFFFFFFF))
    )
    return (scores < high) & (count > 0)


def room_wall_lines(size: int, rooms_per_side: int) -> np.ndarray:
    """Indices of the wall lines that split ``size`` cells into ``rooms_per_side`` rooms."""
    return np.array([k * (size + 1) // rooms_per_side - 1 for k in range(1, rooms_per_side)],
                    dtype=np.int32)


def _room_doorways(height: int, width: int, rooms_per_side: int) -> tuple[np.ndarray, ...]:
    """Static description of every wall segment between two neighbouring rooms: the fixed
    coordinate of the segment, the first cell of its span and the span's length, and whether the
    segment is part of a vertical wall line (fixed column) or a horizontal one (fixed row)."""
    row_lines, column_lines = room_wall_lines(height, rooms_per_side), room_wall_lines(
        width, rooms_per_side
    )

    def spans(size: int, lines: np.ndarray) -> list[tuple[int, int]]:
        edges = [-1, *lines.tolist(), size]
        return [(edges[i] + 1, edges[i + 1] - edges[i] - 1) for i in range(len(edges) - 1)]

    fixed, starts, lengths, vertical = [], [], [], []
    for column in column_lines:  # vertical lines: one doorway per row band
        for start, length in spans(height, row_lines):
            fixed.append(column), starts.append(start), lengths.append(length), vertical.append(1)
    for row in row_lines:  # horizontal lines: one doorway per column band
        for start, length in spans(width, column_lines):
            fixed.append(row), starts.append(start), lengths.append(length), vertical.append(0)
    return tuple(np.array(x, dtype=np.int32) for x in (fixed, starts, lengths, vertical))


def empty_rooms_level(key: jax.Array, height: int, width: int, rooms_per_side: int) -> Level:
    """Rooms separated by wall lines, a random doorway in each wall between neighbouring rooms
    (so every free cell is reachable), goal and agent on random free cells."""
    door_key, place_key = jax.random.split(key)
    row_lines = room_wall_lines(height, rooms_per_side)
    column_lines = room_wall_lines(width, rooms_per_side)
    wall_map = np.zeros((height, width), dtype=bool)
    wall_map[row_lines, :] = True
    wall_map[:, column_lines] = True
    wall_map = jnp.asarray(wall_map)
    if rooms_per_side > 1:
        fixed, starts, lengths, vertical = _room_doorways(height, width, rooms_per_side)
        offsets = jnp.floor(jax.random.uniform(door_key, fixed.shape) * lengths).astype(jnp.int32)
        along = starts + offsets
        rows = jnp.where(vertical == 1, along, fixed)
        columns = jnp.where(vertical == 1, fixed, along)
        wall_map = wall_map.at[rows, columns].set(False)
    return place_agent_and_goal(place_key, wall_map)


def perfect_maze_level(key: jax.Array, height: int, width: int) -> Level:
    """A perfect maze: maze cells sit on even ``(row, column)``; they are joined along the
    minimum spanning tree of random edge weights (Prim's algorithm, one cell added per
    ``fori_loop`` step), opening the odd cell between two joined cells. Goal and agent go on
    random free cells."""
    weight_key, start_key, place_key = jax.random.split(key, 3)
    rows, columns = (height + 1) // 2, (width + 1) // 2
    num_cells = rows * columns
    cell_row, cell_column = np.divmod(np.arange(num_cells), columns)
    # Edges between neighbouring maze cells, as (cell a, cell b) index pairs.
    right = [(i, i + 1) for i in range(num_cells) if cell_column[i] + 1 < columns]
    down = [(i, i + columns) for i in range(num_cells) if cell_row[i] + 1 < rows]
    edges = np.array(right + down, dtype=np.int32).reshape(-1, 2)
    weights = jax.random.uniform(weight_key, (len(edges),))
    start = jax.random.randint(start_key, (), 0, num_cells)
    visited = jnp.zeros(num_cells, bool).at[start].set(True)
    opened = jnp.zeros(len(edges), bool)

    edge_array = jnp.asarray(edges)

    def add_cell(_, carry):
        visited, opened = carry
        crossing = visited[edges[:, 0]] != visited[edges[:, 1]]
        chosen = jnp.argmin(jnp.where(crossing, weights, jnp.inf))
        visited = visited.at[edge_array[chosen]].set(True)
        return visited, opened.at[chosen].set(True)

    if num_cells > 1:
        visited, opened = jax.lax.fori_loop(0, num_cells - 1, add_cell, (visited, opened))
    wall_map = jnp.ones((height, width), bool)
    wall_map = wall_map.at[2 * cell_row, 2 * cell_column].set(False)
    # The cell between a and b is at the mean of their grid coordinates; unopened edges write
    # True (wall) there, opened ones False.
    middle_row = cell_row[edges[:, 0]] + cell_row[edges[:, 1]]
    middle_column = cell_column[edges[:, 0]] + cell_column[edges[:, 1]]
    wall_map = wall_map.at[middle_row, middle_column].set(~opened)
    return place_agent_and_goal(place_key, wall_map)


def mutate_level(key: jax.Array, level: Level, num_edits: Any) -> Level:
    """``num_edits`` random edits (ACCEL), each chosen uniformly among: add a wall on a free cell
    that holds neither agent nor goal, remove a wall, move the goal to another free cell, move
    the agent (with a new random direction) to another free cell. An edit with no cell to act on
    leaves the level unchanged. Always returns a valid level if given one."""
    shape = level.shape

    def edit(index, current: Level) -> Level:
        kind_key, cell_key, direction_key = jax.random.split(jax.random.fold_in(key, index), 3)
        kind = jax.random.randint(kind_key, (), 0, 4)
        goal_mask = _cell_mask(shape, current.goal_position)
        agent_mask = _cell_mask(shape, current.agent_position)
        free = ~current.wall_map
        # Removing a wall picks among walls; the other three edits among the empty free cells.
        allowed = jnp.where(kind == 1, current.wall_map, free & ~goal_mask & ~agent_mask)
        cell, found = _pick_cell(cell_key, allowed)
        cell_mask = _cell_mask(shape, cell) & found
        wall_map = jnp.where(kind == 0, current.wall_map | cell_mask, current.wall_map)
        wall_map = jnp.where(kind == 1, wall_map & ~cell_mask, wall_map)
        move_goal, move_agent = found & (kind == 2), found & (kind == 3)
        new_direction = jax.random.randint(direction_key, (), 0, 4, jnp.int32)
        return Level(
            wall_map=wall_map,
            goal_position=jnp.where(move_goal, cell, current.goal_position),
            agent_position=jnp.where(move_agent, cell, current.agent_position),
            agent_direction=jnp.where(move_agent, new_direction, current.agent_direction),
        )

    return jax.lax.fori_loop(0, num_edits, edit, level)
