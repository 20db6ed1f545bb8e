"""The maze ``Level`` pytree, its text form, validity, and shortest paths by BFS inside ``jit``.

Coordinates are ``(row, column)`` with row 0 at the top. Directions are MiniGrid's indices:
0 east (column + 1), 1 south (row + 1), 2 west, 3 north; turning right adds 1 (mod 4).
The grid's border is not part of the level: outside the grid counts as wall.

Text form (one character per cell, one line per row)::

    #  wall            .  free cell          G  goal
    >  agent facing east     v  south     <  west     ^  north
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

__all__ = [
    "Level",
    "DIRECTION_VECTORS",
    "AGENT_CHARACTERS",
    "level_from_text",
    "level_to_text",
    "is_valid_level",
    "distance_to_goal",
    "shortest_path_length",
    "optimal_num_steps",
    "is_solvable",
    "optimal_return",
    "stack_levels",
    "pad_level",
]

# (row, column) step of each direction: east, south, west, north.
DIRECTION_VECTORS = np.array([(0, 1), (1, 0), (0, -1), (-1, 0)], dtype=np.int32)
AGENT_CHARACTERS = ">v<^"


@struct.dataclass
class Level:
    """One maze level. Fixed shapes, so a batch of levels is a stacked ``Level``.

    Attributes:
      wall_map: bool ``(height, width)``; True where there is a wall.
      goal_position: int32 ``(2,)``, the goal's ``(row, column)``.
      agent_position: int32 ``(2,)``, the agent's start ``(row, column)``.
      agent_direction: int32 ``()``, the start direction (0 east, 1 south, 2 west, 3 north).
    """

    wall_map: jax.Array
    goal_position: jax.Array
    agent_position: jax.Array
    agent_direction: jax.Array

    @property
    def shape(self) -> tuple[int, int]:
        """``(height, width)`` of one level (the last two axes of ``wall_map``)."""
        return tuple(self.wall_map.shape[-2:])


def level_from_text(text: str, name: str = "level") -> Level:
    """Parse the text form (module docstring) into a ``Level``; leading/trailing blank lines and
    surrounding whitespace of each line are ignored. Raises ``ValueError`` naming the problem."""
    rows = [line.strip() for line in text.strip().splitlines() if line.strip()]
    if not rows:
        raise ValueError(f"{name}: the level text is empty.")
    width = len(rows[0])
    for number, row in enumerate(rows):
        if len(row) != width:
            raise ValueError(
                f"{name}: row {number} has {len(row)} cells, row 0 has {width}; every row of a "
                f"level needs the same width."
            )
    wall_map = np.zeros((len(rows), width), dtype=bool)
    goals, agents = [], []
    for r, row in enumerate(rows):
        for c, character in enumerate(row):
            if character == "#":
                wall_map[r, c] = True
            elif character == "G":
                goals.append((r, c))
            elif character in AGENT_CHARACTERS:
                agents.append((r, c, AGENT_CHARACTERS.index(character)))
            elif character != ".":
                raise ValueError(
                    f"{name}: unknown character {character!r} at row {r}, column {c}; accepted: "
                    f"'#' wall, '.' free, 'G' goal, '>' 'v' '<' '^' agent."
                )
    if len(goals) != 1 or len(agents) != 1:
        raise ValueError(
            f"{name}: a level needs exactly one goal 'G' and one agent ('>', 'v', '<' or '^'); "
            f"found {len(goals)} goal(s) and {len(agents)} agent(s)."
        )
    (agent_row, agent_column, direction) = agents[0]
    return Level(
        wall_map=jnp.asarray(wall_map),
        goal_position=jnp.asarray(goals[0], jnp.int32),
        agent_position=jnp.asarray((agent_row, agent_column), jnp.int32),
        agent_direction=jnp.asarray(direction, jnp.int32),
    )


def level_to_text(level: Level) -> str:
    """The text form of one (unbatched) level."""
    wall_map = np.asarray(level.wall_map)
    if wall_map.ndim != 2:
        raise ValueError(
            f"level_to_text takes one level (wall_map of 2 axes); got wall_map of shape "
            f"{wall_map.shape}. Index a batch first, e.g. jax.tree.map(lambda x: x[0], levels)."
        )
    grid = np.where(wall_map, "#", ".").astype("<U1")
    goal_row, goal_column = np.asarray(level.goal_position)
    agent_row, agent_column = np.asarray(level.agent_position)
    grid[goal_row, goal_column] = "G"
    grid[agent_row, agent_column] = AGENT_CHARACTERS[int(level.agent_direction) % 4]
    return "\n".join("".join(row) for row in grid)


def _inside(position: jax.Array, shape: tuple[int, int]) -> jax.Array:
    return jnp.all((position >= 0) & (position < jnp.asarray(shape)))


def is_valid_level(level: Level) -> jax.Array:
    """Bool scalar: agent and goal inside the grid, on free cells, distinct; direction in 0..3."""
    shape = level.shape
    agent, goal = level.agent_position, level.goal_position
    inside = _inside(agent, shape) & _inside(goal, shape)
    agent_cell = level.wall_map[tuple(jnp.clip(agent, 0, jnp.asarray(shape) - 1))]
    goal_cell = level.wall_map[tuple(jnp.clip(goal, 0, jnp.asarray(shape) - 1))]
    distinct = jnp.any(agent != goal)
    direction_ok = (level.agent_direction >= 0) & (level.agent_direction < 4)
    return inside & ~agent_cell & ~goal_cell & distinct & direction_ok


def _unreachable(shape: tuple[int, ...]) -> int:
    """A distance larger than any path on the grid: the 'unreachable' marker inside BFS."""
    return int(np.prod(shape)) * 4 + 1


def _shift(values: jax.Array, row_step: int, column_step: int, fill: int) -> jax.Array:
    """``out[r, c] = values[r + row_step, c + column_step]`` (``fill`` outside the grid)."""
    padded = jnp.pad(values, ((1, 1), (1, 1)), constant_values=fill)
    height, width = values.shape
    return padded[1 + row_step : 1 + row_step + height, 1 + column_step : 1 + column_step + width]


def distance_to_goal(level: Level) -> jax.Array:
    """int32 ``(height, width)``: moves from each free cell to the goal (4-neighbour BFS,
    ignoring turns); ``height * width * 4 + 1`` for walls and cells that cannot reach it.

    BFS as repeated relaxation in a ``while_loop`` until nothing changes, so it runs inside
    ``jit`` and ``vmap`` (the loop runs as long as the longest path of the batch).
    """
    infinity = _unreachable(level.shape)
    free = ~level.wall_map
    start = jnp.full(level.shape, infinity, jnp.int32)
    start = start.at[level.goal_position[0], level.goal_position[1]].set(0)

    def relax(state):
        distance, _ = state
        neighbours = jnp.minimum(
            jnp.minimum(_shift(distance, 0, 1, infinity), _shift(distance, 0, -1, infinity)),
            jnp.minimum(_shift(distance, 1, 0, infinity), _shift(distance, -1, 0, infinity)),
        )
        relaxed = jnp.where(free, jnp.minimum(distance, neighbours + 1), infinity)
        relaxed = jnp.minimum(relaxed, infinity)
        return relaxed, jnp.any(relaxed != distance)

    distance, _ = jax.lax.while_loop(lambda s: s[1], relax, (start, jnp.asarray(True)))
    return distance


def shortest_path_length(level: Level) -> jax.Array:
    """int32 scalar: fewest forward moves from the agent's cell to the goal, turns not counted;
    -1 if the goal cannot be reached."""
    distance = distance_to_goal(level)[level.agent_position[0], level.agent_position[1]]
    return jnp.where(distance >= _unreachable(level.shape), -1, distance)


def optimal_num_steps(level: Level) -> jax.Array:
    """int32 scalar: fewest actions (turns and forward moves) that take the agent from its start
    position and direction onto the goal; -1 if the goal cannot be reached.

    BFS over (direction, row, column) states by relaxation: a state's cost is one more than the
    cheapest of turning left, turning right, or moving forward (into a free cell or the goal).
    """
    height, width = level.shape
    infinity = _unreachable(level.shape)
    free = ~level.wall_map
    goal = jnp.zeros(level.shape, bool).at[level.goal_position[0], level.goal_position[1]].set(True)
    start = jnp.where(goal, 0, infinity)[None].repeat(4, axis=0).astype(jnp.int32)

    def relax(state):
        cost, _ = state
        ahead = jnp.stack([
            _shift(cost[d], int(DIRECTION_VECTORS[d, 0]), int(DIRECTION_VECTORS[d, 1]), infinity)
            for d in range(4)
        ])
        turned = jnp.minimum(jnp.roll(cost, 1, axis=0), jnp.roll(cost, -1, axis=0))
        best = jnp.minimum(ahead, turned) + 1
        relaxed = jnp.where(goal, 0, jnp.where(free, jnp.minimum(cost, best), infinity))
        relaxed = jnp.minimum(relaxed, infinity)
        return relaxed, jnp.any(relaxed != cost)

    cost, _ = jax.lax.while_loop(lambda s: s[1], relax, (start, jnp.asarray(True)))
    steps = cost[level.agent_direction, level.agent_position[0], level.agent_position[1]]
    return jnp.where(steps >= infinity, -1, steps)


def is_solvable(level: Level) -> jax.Array:
    """Bool scalar: the goal can be reached from the agent's start."""
    return shortest_path_length(level) >= 0


def optimal_return(level: Level, max_steps_in_episode: Any) -> jax.Array:
    """float32 scalar: the return of an optimal policy, ``1 - 0.9 * n / T`` with ``n`` the fewest
    actions to the goal and ``T`` the episode limit; 0 if unsolvable or ``n > T``."""
    steps = optimal_num_steps(level)
    reachable = (steps > 0) & (steps <= max_steps_in_episode)
    value = 1.0 - 0.9 * steps / max_steps_in_episode
    return jnp.where(reachable, value, 0.0).astype(jnp.float32)


def stack_levels(levels: list[Level]) -> Level:
    """A batch (leading axis) from levels of one shape."""
    shapes = {level.shape for level in levels}
    if len(shapes) != 1:
        raise ValueError(
            f"stack_levels needs levels of one shape; got {sorted(shapes)}. Use pad_level to "
            f"bring smaller levels to the largest shape."
        )
    return jax.tree.map(lambda *xs: jnp.stack(xs), *levels)


def pad_level(level: Level, height: int, width: int) -> Level:
    """``level`` placed at the top left of a ``height x width`` grid, the rest filled with walls
    (so a 13x13 held-out level runs in a larger maze)."""
    old_height, old_width = level.shape
    if height < old_height or width < old_width:
        raise ValueError(
            f"pad_level cannot shrink a {old_height}x{old_width} level to {height}x{width}."
        )
    wall_map = jnp.ones((height, width), bool).at[:old_height, :old_width].set(level.wall_map)
    return level.replace(wall_map=wall_map)
