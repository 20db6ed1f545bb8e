"""Fruit Tree: choose one of 2**depth fruits down a binary tree (6 objectives).

The environment of Yang et al., "A Generalized Algorithm for Multi-Objective Reinforcement
Learning and Policy Adaptation", NeurIPS 2019, as MO-Gymnasium defines it (``fruit-tree-v0``,
``mo_gymnasium/envs/fruit_tree/fruit_tree.py``, depth 5, 6 (the default) or 7). A full binary
tree of depth ``depth``: the agent starts at the root, node (row 0, index 0), and each step goes
to the left (action 0: index ``2i``) or right (action 1: ``2i + 1``) child one row down. Inner
nodes pay nothing; the leaf at ``(depth, i)`` pays its fruit, a vector of six nutrients
(protein, carbs, fats, vitamins, minerals, water; each in [0, 10]) published with the paper, and
ends the episode: every episode terminates after exactly ``depth`` steps. Every fruit is
Pareto-optimal, so the Pareto front is the fruit table itself.

MO-Gymnasium registers no ``TimeLimit`` for it; ``max_steps_in_episode`` defaults to ``depth``,
which never truncates (the leaf terminates at that step). Observation ``[row, index]`` as
float32 ``(2,)`` (MO-Gymnasium's int32 values).
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from jaxrl_suite.env import spaces
from jaxrl_suite.env.environment import EnvState, StepOutput
from jaxrl_suite.envs.mo.common import MOEnvironment, truncate_at_limit

__all__ = ["DEPTHS", "FruitTree", "FruitTreeParams", "FruitTreeState", "fruits"]

DEPTHS = (5, 6, 7)
FRUITS_FILE = Path(__file__).parent / "data" / "fruit_tree.json"
MAX_NUTRIENT = 10.0  # MO-Gymnasium's reward bound (every published value is below it)


@functools.cache
def _fruit_table(depth: int) -> np.ndarray:
    return np.asarray(json.loads(FRUITS_FILE.read_text())["fruits"][str(depth)], np.float32)


def fruits(depth: int) -> np.ndarray:
    """float32 ``(2**depth, 6)``: the published fruit of each leaf, left to right."""
    if depth not in DEPTHS:
        raise ValueError(f"fruit tree: depth must be one of {DEPTHS}; got {depth!r}.")
    return _fruit_table(depth).copy()


@struct.dataclass
class FruitTreeParams:
    """Attributes:
      fruits: float32 ``(2**depth, 6)``, the leaves' rewards, left to right.
      max_steps_in_episode: the episode limit (``depth``: never binding).
    """

    fruits: jax.Array
    max_steps_in_episode: int


@struct.dataclass
class FruitTreeState(EnvState):
    row: jax.Array  # int32 (): depth of the node, 0 at the root
    index: jax.Array  # int32 (): position of the node in its row, from the left


class FruitTree(MOEnvironment):
    """Fruit Tree of ``depth`` 5, 6 or 7 (module docstring); ``depth`` is static (the shapes)."""

    num_objectives = 6
    objective_names = ("protein", "carbs", "fats", "vitamins", "minerals", "water")
    # morl-baselines' examples/lcn_fruit_tree.py (gamma 1).
    reference_point_values = (0.0,) * 6
    reference_point_source = "morl-baselines examples/lcn_fruit_tree.py"

    def __init__(self, depth: int = 6):
        self.depth = depth
        self._default_params = FruitTreeParams(fruits=jnp.asarray(fruits(depth)),
                                               max_steps_in_episode=depth)

    @property
    def name(self) -> str:
        return f"fruit-tree-{self.depth}"

    @property
    def default_params(self) -> FruitTreeParams:
        return self._default_params

    def check_params(self, params: FruitTreeParams) -> None:
        shape = tuple(np.shape(params.fruits))
        if shape != (2 ** self.depth, 6):
            raise ValueError(f"{self.name}: params.fruits must have shape "
                             f"{(2 ** self.depth, 6)}; got {shape}.")

    def observation_space(self, params: Any = None) -> spaces.Box:
        return spaces.Box(0.0, np.array([self.depth, 2 ** self.depth - 1]), (2,), jnp.float32)

    def action_space(self, params: Any = None) -> spaces.Discrete:
        return spaces.Discrete(2)

    def reward_space(self, params: Any = None) -> spaces.Box:
        return spaces.Box(0.0, MAX_NUTRIENT, (6,), jnp.float32)

    def reset_env(self, key: jax.Array, params: FruitTreeParams
                  ) -> tuple[jax.Array, FruitTreeState]:
        zero = jnp.zeros((), jnp.int32)
        state = FruitTreeState(time=zero, row=zero, index=zero)
        return self._observe(state), state

    def step_env(self, key: jax.Array, state: FruitTreeState, action: Any,
                 params: FruitTreeParams) -> StepOutput:
        row = state.row + 1
        index = 2 * state.index + jnp.asarray(action, jnp.int32)
        terminated = row >= self.depth
        # Only a leaf pays; the clip keeps the (unused) lookup of an inner node in range.
        fruit = jnp.asarray(params.fruits, jnp.float32)[jnp.clip(index, 0, 2 ** self.depth - 1)]
        reward = jnp.where(terminated, fruit, jnp.zeros(6, jnp.float32))
        time = state.time + 1
        next_state = FruitTreeState(time=time, row=row, index=index)
        truncated = truncate_at_limit(time, terminated, params.max_steps_in_episode)
        return self._observe(next_state), next_state, reward, terminated, truncated, {}

    def _observe(self, state: FruitTreeState) -> jax.Array:
        return jnp.stack([state.row, state.index]).astype(jnp.float32)
