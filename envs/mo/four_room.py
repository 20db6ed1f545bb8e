"""Four-Room: collect three kinds of shapes on the way to a goal (3 objectives).

The discretised grid world of Barreto et al., "Successor Features for Transfer in Reinforcement
Learning", NeurIPS 2017, as MO-Gymnasium defines it (``four-room-v0``,
``mo_gymnasium/envs/four_room/four_room.py``). A 13x13 grid of four rooms joined by passages,
with twelve shapes of three kinds (``1``, ``2``, ``3`` below), the start ``_`` and the goal ``G``::

    1 . . . . 2 X . . . . . G
    . . . . . . X . . . . . .
    . . . . . . 1 . . . . . .
    . . . . . . . . . . . . .
    . . . . . . X . . . . . .
    2 . . . . 3 X . . . . . .
    X X 3 . X X X X X . 1 X X
    . . . . . . X 2 . . . . 3
    . . . . . . X . . . . . .
    . . . . . . . . . . . . .
    . . . . . . 2 . . . . . .
    . . . . . . X . . . . . .
    _ . . . . . X 3 . . . . 1

Actions (MO-Gymnasium's order) 0 left, 1 up, 2 right, 3 down; a move off the grid or into a wall
``X`` leaves the agent in place with reward 0. Entering a shape not collected yet collects it:
reward 1 on its kind's objective. Entering the goal terminates the episode with reward
``[1, 1, 1]``. MO-Gymnasium's ``TimeLimit`` truncates at 200 steps.

Observation: ``[row, column, collected_0, ..., collected_11]`` as float32 ``(14,)``
(MO-Gymnasium's int32 values), the shapes numbered as MO-Gymnasium does, column by column
(top to bottom within a column).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from jaxrl_suite.env import spaces
from jaxrl_suite.env.environment import EnvState, StepOutput
from jaxrl_suite.envs.mo.common import MOEnvironment, grid_move, truncate_at_limit

__all__ = ["MAZE", "FourRoom", "FourRoomParams", "FourRoomState"]

MAZE = (
    "1....2X.....G",
    "......X......",
    "......1......",
    ".............",
    "......X......",
    "2....3X......",
    "XX3.XXXXX.1XX",
    "......X2....3",
    "......X......",
    ".............",
    "......2......",
    "......X......",
    "_.....X3....1",
)
_GRID = np.array([list(row) for row in MAZE])
WALLS = _GRID == "X"
START = tuple(int(i) for i in np.argwhere(_GRID == "_")[0])
GOAL = tuple(int(i) for i in np.argwhere(_GRID == "G")[0])
# Shape cells in MO-Gymnasium's numbering: column by column, top to bottom (its loops run over
# columns first); SHAPE_KINDS[i] is the objective (0, 1, 2 for shapes "1", "2", "3").
_SHAPE_CELLS = [(r, c) for c in range(_GRID.shape[1]) for r in range(_GRID.shape[0])
                if _GRID[r, c] in "123"]
SHAPE_POSITIONS = np.array(_SHAPE_CELLS, np.int32)  # (12, 2)
SHAPE_KINDS = np.array([int(_GRID[r, c]) - 1 for r, c in _SHAPE_CELLS], np.int32)  # (12,)
NUM_SHAPES = len(_SHAPE_CELLS)
# (row, column) moves of the actions 0 left, 1 up, 2 right, 3 down.
MOVES = np.array([[0, -1], [-1, 0], [0, 1], [1, 0]], np.int32)


@struct.dataclass
class FourRoomParams:
    """Attributes:
      max_steps_in_episode: MO-Gymnasium's ``TimeLimit`` (200 steps).
    """

    max_steps_in_episode: int = 200


@struct.dataclass
class FourRoomState(EnvState):
    position: jax.Array  # int32 (2,): (row, column)
    collected: jax.Array  # bool (12,), in SHAPE_POSITIONS' order


class FourRoom(MOEnvironment):
    """Four-Room (module docstring)."""

    num_objectives = 3
    objective_names = ("shape_1", "shape_2", "shape_3")
    # No published standard (MO-Gymnasium and morl-baselines give none): each objective's lowest
    # return in an episode (0) less a margin of 1, so points on that bound still count.
    reference_point_values = (-1.0, -1.0, -1.0)
    reference_point_source = "derived: the lowest return per objective less 1 (none published)"

    @property
    def name(self) -> str:
        return "four-room"

    @property
    def default_params(self) -> FourRoomParams:
        return FourRoomParams()

    def observation_space(self, params: Any = None) -> spaces.Box:
        high = np.concatenate([[WALLS.shape[0] - 1, WALLS.shape[1] - 1], np.ones(NUM_SHAPES)])
        return spaces.Box(0.0, high, (2 + NUM_SHAPES,), jnp.float32)

    def action_space(self, params: Any = None) -> spaces.Discrete:
        return spaces.Discrete(4)

    def reward_space(self, params: Any = None) -> spaces.Box:
        return spaces.Box(0.0, 1.0, (3,), jnp.float32)

    def reset_env(self, key: jax.Array, params: FourRoomParams
                  ) -> tuple[jax.Array, FourRoomState]:
        # MO-Gymnasium draws the start among the "_" cells; this map has one.
        state = FourRoomState(time=jnp.zeros((), jnp.int32),
                              position=jnp.asarray(START, jnp.int32),
                              collected=jnp.zeros(NUM_SHAPES, bool))
        return self._observe(state), state

    def step_env(self, key: jax.Array, state: FourRoomState, action: Any,
                 params: FourRoomParams) -> StepOutput:
        position = grid_move(state.position, action, MOVES, jnp.asarray(WALLS))
        moved = jnp.any(position != state.position)
        at_goal = moved & (position[0] == GOAL[0]) & (position[1] == GOAL[1])
        on_shape = moved & jnp.all(jnp.asarray(SHAPE_POSITIONS) == position, axis=-1)  # (12,)
        newly = on_shape & ~state.collected
        shape_reward = jnp.zeros(3, jnp.float32).at[jnp.asarray(SHAPE_KINDS)].add(
            newly.astype(jnp.float32))
        reward = jnp.where(at_goal, jnp.ones(3, jnp.float32), shape_reward)
        time = state.time + 1
        next_state = FourRoomState(time=time, position=position,
                                   collected=state.collected | newly)
        truncated = truncate_at_limit(time, at_goal, params.max_steps_in_episode)
        return self._observe(next_state), next_state, reward, at_goal, truncated, {}

    def _observe(self, state: FourRoomState) -> jax.Array:
        return jnp.concatenate([state.position.astype(jnp.float32),
                                state.collected.astype(jnp.float32)])
