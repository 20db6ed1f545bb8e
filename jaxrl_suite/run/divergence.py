"""Divergence: whether a run's losses and learned parameters are still finite.

The harness adds one metric to every update, ``finite`` (1.0 or 0.0 per seed), computed inside
the compiled loop from the update's new state and metrics: it is 0.0 as soon as a loss metric
(every metric whose name contains ``loss``) or a learned array of the state is NaN or infinite.
Learned arrays are the floating leaves under a state field named ``params``, ``*_params`` or
``*opt_state`` (``env_params`` and ``hparams`` excepted), at any depth, which is how every
algorithm in the project names them; metrics and state that may be legitimately non-finite
(the return of updates in which no episode ended, a level buffer's ``-inf`` initial scores) are
not looked at. An update that reports a metric ``learned`` of 0 did not learn (robust PLR and
ACCEL learn only on replay rounds) and reports NaN losses by design: its losses are not checked
(its parameters still are). After each chunk the host looks for the first update with
``finite == 0`` (``find_divergence``) and stops or warns as ``RunOptions.on_nonfinite`` says.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

__all__ = [
    "Divergence",
    "TrainingDiverged",
    "find_divergence",
    "finite_flag",
    "is_learned_field",
    "learned_leaves",
]

FINITE_METRIC = "finite"
LEARNED_METRIC = "learned"  # 0: this update did not learn, and its losses are NaN by design


class TrainingDiverged(RuntimeError):
    """A run's losses or parameters stopped being finite (``--on-nonfinite stop``)."""


@dataclasses.dataclass(frozen=True)
class Divergence:
    """The first non-finite update of a chunk: the update number (1-based, over the whole run),
    the seed, and what was non-finite (a loss metric's name, or ``parameters``)."""

    update: int
    seed: int
    what: str
    value: float

    def describe(self) -> str:
        value = "" if self.what == "parameters" else f" = {self.value}"
        return f"update {self.update}, seed {self.seed}: {self.what}{value}"


def is_learned_field(name: str) -> bool:
    """Whether a state field holds learned arrays: ``params``, ``*_params`` (not
    ``env_params``), ``opt_state`` or ``*_opt_state``."""
    if name == "env_params":
        return False
    return name in ("params", "opt_state") or name.endswith(("_params", "_opt_state"))


def _field_names(path: tuple[Any, ...]) -> list[str]:
    return [key.name for key in path if isinstance(key, jax.tree_util.GetAttrKey)]


def learned_leaves(state: Any) -> list[tuple[str, Any]]:
    """``(path, leaf)`` of every floating leaf under a learned field of ``state``."""
    out = []
    for path, leaf in jax.tree_util.tree_flatten_with_path(state)[0]:
        dtype = getattr(leaf, "dtype", None)
        if dtype is None or not jnp.issubdtype(dtype, jnp.inexact):
            continue
        if any(is_learned_field(name) for name in _field_names(path)):
            out.append((jax.tree_util.keystr(path), leaf))
    return out


def _loss_names(metrics: dict[str, Any]) -> list[str]:
    return [name for name in metrics if "loss" in name]


def finite_flag(state: Any, metrics: dict[str, Any]) -> jax.Array:
    """``float32`` 1.0 when every loss metric and every learned array of ``state`` is finite,
    else 0.0 (one seed's state; traceable)."""
    checks = [jnp.all(jnp.isfinite(metrics[name])) for name in _loss_names(metrics)]
    if checks and LEARNED_METRIC in metrics:  # no learning, no losses to check
        checks = [jnp.stack(checks).all() | (metrics[LEARNED_METRIC] == 0)]
    checks += [jnp.all(jnp.isfinite(leaf)) for _, leaf in learned_leaves(state)]
    if not checks:
        return jnp.float32(1.0)
    return jnp.stack(checks).all().astype(jnp.float32)


def find_divergence(metrics: dict[str, np.ndarray], first_update: int) -> Divergence | None:
    """The first update (and lowest seed) of a chunk whose ``finite`` metric is 0, from host
    metrics ``(num_updates, num_seeds, ...)`` of updates ``first_update + 1 ...``; ``None`` if
    all are finite. What is named is the first loss metric (alphabetically) that is not finite
    there, or ``parameters`` when the losses are."""
    flags = np.asarray(metrics.get(FINITE_METRIC, np.ones((0, 0))))
    bad = np.argwhere(flags == 0)
    if bad.size == 0:
        return None
    index, seed = (int(i) for i in bad[0][:2])
    learned = LEARNED_METRIC not in metrics or metrics[LEARNED_METRIC][index, seed] != 0
    for name in sorted(_loss_names(metrics)) if learned else []:
        value = np.asarray(metrics[name][index, seed], np.float64)
        if not np.isfinite(value).all():
            first = value.reshape(-1)[~np.isfinite(value.reshape(-1))][0]
            return Divergence(first_update + index + 1, seed, name, float(first))
    return Divergence(first_update + index + 1, seed, "parameters", math.nan)
