"""Deep Sea Treasure: a submarine trades treasure value against time (2 objectives).

The environment of Vamplew et al., "Empirical evaluation methods for multiobjective
reinforcement learning algorithms", Machine Learning 84 (2011), as MO-Gymnasium defines it
(``mo_gymnasium/envs/deep_sea_treasure/deep_sea_treasure.py``: ``deep-sea-treasure-v0`` with
the map of Yang et al., "A Generalized Algorithm for Multi-Objective Reinforcement Learning and
Policy Adaptation", NeurIPS 2019, whose front is convex; ``deep-sea-treasure-concave-v0`` with
Vamplew et al.'s original values, whose front is concave).

An 11x11 grid: the sea (0), rocks (-10) and treasures (their value > 0) along the sea bed. The
submarine starts at (0, 0); actions 0 up, 1 down, 2 left, 3 right; a move off the grid or into a
rock leaves it in place. A step's reward is ``[treasure, -1]``: the value of the treasure on the
cell it is on after the move (0 elsewhere) and a time penalty of -1 every step. Reaching a
treasure terminates the episode; MO-Gymnasium's ``TimeLimit`` truncates it at 100 steps.
Observation: the (row, column) position as float32 ``(2,)`` (MO-Gymnasium's int32 values).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from jaxrl_suite.env import spaces
from jaxrl_suite.env.environment import EnvState, StepOutput
from jaxrl_suite.envs.mo.common import (
    MOEnvironment,
    concrete_or_default,
    grid_move,
    truncate_at_limit,
)

__all__ = ["CONCAVE_MAP", "CONVEX_MAP", "MAPS", "DeepSeaTreasure", "DSTParams", "DSTState"]

ROCK = -10.0
# Row by row; -10 is a rock, 0 the sea, anything else a treasure of that value.
_LAYOUT = (  # which cells are rocks: the same on both maps
    "...........",
    "...........",
    "#..........",
    "##.........",
    "###........",
    "######.....",
    "######.....",
    "######.....",
    "########...",
    "########...",
    "#########..",
)
# (row, column) -> value of the treasures (Yang et al. 2019; Vamplew et al. 2011).
_CONVEX_TREASURES = {(1, 0): 0.7, (2, 1): 8.2, (3, 2): 11.5, (4, 3): 14.0, (4, 4): 15.1,
                     (4, 5): 16.1, (7, 6): 19.6, (7, 7): 20.3, (9, 8): 22.4, (10, 9): 23.7}
_CONCAVE_TREASURES = {(1, 0): 1.0, (2, 1): 2.0, (3, 2): 3.0, (4, 3): 5.0, (4, 4): 8.0,
                      (4, 5): 16.0, (7, 6): 24.0, (7, 7): 50.0, (9, 8): 74.0, (10, 9): 124.0}


def _build_map(treasures: dict[tuple[int, int], float]) -> np.ndarray:
    sea = np.where(np.array([list(row) for row in _LAYOUT]) == "#", ROCK, 0.0)
    for (row, column), value in treasures.items():
        sea[row, column] = value
    return sea.astype(np.float32)


CONVEX_MAP = _build_map(_CONVEX_TREASURES)
CONCAVE_MAP = _build_map(_CONCAVE_TREASURES)
MAPS = {"convex": CONVEX_MAP, "concave": CONCAVE_MAP}
# (row, column) moves of the actions 0 up, 1 down, 2 left, 3 right (MO-Gymnasium's order).
MOVES = np.array([[-1, 0], [1, 0], [0, -1], [0, 1]], np.int32)


@struct.dataclass
class DSTParams:
    """Attributes:
      sea_map: float32 ``(11, 11)``: -10 a rock, 0 the sea, > 0 a treasure of that value.
      max_steps_in_episode: MO-Gymnasium's ``TimeLimit`` (100 steps).
    """

    sea_map: jax.Array = struct.field(default_factory=lambda: jnp.asarray(CONVEX_MAP))
    max_steps_in_episode: int = 100


@struct.dataclass
class DSTState(EnvState):
    position: jax.Array  # int32 (2,): (row, column)


class DeepSeaTreasure(MOEnvironment):
    """Deep Sea Treasure (module docstring). ``map_name``: ``"convex"`` (``deep-sea-treasure-v0``)
    or ``"concave"`` (``deep-sea-treasure-concave-v0``), the default params' map."""

    num_objectives = 2
    objective_names = ("treasure", "time")
    # morl-baselines' examples/ols_dst.py and examples/pql_dst.py (both maps, gamma 0.99).
    reference_point_values = (0.0, -25.0)
    reference_point_source = "morl-baselines examples/ols_dst.py, examples/pql_dst.py"

    def __init__(self, map_name: str = "convex"):
        if map_name not in MAPS:
            raise ValueError(f"DeepSeaTreasure: map_name must be one of {tuple(MAPS)}; got "
                             f"{map_name!r}.")
        self.map_name = map_name
        self._default_params = DSTParams(sea_map=jnp.asarray(MAPS[map_name]))

    @property
    def name(self) -> str:
        return "deep-sea-treasure" if self.map_name == "convex" else "deep-sea-treasure-concave"

    @property
    def default_params(self) -> DSTParams:
        return self._default_params

    def observation_space(self, params: Any = None) -> spaces.Box:
        return spaces.Box(0.0, 10.0, (2,), jnp.float32)

    def action_space(self, params: Any = None) -> spaces.Discrete:
        return spaces.Discrete(4)

    def reward_space(self, params: Any = None) -> spaces.Box:
        """``[treasure, time]``: treasure in [0, the map's largest value], time always -1."""
        sea_map = np.asarray(concrete_or_default(params, self.default_params).sea_map)
        return spaces.Box(np.array([0.0, -1.0]), np.array([max(float(sea_map.max()), 0.0),
                                                            -1.0]), (2,), jnp.float32)

    def reset_env(self, key: jax.Array, params: DSTParams) -> tuple[jax.Array, DSTState]:
        state = DSTState(time=jnp.zeros((), jnp.int32), position=jnp.zeros(2, jnp.int32))
        return self._observe(state), state

    def step_env(self, key: jax.Array, state: DSTState, action: Any,
                 params: DSTParams) -> StepOutput:
        sea_map = jnp.asarray(params.sea_map, jnp.float32)
        position = grid_move(state.position, action, MOVES, sea_map == ROCK)
        value = sea_map[position[0], position[1]]
        # Any value but the sea's and a rock's is a treasure (rocks are never entered).
        terminated = (value != 0.0) & (value != ROCK)
        reward = jnp.stack([jnp.where(terminated, value, 0.0), jnp.float32(-1.0)])
        time = state.time + 1
        next_state = DSTState(time=time, position=position)
        truncated = truncate_at_limit(time, terminated, params.max_steps_in_episode)
        return (self._observe(next_state), next_state, reward.astype(jnp.float32), terminated,
                truncated, {})

    def _observe(self, state: DSTState) -> jax.Array:
        return state.position.astype(jnp.float32)
