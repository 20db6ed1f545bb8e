"""The maze editor: level construction as an MDP, for PAIRED's adversary (DESIGN.md section 4).

An episode builds one maze level in a fixed number of steps, ``num_walls + 2``; every action is
a cell, given as its flat index ``row * width + column`` (``Discrete(height * width)``):

* steps ``0 .. num_walls - 1`` put a wall on the chosen cell (a cell that is a wall already
  stays one, so the step does nothing);
* step ``num_walls`` puts the goal on the chosen cell, clearing any wall there;
* step ``num_walls + 1`` puts the agent on the chosen cell, clearing any wall there. If that
  cell is the goal, the agent goes on the next cell in row-major order instead (the last cell
  wraps to the first) and that cell is cleared, so the finished level is always valid. The
  agent's direction is drawn at random from this step's key. The step ends the episode
  (``terminated``).

The reward is always 0 (PAIRED's regret reward is computed by the algorithm from the students'
returns on the level) and nothing truncates the episode: its length is fixed by ``num_walls``.
``editor.level(state)`` is the level built so far, a ``Level`` (complete once terminated).

Observations are a dict of the whole grid and the step count:

* ``"image"``: uint8 ``(height, width, 3)``, one-hot channels ``(wall, goal, agent)``; the goal
  and agent channels are all zero until they are placed.
* ``"time"``: int32 ``()``, steps taken, ``0 .. num_walls + 2``: it tells the adversary which
  phase (walls, goal, agent) the next action is for.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

from jaxrl_suite.env import spaces
from jaxrl_suite.env.environment import Environment, StepOutput
from jaxrl_suite.envs.maze.level import Level
from jaxrl_suite.envs.maze.maze import Maze, check_int_at_least

__all__ = ["MazeEditor", "MazeEditorParams", "MazeEditorState", "make_editor"]

# Goal and agent position before they are placed: outside the grid, so no cell matches it.
UNPLACED = (-1, -1)


@struct.dataclass
class MazeEditorParams:
    """The editor has nothing to vary without recompiling: the episode length is the static
    ``num_walls + 2`` (so there is no ``max_steps_in_episode``)."""


@struct.dataclass
class MazeEditorState:
    """The level under construction and the steps taken.

    Attributes:
      wall_map: bool ``(height, width)``; True where a wall has been placed.
      goal_position: int32 ``(2,)``, the goal's ``(row, column)``; ``(-1, -1)`` until placed.
      agent_position: int32 ``(2,)``, the agent's ``(row, column)``; ``(-1, -1)`` until placed.
      agent_direction: int32 ``()``, 0 east, 1 south, 2 west, 3 north; 0 until placed.
      time: int32 ``()``, steps taken in this episode (``0 .. num_walls + 2``).
    """

    wall_map: jax.Array
    goal_position: jax.Array
    agent_position: jax.Array
    agent_direction: jax.Array
    time: jax.Array


class MazeEditor(Environment):
    """The maze editor (module docstring), for the grid shape of ``maze``.

    Args:
      maze: the maze whose levels are built; only its ``height`` and ``width`` are used.
        ``None``: ``Maze()``, 13 x 13.
      num_walls: wall-placing steps per episode (static: it fixes the episode length,
        ``num_walls + 2``); an integer >= 0.
    """

    def __init__(self, maze: Maze | None = None, num_walls: int = 25):
        if maze is None:
            maze = Maze()
        if not isinstance(maze, Maze):
            raise TypeError(
                f"MazeEditor: maze must be a jaxrl_suite.envs.maze.Maze (or None for Maze()); "
                f"got {type(maze).__name__}."
            )
        self.maze = maze
        self.height, self.width = maze.height, maze.width
        self.num_walls = check_int_at_least(
            "num_walls (the number of wall-placing steps)", num_walls, 0, owner="MazeEditor"
        )

    # --- spaces ---------------------------------------------------------------------------------
    @property
    def name(self) -> str:
        return "maze-editor"

    @property
    def default_params(self) -> MazeEditorParams:
        return MazeEditorParams()

    @property
    def shape(self) -> tuple[int, int]:
        """``(height, width)`` of the levels built."""
        return (self.height, self.width)

    @property
    def num_steps(self) -> int:
        """Steps per episode: ``num_walls`` walls, the goal, the agent."""
        return self.num_walls + 2

    def observation_space(self, params: Any = None) -> spaces.Dict:
        return spaces.Dict({
            "image": spaces.Box(0, 1, (self.height, self.width, 3), jnp.uint8),
            "time": spaces.Discrete(self.num_steps + 1),
        })

    def action_space(self, params: Any = None) -> spaces.Discrete:
        return spaces.Discrete(self.height * self.width)

    # --- dynamics -------------------------------------------------------------------------------
    def reset_env(
        self, key: jax.Array, params: MazeEditorParams
    ) -> tuple[dict[str, jax.Array], MazeEditorState]:
        unplaced = jnp.asarray(UNPLACED, jnp.int32)
        state = MazeEditorState(
            wall_map=jnp.zeros(self.shape, bool),
            goal_position=unplaced,
            agent_position=unplaced,
            agent_direction=jnp.zeros((), jnp.int32),
            time=jnp.zeros((), jnp.int32),
        )
        return self.observe(state), state

    def _cell(self, flat_index: jax.Array) -> jax.Array:
        """int32 ``(2,)`` ``(row, column)`` of a flat cell index."""
        return jnp.stack([flat_index // self.width, flat_index % self.width]).astype(jnp.int32)

    def _cell_mask(self, position: jax.Array) -> jax.Array:
        """bool ``(height, width)``, True on ``position`` only (all False for ``UNPLACED``).
        A comparison rather than an indexed write, so an unplaced position indexes nothing."""
        rows = jnp.arange(self.height)[:, None]
        columns = jnp.arange(self.width)[None, :]
        return (rows == position[0]) & (columns == position[1])

    def step_env(
        self, key: jax.Array, state: MazeEditorState, action: Any, params: MazeEditorParams
    ) -> StepOutput:
        num_cells = self.height * self.width
        # A traced action is not range-checked by `step`; clipping keeps it on the grid.
        chosen = jnp.clip(jnp.asarray(action, jnp.int32), 0, num_cells - 1)
        placing_wall = state.time < self.num_walls
        placing_goal = state.time == self.num_walls
        placing_agent = state.time == self.num_walls + 1

        # The agent may not share the goal's cell: it takes the next cell, row-major, wrapping.
        on_goal = jnp.all(self._cell(chosen) == state.goal_position)
        agent_cell = self._cell(jnp.where(on_goal, (chosen + 1) % num_cells, chosen))
        goal_cell = self._cell(chosen)

        chosen_mask = self._cell_mask(goal_cell)
        wall_map = jnp.where(placing_wall, state.wall_map | chosen_mask, state.wall_map)
        wall_map = jnp.where(placing_goal, wall_map & ~chosen_mask, wall_map)
        wall_map = jnp.where(placing_agent, wall_map & ~self._cell_mask(agent_cell), wall_map)
        direction = jax.random.randint(key, (), 0, 4, jnp.int32)

        # After the last step (only reachable without AutoReset) nothing changes any more.
        next_state = MazeEditorState(
            wall_map=wall_map,
            goal_position=jnp.where(placing_goal, goal_cell, state.goal_position),
            agent_position=jnp.where(placing_agent, agent_cell, state.agent_position),
            agent_direction=jnp.where(placing_agent, direction, state.agent_direction),
            time=jnp.minimum(state.time + 1, self.num_steps),
        )
        terminated = next_state.time >= self.num_steps
        reward = jnp.zeros((), jnp.float32)
        truncated = jnp.zeros((), bool)
        return self.observe(next_state), next_state, reward, terminated, truncated, {}

    def observe(self, state: MazeEditorState) -> dict[str, jax.Array]:
        """The observation of ``state`` (module docstring)."""
        image = jnp.stack(
            [
                state.wall_map,
                self._cell_mask(state.goal_position),
                self._cell_mask(state.agent_position),
            ],
            axis=-1,
        ).astype(jnp.uint8)
        return {"image": image, "time": state.time}

    # --- the result -----------------------------------------------------------------------------
    def level(self, state: MazeEditorState) -> Level:
        """The level built so far (jit/vmap-able). Valid once the episode has terminated; before
        that, goal and agent not yet placed are at ``(-1, -1)``."""
        return Level(
            wall_map=state.wall_map,
            goal_position=state.goal_position,
            agent_position=state.agent_position,
            agent_direction=state.agent_direction,
        )


def make_editor(maze: Maze | None = None, num_walls: int = 25) -> MazeEditor:
    """The editor env for PAIRED that builds levels of ``maze``'s grid shape (module docstring).

    Args:
      maze: the maze the levels are for (``None``: ``Maze()``, 13 x 13).
      num_walls: wall-placing steps per episode, an integer >= 0 (25, as the DCD papers).

    Example::

        editor = make_editor(Maze(), num_walls=25)
        obs, state = editor.reset(key)
        ...  # num_walls + 2 steps of the adversary's policy
        level = editor.level(state)  # for maze.reset_to_level(key, level)
    """
    return MazeEditor(maze, num_walls)
