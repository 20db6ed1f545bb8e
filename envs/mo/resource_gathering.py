"""Resource Gathering: fetch gold and a diamond past two enemies (3 objectives).

The environment of Barrett & Narayanan, "Learning all optimal policies with multiple
criteria", ICML 2008, as MO-Gymnasium defines it (``resource-gathering-v0``,
``mo_gymnasium/envs/resource_gathering/resource_gathering.py``). A 5x5 grid, (row, column)::

    . . G E .        G gold (0, 2), D diamond (1, 4), H home (4, 2),
    . . E . D        E enemies at (1, 2) and (0, 3)
    . . . . .
    . . . . .
    . . H . .

The agent starts at home carrying nothing; actions 0 up, 1 down, 2 left, 3 right; a move off the
grid leaves it in place. After the move, on the cell it is on:

* gold or diamond: it now carries that resource (the resource stays on the map);
* an enemy: with probability ``enemy_attack_probability`` (0.1, as published) it is killed:
  reward ``[-1, 0, 0]`` and the episode terminates;
* home: the episode terminates with reward ``[0, gold carried, diamond carried]``. A move that
  leaves the agent on the home cell counts too (stepping into the border from home ends the
  episode with nothing), as in MO-Gymnasium.

Reward ``[death, gold, diamond]``; MO-Gymnasium's ``TimeLimit`` truncates at 100 steps.
Observation ``[row, column, has_gold, has_diamond]`` as float32 ``(4,)`` (MO-Gymnasium's int32
values).
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

__all__ = ["DIAMOND", "ENEMIES", "GOLD", "HOME", "ResourceGathering", "RGParams", "RGState"]

SIZE = 5
GOLD = (0, 2)
DIAMOND = (1, 4)
ENEMIES = ((1, 2), (0, 3))
HOME = (4, 2)
MOVES = np.array([[-1, 0], [1, 0], [0, -1], [0, 1]], np.int32)  # up, down, left, right


@struct.dataclass
class RGParams:
    """Attributes:
      enemy_attack_probability: the chance that an enemy kills the agent on its cell (0.1).
      max_steps_in_episode: MO-Gymnasium's ``TimeLimit`` (100 steps).
    """

    enemy_attack_probability: float = 0.1
    max_steps_in_episode: int = 100


@struct.dataclass
class RGState(EnvState):
    position: jax.Array  # int32 (2,): (row, column)
    has_gold: jax.Array  # bool ()
    has_diamond: jax.Array  # bool ()


def _at(position: jax.Array, cell: tuple[int, int]) -> jax.Array:
    return (position[0] == cell[0]) & (position[1] == cell[1])


class ResourceGathering(MOEnvironment):
    """Resource Gathering (module docstring)."""

    num_objectives = 3
    objective_names = ("death", "gold", "diamond")
    # No published standard (MO-Gymnasium and morl-baselines give none): each objective's lowest
    # return in an episode (-1, 0, 0) less a margin of 1, so points on those bounds still count.
    reference_point_values = (-2.0, -1.0, -1.0)
    reference_point_source = "derived: the lowest return per objective less 1 (none published)"

    @property
    def name(self) -> str:
        return "resource-gathering"

    @property
    def default_params(self) -> RGParams:
        return RGParams()

    def check_params(self, params: RGParams) -> None:
        p = np.asarray(params.enemy_attack_probability)
        if np.any(p < 0) or np.any(p > 1):
            raise ValueError(f"resource-gathering: enemy_attack_probability must be in [0, 1]; "
                             f"got {params.enemy_attack_probability}.")

    def observation_space(self, params: Any = None) -> spaces.Box:
        return spaces.Box(0.0, np.array([SIZE - 1, SIZE - 1, 1, 1]), (4,), jnp.float32)

    def action_space(self, params: Any = None) -> spaces.Discrete:
        return spaces.Discrete(4)

    def reward_space(self, params: Any = None) -> spaces.Box:
        return spaces.Box(np.array([-1.0, 0.0, 0.0]), np.array([0.0, 1.0, 1.0]), (3,),
                          jnp.float32)

    def reset_env(self, key: jax.Array, params: RGParams) -> tuple[jax.Array, RGState]:
        state = RGState(time=jnp.zeros((), jnp.int32), position=jnp.asarray(HOME, jnp.int32),
                        has_gold=jnp.asarray(False), has_diamond=jnp.asarray(False))
        return self._observe(state), state

    def step_env(self, key: jax.Array, state: RGState, action: Any,
                 params: RGParams) -> StepOutput:
        position = grid_move(state.position, action, MOVES, jnp.zeros((SIZE, SIZE), bool))
        has_gold = state.has_gold | _at(position, GOLD)
        has_diamond = state.has_diamond | _at(position, DIAMOND)
        on_enemy = _at(position, ENEMIES[0]) | _at(position, ENEMIES[1])
        killed = on_enemy & (jax.random.uniform(key) < params.enemy_attack_probability)
        home = _at(position, HOME)
        reward = jnp.stack([
            jnp.where(killed, -1.0, 0.0),
            jnp.where(home, has_gold.astype(jnp.float32), 0.0),
            jnp.where(home, has_diamond.astype(jnp.float32), 0.0),
        ]).astype(jnp.float32)
        terminated = killed | home
        time = state.time + 1
        next_state = RGState(time=time, position=position, has_gold=has_gold,
                             has_diamond=has_diamond)
        truncated = truncate_at_limit(time, terminated, params.max_steps_in_episode)
        return self._observe(next_state), next_state, reward, terminated, truncated, {}

    def _observe(self, state: RGState) -> jax.Array:
        return jnp.concatenate([state.position.astype(jnp.float32),
                                jnp.stack([state.has_gold, state.has_diamond]).astype(
                                    jnp.float32)])
