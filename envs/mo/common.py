"""What every multi-objective env of ``envs/mo/`` shares (DESIGN.md section 5).

An MO env is an ordinary ``Environment`` whose ``reward`` is float32 of shape
``(num_objectives,)``. It also exposes:

* ``num_objectives``: ``k``, a class attribute;
* ``reward_space(params)``: a ``Box`` of shape ``(k,)`` with the true bounds of one step's reward
  (``wrappers.reward_shape`` reads its shape, so ``EpisodeStats`` keeps a vector return);
* ``objective_names``: one short name per objective, in reward order;
* ``reference_point``: the reference point of hypervolume for this env, float64 ``(k,)``, with
  ``reference_point_source`` saying where it comes from.

Episode limits are MO-Gymnasium's ``TimeLimit``: ``max_steps_in_episode`` in params; at the
limit the step is ``truncated`` (bootstrapped), never ``terminated``.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxrl_suite.env.environment import Environment

__all__ = ["MOEnvironment", "concrete_or_default", "grid_move", "truncate_at_limit"]


class MOEnvironment(Environment):
    """Base class of the ``envs/mo/`` environments (module docstring)."""

    num_objectives: int = 0
    objective_names: tuple[str, ...] = ()
    reference_point_values: tuple[float, ...] = ()
    reference_point_source: str = ""

    @property
    def reference_point(self) -> np.ndarray:
        """float64 ``(num_objectives,)``: the hypervolume reference point (see
        ``reference_point_source``)."""
        return np.asarray(self.reference_point_values, np.float64)

    def reward_space(self, params: Any = None):
        raise NotImplementedError


def concrete_or_default(params: Any, default: Any) -> Any:
    """``params`` if none of its leaves is traced, else ``default``: spaces are Python objects
    with NumPy bounds, so a space whose bounds depend on params reads concrete values (under
    ``jit`` only its shape is used, which no param changes)."""
    if params is None:
        return default
    if any(isinstance(leaf, jax.core.Tracer) for leaf in jax.tree.leaves(params)):
        return default
    return params


def grid_move(position: jax.Array, action: jax.Array, moves: np.ndarray,
              blocked: jax.Array) -> jax.Array:
    """The cell reached from ``position`` (int32 ``(2,)``, (row, column)) by ``action``: the
    neighbour ``position + moves[action]`` unless it is off the grid or ``blocked`` (bool
    ``(rows, columns)``) there, in which case the agent stays."""
    rows, columns = blocked.shape
    target = position + jnp.asarray(moves)[action]
    inside = (target[0] >= 0) & (target[0] < rows) & (target[1] >= 0) & (target[1] < columns)
    clipped = jnp.clip(target, 0, jnp.asarray([rows - 1, columns - 1]))
    stays = ~inside | blocked[clipped[0], clipped[1]]
    return jnp.where(stays, position, clipped).astype(jnp.int32)


def truncate_at_limit(time: jax.Array, terminated: jax.Array, limit: Any) -> jax.Array:
    """MO-Gymnasium's ``TimeLimit``: truncated when ``time`` (steps taken, this one included)
    reaches ``limit``, unless the MDP terminated at that very step."""
    return (time >= limit) & ~terminated
