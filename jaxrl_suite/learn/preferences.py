"""Multi-objective (vector) rewards: the preference weights ``w`` ``(num_objectives,)`` the
learners scalarise with (DESIGN.md s5), shared by PPO, SAC and TD3."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxrl_suite.env.environment import Environment
from jaxrl_suite.env.wrappers import reward_shape

__all__ = ["check_preference", "default_preference", "min_by_preference", "num_objectives_of",
           "scalarize"]


def num_objectives_of(env: Environment, env_params: Any, algorithm: str) -> int:
    """0 for a scalar reward, ``k`` for an env whose ``reward_space`` is ``(k,)``; any other
    reward shape raises a ``ValueError`` naming ``algorithm`` and the shape."""
    shape = reward_shape(env, env_params)
    if len(shape) > 1 or (shape and shape[0] < 1):
        raise ValueError(f"{algorithm} handles scalar rewards and reward vectors "
                         f"(num_objectives,); {env.name}'s reward_space has shape {shape}.")
    return shape[0] if shape else 0


def default_preference(num_objectives: int, dtype: Any = np.float32) -> np.ndarray | None:
    """Equal preference weights ``(num_objectives,)`` of ``1 / k``; None when 0."""
    if not num_objectives:
        return None
    return np.full(num_objectives, 1.0 / num_objectives, dtype)


def check_preference(preference: Any, num_objectives: int, algorithm: str) -> None:
    """Raise a ``ValueError`` unless ``preference`` is None for a scalar reward, or of shape
    ``(num_objectives,)`` for a vector one. Shapes are static, so called while tracing (in
    ``init``) it fails before anything compiles; under ``vmap`` it sees one member's shape."""
    shape = None if preference is None else tuple(jnp.shape(preference))
    if not num_objectives:
        if shape is not None:
            raise ValueError(f"{algorithm}: hparams.preference has shape {shape}, but the env's "
                             f"reward is a scalar; leave preference None.")
    elif shape != (num_objectives,):
        raise ValueError(f"{algorithm}: hparams.preference must have shape ({num_objectives},), "
                         f"one weight per objective of the env; got "
                         f"{'None' if shape is None else shape}.")


def scalarize(values: jax.Array, preference: jax.Array | None) -> jax.Array:
    """``w . values`` over the last (objective) axis: ``(..., k) -> (...)``; with no
    preference (a scalar reward) the values are returned as they are."""
    if preference is None:
        return values
    return jnp.sum(values * preference, axis=-1)


def min_by_preference(q_values: jax.Array, preference: jax.Array | None) -> jax.Array:
    """The ensemble minimum of a clipped double-Q target.

    Scalar rewards (``preference`` None): ``q_values`` ``(members, ...)`` -> ``(...)``, the
    elementwise minimum. Vector rewards: ``q_values`` ``(members, ..., k)`` -> ``(..., k)``: for
    each sample the whole vector of the member whose scalarised value ``w . Q`` is lowest (not
    a per-objective minimum, which would mix members into a vector no critic predicts).
    """
    if preference is None:
        return q_values.min(axis=0)
    lowest = jnp.argmin(scalarize(q_values, preference), axis=0)  # (...)
    return jnp.take_along_axis(q_values, lowest[None, ..., None], axis=0)[0]
