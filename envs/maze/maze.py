"""The maze of JaxUED, minimax and the DCD papers, as a ``LevelEnvironment``.

A grid (13 x 13 by default) of walls and free cells, one goal, and an agent with a position and
a direction. Actions: 0 turn left, 1 turn right, 2 move forward (``minigrid_actions=True`` adds
MiniGrid's pickup, drop, toggle and done as no-ops 3..6, so the 7-action convention compares).
Moving into a wall or out of the grid leaves the agent where it is. Reaching the goal gives
``1 - 0.9 * t / T`` (``t`` steps taken, this one included; ``T`` the episode limit) and
terminates; the episode is truncated after ``T`` steps (``params.max_steps_in_episode``, 250).

Observations are a dict:

* ``"image"``: uint8 one-hot channels ``(empty, wall, goal)``. Partial (default): the
  ``view_size x view_size`` square in front of the agent, egocentric: row 0 is farthest ahead,
  the agent stands at row ``view_size - 1``, column ``view_size // 2``, column 0 is on its left.
  Cells outside the grid show as wall. Walls do not hide what is behind them (as in JaxUED).
  Full (``observation="full"``): the whole ``height x width`` grid, with a fourth channel for the
  agent's cell.
* ``"direction"``: int32, the agent's direction (0 east, 1 south, 2 west, 3 north).

Levels (``level.Level``) come from a generator chosen when the env is built (``"random_walls"``
with ``params.num_walls`` walls, ``"empty_rooms"``, ``"perfect_maze"``), from ``mutate_level``,
from the editor (``make_editor``), or from the named held-out levels (``load_level``).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from jaxrl_suite.env import spaces
from jaxrl_suite.env.environment import StepOutput
from jaxrl_suite.env.levels import LevelEnvironment
from jaxrl_suite.envs.maze import generators
from jaxrl_suite.envs.maze.level import DIRECTION_VECTORS, Level

__all__ = ["Maze", "MazeParams", "MazeState", "GENERATORS", "OBSERVATIONS"]

GENERATORS = ("random_walls", "empty_rooms", "perfect_maze")
OBSERVATIONS = ("partial", "full")
TURN_LEFT, TURN_RIGHT, MOVE_FORWARD = 0, 1, 2


@struct.dataclass
class MazeParams:
    """What may vary without recompiling.

    Attributes:
      max_steps_in_episode: the episode limit ``T`` (steps); also scales the reward.
      num_walls: walls placed by the ``random_walls`` generator (clipped to cells - 2).
    """

    max_steps_in_episode: int = 250
    num_walls: int = 25


@struct.dataclass
class MazeState:
    """The level being played (unchanged during an episode), the agent, and the steps taken."""

    level: Level
    agent_position: jax.Array  # int32 (2,): (row, column)
    agent_direction: jax.Array  # int32 ()
    time: jax.Array  # int32 (): steps taken in this episode


def check_int_at_least(name: str, value: Any, minimum: int = 1, owner: str = "Maze") -> int:
    """``value`` as an int; a ``ValueError`` naming ``owner`` and ``name`` unless it is an integer
    (not a bool) >= ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{owner}: {name} must be an integer >= {minimum}; got {value!r}.")
    return int(value)


def view_offsets(view_size: int) -> np.ndarray:
    """int32 ``(4, view_size, view_size, 2)``: for each direction, the ``(row, column)`` offset
    from the agent of each cell of the egocentric view (row 0 farthest ahead, column 0 on the
    agent's left)."""
    ahead = (view_size - 1 - np.arange(view_size))[:, None, None]
    lateral = (np.arange(view_size) - view_size // 2)[None, :, None]
    offsets = []
    for direction in range(4):
        forward = DIRECTION_VECTORS[direction]
        right_hand = DIRECTION_VECTORS[(direction + 1) % 4]
        offsets.append(ahead * forward + lateral * right_hand)
    return np.stack(offsets).astype(np.int32)


class Maze(LevelEnvironment):
    """The maze (module docstring). All constructor settings are static (shapes, generator).

    Args:
      size: side of a square grid (13); or give ``height`` and ``width``.
      view_size: side of the partial view (5; odd).
      observation: ``"partial"`` (egocentric view) or ``"full"`` (the whole grid).
      generator: ``"random_walls"``, ``"empty_rooms"`` or ``"perfect_maze"``: what
        ``sample_level`` (and so ``reset`` and ``AutoReset``) draws.
      rooms_per_side: rooms along each side for ``"empty_rooms"`` (4 makes sixteen rooms).
      minigrid_actions: seven actions (MiniGrid's numbering; 3..6 do nothing) instead of three.
    """

    def __init__(
        self,
        size: int = 13,
        *,
        height: int | None = None,
        width: int | None = None,
        view_size: int = 5,
        observation: str = "partial",
        generator: str = "random_walls",
        rooms_per_side: int = 4,
        minigrid_actions: bool = False,
    ):
        self.height = check_int_at_least("height", size if height is None else height, 2)
        self.width = check_int_at_least("width", size if width is None else width, 2)
        self.view_size = check_int_at_least("view_size", view_size)
        if self.view_size % 2 == 0:
            raise ValueError(f"Maze: view_size must be odd (the agent sits in the middle "
                             f"column); got {view_size}.")
        if observation not in OBSERVATIONS:
            raise ValueError(f"Maze: observation must be one of {OBSERVATIONS}; got "
                             f"{observation!r}.")
        if generator not in GENERATORS:
            raise ValueError(f"Maze: generator must be one of {GENERATORS}; got {generator!r}.")
        self.rooms_per_side = check_int_at_least("rooms_per_side", rooms_per_side)
        if generator == "empty_rooms" and 2 * self.rooms_per_side > min(self.height,
                                                                          self.width) + 1:
            raise ValueError(
                f"Maze: {self.rooms_per_side} rooms per side do not fit a {self.height}x"
                f"{self.width} grid (each room needs a cell and each wall line one); at most "
                f"{(min(self.height, self.width) + 1) // 2}."
            )
        self.observation, self.generator = observation, generator
        self.minigrid_actions = bool(minigrid_actions)
        # Static (view_size, 1) and (1, view_size) distances ahead of and to the right of the
        # agent for each cell of the egocentric view (see view_offsets).
        self._view_ahead = (self.view_size - 1 - np.arange(self.view_size))[:, None]
        self._view_lateral = (np.arange(self.view_size) - self.view_size // 2)[None, :]
        # Walls of the view come from rows packed into uint32 words when a padded row fits.
        self._packed_rows = self.width + 2 * (self.view_size - 1) <= 32

    # --- spaces ---------------------------------------------------------------------------------
    @property
    def name(self) -> str:
        return "maze"

    @property
    def default_params(self) -> MazeParams:
        # 25 walls (the DCD papers' 13x13 setting), as many as fit on a smaller grid: what the
        # generator placed anyway, said in the params instead of clipped inside it.
        return MazeParams(num_walls=min(MazeParams.num_walls, self.height * self.width - 2))

    @property
    def shape(self) -> tuple[int, int]:
        return (self.height, self.width)

    def check_params(self, params: MazeParams) -> None:
        """``num_walls`` fits the grid with room for the goal and the agent (the generator would
        otherwise clip it to ``height * width - 2`` without a word)."""
        most = self.height * self.width - 2
        num_walls = np.asarray(params.num_walls)
        if num_walls.dtype.kind not in "iu" or np.any(num_walls < 0) or np.any(num_walls > most):
            raise ValueError(f"maze: num_walls must be an integer in [0, {most}] for a "
                             f"{self.height}x{self.width} grid (the goal and the agent need two "
                             f"free cells); got {params.num_walls!r}.")

    def observation_space(self, params: Any = None) -> spaces.Dict:
        if self.observation == "partial":
            image_shape = (self.view_size, self.view_size, 3)
        else:
            image_shape = (self.height, self.width, 4)
        return spaces.Dict({
            "image": spaces.Box(0, 1, image_shape, jnp.uint8),
            "direction": spaces.Discrete(4),
        })

    def action_space(self, params: Any = None) -> spaces.Discrete:
        return spaces.Discrete(7 if self.minigrid_actions else 3)

    # --- levels ---------------------------------------------------------------------------------
    def sample_level(self, key: jax.Array, params: MazeParams | None = None) -> Level:
        params = self.resolve_params(params)
        if self.generator == "random_walls":
            return generators.random_walls_level(key, self.height, self.width, params.num_walls)
        if self.generator == "empty_rooms":
            return generators.empty_rooms_level(key, self.height, self.width, self.rooms_per_side)
        return generators.perfect_maze_level(key, self.height, self.width)

    def mutate_level(
        self, key: jax.Array, level: Level, num_edits: Any, params: MazeParams | None = None
    ) -> Level:
        self._check_level(level)
        return generators.mutate_level(key, level, num_edits)

    def _check_level(self, level: Any) -> None:
        if not isinstance(level, Level):
            raise TypeError(f"Maze: a level is a jaxrl_suite.envs.maze.Level; got "
                            f"{type(level).__name__}.")
        if tuple(level.wall_map.shape) != self.shape:
            raise ValueError(
                f"Maze: this env is {self.height}x{self.width} but the level's wall_map has "
                f"shape {tuple(level.wall_map.shape)} (one level, not a batch: vmap over "
                f"batches). Build the env with that size, or pad the level with pad_level."
            )

    def reset_to_level(
        self, key: jax.Array, level: Level, params: MazeParams | None = None
    ) -> tuple[dict[str, jax.Array], MazeState]:
        self._check_level(level)
        level = Level(
            wall_map=jnp.asarray(level.wall_map, bool),
            goal_position=jnp.asarray(level.goal_position, jnp.int32),
            agent_position=jnp.asarray(level.agent_position, jnp.int32),
            agent_direction=jnp.asarray(level.agent_direction, jnp.int32),
        )
        state = MazeState(level, level.agent_position, level.agent_direction,
                          jnp.zeros((), jnp.int32))
        return self.observe(state), state

    def level_of(self, state: MazeState) -> Level:
        """The level the episode of ``state`` started from."""
        return state.level

    # --- dynamics -------------------------------------------------------------------------------
    def step_env(
        self, key: jax.Array, state: MazeState, action: Any, params: MazeParams
    ) -> StepOutput:
        action = jnp.asarray(action)  # a Python int (which `step` accepts) has no .astype
        direction_vectors = jnp.asarray(DIRECTION_VECTORS)
        target = state.agent_position + direction_vectors[state.agent_direction]
        inside = jnp.all((target >= 0) & (target < jnp.asarray(self.shape)))
        clipped = jnp.clip(target, 0, jnp.asarray(self.shape) - 1)
        blocked = ~inside | state.level.wall_map[clipped[0], clipped[1]]
        moves = (action == MOVE_FORWARD) & ~blocked
        position = jnp.where(moves, target, state.agent_position)
        turn = (action == TURN_RIGHT).astype(jnp.int32) - (action == TURN_LEFT).astype(jnp.int32)
        direction = (state.agent_direction + turn) % 4
        time = state.time + 1
        at_goal = jnp.all(position == state.level.goal_position)
        limit = params.max_steps_in_episode
        reward = jnp.where(at_goal, 1.0 - 0.9 * time / limit, 0.0).astype(jnp.float32)
        truncated = (time >= limit) & ~at_goal
        next_state = state.replace(agent_position=position, agent_direction=direction, time=time)
        return self.observe(next_state), next_state, reward, at_goal, truncated, {}

    def observe(self, state: MazeState, params: MazeParams | None = None) -> dict[str, jax.Array]:
        """The observation of ``state`` (module docstring): a function of the state alone, which
        lets ``AutoReplay`` observe once per step, after choosing between the next and the
        reset state."""
        if self.observation == "full":
            return {"image": self._full_image(state), "direction": state.agent_direction}
        return {"image": self._partial_image(state), "direction": state.agent_direction}

    def _partial_image(self, state: MazeState) -> jax.Array:
        direction = state.agent_direction
        forward_row = (direction == 1).astype(jnp.int32) - (direction == 3).astype(jnp.int32)
        forward_column = (direction == 0).astype(jnp.int32) - (direction == 2).astype(jnp.int32)
        # The view's cells by arithmetic; the right-hand direction of (forward_row,
        # forward_column) is (forward_column, -forward_row).
        ahead, lateral = self._view_ahead, self._view_lateral
        rows = state.agent_position[0] + ahead * forward_row + lateral * forward_column
        columns = state.agent_position[1] + ahead * forward_column - lateral * forward_row
        if self._packed_rows:
            wall = self._view_walls_from_packed_rows(state)
        else:
            padding = self.view_size - 1
            padded_walls = jnp.pad(state.level.wall_map, padding, constant_values=True)
            wall = padded_walls[rows + padding, columns + padding].astype(jnp.uint8)
        goal = (rows == state.level.goal_position[0]) & (columns == state.level.goal_position[1])
        return self._one_hot(jnp.where(goal, 2, wall).astype(jnp.uint8), 3)

    def _view_walls_from_packed_rows(self, state: MazeState) -> jax.Array:
        """uint8 ``(view, view)`` walls of the egocentric view, read from the wall map packed
        one padded row per uint32.

        Why: the observation is most of a maze step's cost, and gathering its 25 cells one by
        one was the largest part of it. Here the view's square of the grid is ``view`` row words
        (one small dynamic slice) shifted and masked, then turned to face the agent by a choice
        among four static transposes. The packing depends only on the level, so inside a
        rollout on one level XLA computes it once, outside the loop. benchmarks/
        maze_throughput.py measured this 1.2-1.7x faster than the gather (1 to 8192 envs).
        """
        view, padding = self.view_size, self.view_size - 1
        padded = jnp.pad(state.level.wall_map, padding, constant_values=True)
        bit_values = jnp.left_shift(jnp.uint32(1), jnp.arange(padded.shape[1], dtype=jnp.uint32))
        row_words = jnp.sum(jnp.where(padded, bit_values, jnp.uint32(0)), axis=1,
                            dtype=jnp.uint32)
        row, column = state.agent_position[0], state.agent_position[1]
        direction = state.agent_direction
        # Top-left cell of the view x view square of the grid that the view covers.
        top = jnp.where(direction == 1, row, jnp.where(direction == 3, row - padding,
                                                       row - view // 2))
        left = jnp.where(direction == 0, column, jnp.where(direction == 2, column - padding,
                                                           column - view // 2))
        words = jax.lax.dynamic_slice(row_words, (top + padding,), (view,))
        shifts = (left + padding).astype(jnp.uint32) + jnp.arange(view, dtype=jnp.uint32)
        square = ((words[:, None] >> shifts[None, :]) & 1).astype(jnp.uint8)
        # square[k, b] is grid cell (top + k, left + b); turn it so row 0 is farthest ahead
        # and column 0 is on the agent's left.
        facing_east, facing_south = square.T[::-1, :], square[::-1, ::-1]
        facing_west, facing_north = square.T[:, ::-1], square
        return jnp.where(direction == 0, facing_east, jnp.where(
            direction == 1, facing_south, jnp.where(direction == 2, facing_west, facing_north)))

    @staticmethod
    def _one_hot(kind: jax.Array, num_kinds: int) -> jax.Array:
        """uint8 one-hot of small integer codes, channels last."""
        return (kind[..., None] == jnp.arange(num_kinds, dtype=jnp.uint8)).astype(jnp.uint8)

    def _full_image(self, state: MazeState) -> jax.Array:
        rows = jnp.arange(self.height)[:, None]
        columns = jnp.arange(self.width)[None, :]
        goal_position = state.level.goal_position
        goal = (rows == goal_position[0]) & (columns == goal_position[1])
        agent = (rows == state.agent_position[0]) & (columns == state.agent_position[1])
        kind = jnp.where(agent, 3, jnp.where(goal, 2, state.level.wall_map.astype(jnp.uint8)))
        return self._one_hot(kind.astype(jnp.uint8), 4)
