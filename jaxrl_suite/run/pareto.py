"""Pareto fronts and the multi-objective metrics (DESIGN.md s5).

Conventions, everywhere in this module:

- every objective is **maximised** (an episode's return vector: more is better in each
  component);
- a set of objective vectors is ``points`` of shape ``(n, k)``: ``n`` policies (or solutions),
  ``k`` objectives; a *front* is such a set, usually its non-dominated rows;
- preference weights are ``(m, k)``, one weight vector per row (rows of
  ``equally_spaced_weights`` and ``riesz_energy_weights`` are non-negative and sum to 1).

Fronts are small (tens to a few hundred policies), so everything but ``pareto_mask_jax`` is
NumPy on the host, in float64; ``pareto_mask_jax`` is the same filter in ``jnp`` for use inside a
compiled program (an archive of policies kept on the device). The host functions refuse NaN and
infinite values with a ``ValueError``: a metric of a front with a NaN return in it means nothing.
"""

from __future__ import annotations

import csv
import itertools
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

__all__ = [
    "cardinality",
    "crowding_distance",
    "equally_spaced_weights",
    "expected_utility",
    "front_metrics",
    "hypervolume",
    "igd",
    "maximum_utility_loss",
    "pareto_front",
    "pareto_mask",
    "pareto_mask_jax",
    "plot_front",
    "riesz_energy_weights",
    "sparsity",
    "write_front",
]

# pareto_mask compares a block of rows against all rows at once; this bounds the block's
# (rows, n, k) comparison arrays to a few MB whatever n is.
_BLOCK_ELEMENTS = 1 << 22


# --- input checks -------------------------------------------------------------------------


def _as_points(points: Any, name: str = "points") -> np.ndarray:
    """``points`` as a float64 ``(n, k)`` array, ``k >= 1``, all finite (``n`` may be 0)."""
    array = np.asarray(points, dtype=np.float64)
    if array.ndim != 2 or array.shape[1] < 1:
        raise ValueError(f"{name} must have shape (n, k): one objective vector of k >= 1 "
                         f"objectives per row; got shape {array.shape}.")
    bad = ~np.isfinite(array).all(axis=1)
    if bad.any():
        rows = np.flatnonzero(bad)
        raise ValueError(f"{name} has non-finite values (NaN or infinity) in row(s) "
                         f"{rows[:5].tolist()}{' ...' if len(rows) > 5 else ''}.")
    return array


def _as_reference(reference_point: Any, num_objectives: int) -> np.ndarray:
    """``reference_point`` as a finite float64 ``(k,)`` array, checked against ``k``."""
    reference = np.asarray(reference_point, dtype=np.float64)
    if reference.ndim != 1:
        raise ValueError(f"reference_point must be a vector (k,); got shape {reference.shape}.")
    if len(reference) != num_objectives:
        raise ValueError(f"reference_point has {len(reference)} values but the points have "
                         f"{num_objectives} objectives: give one value per objective.")
    if not np.isfinite(reference).all():
        raise ValueError(f"reference_point must be finite; got {reference.tolist()}.")
    return reference


def _as_weights(weights: Any, num_objectives: int) -> np.ndarray:
    """``weights`` as a finite float64 ``(m, k)`` array, ``m >= 1``, checked against ``k``."""
    array = _as_points(weights, "weights")
    if len(array) == 0:
        raise ValueError("weights is empty: give at least one weight vector (m >= 1 rows).")
    if array.shape[1] != num_objectives:
        raise ValueError(f"weights have {array.shape[1]} columns but the front has "
                         f"{num_objectives} objectives: give one weight per objective.")
    return array


def _same_objectives(front: np.ndarray, other: np.ndarray, other_name: str) -> None:
    if other.shape[1] != front.shape[1]:
        raise ValueError(f"{other_name} has {other.shape[1]} objectives but the front has "
                         f"{front.shape[1]}.")


def _require_nonempty(points: np.ndarray, name: str) -> None:
    if len(points) == 0:
        raise ValueError(f"{name} is empty: the metric needs at least one point.")


# --- Pareto filtering -----------------------------------------------------------------------


def _nondominated(points: np.ndarray) -> np.ndarray:
    """``pareto_mask`` without the input checks: ``(n, k)`` float -> ``(n,)`` bool."""
    n, k = points.shape
    keep = np.ones(n, dtype=bool)
    block = max(1, _BLOCK_ELEMENTS // max(1, n * k))
    for start in range(0, n, block):
        rows = points[start:start + block]  # (b, k): is each of these dominated by any point?
        at_least = np.all(points[None] >= rows[:, None], axis=2)  # (b, n): p_j >= p_i
        better = np.any(points[None] > rows[:, None], axis=2)  # (b, n): p_j > p_i somewhere
        dominated = np.any(at_least & better, axis=1)
        # An exact copy of an earlier row is dropped, so duplicates keep their first one.
        earlier = np.arange(n)[None] < np.arange(start, start + len(rows))[:, None]
        duplicate = np.any(at_least & ~better & earlier, axis=1)
        keep[start:start + len(rows)] = ~(dominated | duplicate)
    return keep


def pareto_mask(points: Any) -> np.ndarray:
    """Which rows of ``points`` ``(n, k)`` are non-dominated: ``(n,)`` bool.

    Row ``i`` is dominated when another row is ``>=`` in every objective and ``>`` in one
    (maximisation). Of rows that are exactly equal, only the first is kept, so
    ``points[pareto_mask(points)]`` has no duplicates. ``n`` may be 0.
    """
    return _nondominated(_as_points(points))


def pareto_front(points: Any) -> np.ndarray:
    """The non-dominated rows of ``points`` ``(n, k)``, each once, in their input order:
    ``(p, k)`` float64, ``p <= n``."""
    array = _as_points(points)
    return array[_nondominated(array)]


def pareto_mask_jax(points: jax.Array) -> jax.Array:
    """``pareto_mask`` in ``jnp``, for use inside ``jit``/``vmap``: ``(n, k) -> (n,)`` bool.

    Same rule (maximisation; of equal rows only the first is kept). It compares all pairs at
    once, ``O(n^2 k)`` memory, which suits the archive sizes of MORL (hundreds). Values are not
    checked (they may be traced): a row with a NaN neither dominates nor is dominated.
    """
    points = jnp.asarray(points)
    if points.ndim != 2:
        raise ValueError(f"points must have shape (n, k); got shape {points.shape}.")
    rows, others = points[:, None, :], points[None, :, :]
    at_least = jnp.all(others >= rows, axis=-1)  # [i, j]: p_j >= p_i everywhere
    better = jnp.any(others > rows, axis=-1)  # [i, j]: p_j > p_i somewhere
    dominated = jnp.any(at_least & better, axis=1)
    index = jnp.arange(points.shape[0])
    earlier = index[None, :] < index[:, None]
    duplicate = jnp.any(at_least & ~better & earlier, axis=1)
    return ~(dominated | duplicate)


# --- hypervolume ----------------------------------------------------------------------------


def _hypervolume_2d(points: np.ndarray) -> float:
    """Area of the union of the boxes ``[0, p]`` of positive points ``(n, 2)``, by the sweep:
    in order of decreasing first objective, each point adds the strip between the highest
    second objective seen so far and its own (dominated points add nothing)."""
    order = np.lexsort((-points[:, 1], -points[:, 0]))
    x, y = points[order, 0], points[order, 1]
    highest_before = np.concatenate([[0.0], np.maximum.accumulate(y)[:-1]])
    return float(np.sum(x * np.maximum(y - highest_before, 0.0)))


def _hypervolume_positive(points: np.ndarray) -> float:
    """Volume of the union of the boxes ``[0, p]`` of positive points ``(n, k)``.

    WFG-style: the volume is the sum of each point's exclusive contribution against the
    points after it, ``|[0, p_i]| - |[0, p_i] & union_{j>i} [0, p_j]|``, and the overlap is
    itself the union of the boxes ``[0, min(p_i, p_j)]``, a smaller hypervolume problem. With
    the points sorted by increasing last objective, every ``min(p_i, p_j)`` (``j > i``) has
    ``p_i``'s last value, so the overlap is that value times a ``(k - 1)``-objective
    hypervolume: the recursion drops one objective per level down to the 2-D sweep. Filtering
    the dominated boxes out of each overlap keeps the sets small on real fronts.
    """
    n, k = points.shape
    if n == 0:
        return 0.0
    if k == 1:
        return float(points.max())
    if n == 1:
        return float(np.prod(points[0]))
    if k == 2:
        return _hypervolume_2d(points)
    points = points[np.argsort(points[:, -1], kind="stable")]
    total = 0.0
    for i in range(n):
        head, height = points[i, :-1], points[i, -1]
        overlap = np.minimum(points[i + 1:, :-1], head)  # (n - i - 1, k - 1)
        if k - 1 > 2 and len(overlap) > 1:
            overlap = overlap[_nondominated(overlap)]
        total += height * (float(np.prod(head)) - _hypervolume_positive(overlap))
    return total


def hypervolume(points: Any, reference_point: Any) -> float:
    """The exact hypervolume of ``points`` ``(n, k)`` above ``reference_point`` ``(k,)``.

    The volume of the region dominated by the points and dominating the reference point
    (maximisation): the union of the boxes ``[reference_point, p]``. Points that do not
    strictly dominate the reference point (``p > reference_point`` in every objective)
    contribute nothing; an empty set has volume 0. ``k = 2`` is a sort-and-sweep, ``k >= 3``
    an exact recursive (WFG-style) computation, quick for fronts of a few hundred points and
    ``k <= 6``. Raises ``ValueError`` for a reference point of the wrong length and for
    non-finite values.
    """
    array = _as_points(points)
    reference = _as_reference(reference_point, array.shape[1])
    shifted = array[np.all(array > reference, axis=1)] - reference
    if len(shifted) == 0:
        return 0.0
    return _hypervolume_positive(shifted[_nondominated(shifted)])


# --- weight sets ----------------------------------------------------------------------------


def _require_count(value: Any, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}; got {value!r}.")
    return int(value)


def _lattice_size(num_objectives: int, partitions: int) -> int:
    return math.comb(partitions + num_objectives - 1, num_objectives - 1)


def equally_spaced_weights(num_objectives: int, num_points: int | None = None, *,
                           partitions: int | None = None) -> np.ndarray:
    """The simplex lattice (Das & Dennis): every weight vector whose entries are multiples of
    ``1 / partitions`` and sum to 1: ``(C(partitions + k - 1, k - 1), k)`` float64.

    Give exactly one of ``num_points`` (the largest lattice with at most that many rows is
    returned: exactly ``num_points`` for ``k = 2``) or ``partitions``. Rows are non-negative and
    sum to 1; the unit vectors (one objective only) are among them. ``k = 1`` gives ``[[1.0]]``.
    """
    k = _require_count(num_objectives, "num_objectives", 1)
    if (num_points is None) == (partitions is None):
        raise ValueError("give exactly one of num_points and partitions.")
    if k == 1:
        return np.ones((1, 1))
    if partitions is not None:
        h = _require_count(partitions, "partitions", 1)
    else:
        count = _require_count(num_points, "num_points", 1)
        if count < k:
            raise ValueError(f"num_points must be at least num_objectives ({k}): the smallest "
                             f"lattice is the {k} unit vectors; got {count}.")
        h = 1
        while _lattice_size(k, h + 1) <= count:
            h += 1
    # Stars and bars: a weight vector is h units split into k parts, i.e. the positions of
    # k - 1 bars among h + k - 1 slots; the part sizes are the gaps between bars.
    bars = np.array(list(itertools.combinations(range(h + k - 1), k - 1)), dtype=np.int64)
    edges = np.concatenate([np.full((len(bars), 1), -1), bars,
                            np.full((len(bars), 1), h + k - 1)], axis=1)
    parts = np.diff(edges, axis=1) - 1  # (rows, k), each row sums to h
    return parts[::-1] / h  # the first objective's unit vector first


def _project_to_simplex(x: np.ndarray) -> np.ndarray:
    """The Euclidean projection of each row of ``x`` ``(n, k)`` onto the probability simplex:
    ``max(x - theta, 0)`` with the one ``theta`` per row that makes the row sum to 1."""
    descending = -np.sort(-x, axis=1)
    excess = np.cumsum(descending, axis=1) - 1.0
    ranks = np.arange(1, x.shape[1] + 1)
    active = descending - excess / ranks > 0  # true for a prefix of each row
    last = active.sum(axis=1) - 1
    theta = excess[np.arange(len(x)), last] / (last + 1)
    return np.maximum(x - theta[:, None], 0.0)


def _log_energy(x: np.ndarray, exponent: float) -> float:
    """``log sum_{i<j} |x_i - x_j|^-s`` for ``x`` ``(n, k)``, computed in the log domain: the
    energy itself overflows for close points and large ``s``."""
    i, j = np.triu_indices(len(x), 1)
    squared = np.sum((x[i] - x[j]) ** 2, axis=1)
    with np.errstate(divide="ignore"):  # coincident points: infinite energy, never accepted
        terms = -0.5 * exponent * np.log(squared)
    top = terms.max()
    if not np.isfinite(top):
        return float(top)
    return float(top + np.log(np.sum(np.exp(terms - top))))


def _log_energy_gradient(x: np.ndarray, exponent: float) -> np.ndarray:
    """The gradient of ``_log_energy`` with respect to ``x``: ``(n, k)``.

    ``d log E / d x_i = -s sum_j (t_ij / E) (x_i - x_j) / |x_i - x_j|^2`` with
    ``t_ij = |x_i - x_j|^-s``; the weights ``t_ij / E`` are formed in the log domain."""
    difference = x[:, None, :] - x[None, :, :]  # (n, n, k)
    squared = np.sum(difference ** 2, axis=2)
    np.fill_diagonal(squared, np.inf)  # a point does not repel itself
    terms = -0.5 * exponent * np.log(squared)
    top = terms.max()
    log_energy = top + np.log(0.5 * np.sum(np.exp(terms - top)))  # each pair counted twice
    share = np.exp(terms - log_energy) / squared  # (t_ij / E) / |x_i - x_j|^2
    return -exponent * np.einsum("ij,ijk->ik", share, difference)


def riesz_energy_weights(num_objectives: int, num_points: int, seed: int = 0, *,
                         exponent: float | None = None, include_extremes: bool = True,
                         max_iterations: int = 500) -> np.ndarray:
    """``num_points`` weight vectors spread evenly over the simplex by minimising their Riesz
    s-energy ``sum_{i<j} |w_i - w_j|^-s`` (the "energy" reference directions of the
    many-objective optimisation literature): ``(num_points, k)`` float64.

    Unlike the lattice, any count is possible. Rows are non-negative and sum to 1. With
    ``include_extremes`` (and ``num_points >= k``) the first ``k`` rows are the unit vectors,
    held fixed, so each objective alone is among the preferences. ``exponent`` ``s`` defaults
    to ``2 k``: above the simplex's dimension ``k - 1`` (the hypersingular case, where energy
    minimisers are asymptotically uniform, Hardin & Saff, rather than crowded towards the
    boundary), and large enough to push hard on the closest pairs.
    The optimiser is projected gradient descent on ``log E`` with a backtracking step (each
    accepted step lowers the energy), from a Dirichlet(1) draw seeded by ``seed``: the same
    arguments give the same weights.
    """
    k = _require_count(num_objectives, "num_objectives", 2)
    n = _require_count(num_points, "num_points", 1)
    max_iterations = _require_count(max_iterations, "max_iterations", 0)
    s = 2.0 * k if exponent is None else float(exponent)
    if not np.isfinite(s) or s <= 0:
        raise ValueError(f"exponent must be a positive finite number; got {exponent!r}.")
    rng = np.random.default_rng(seed)
    fixed = np.zeros(n, dtype=bool)
    if include_extremes and n >= k:
        x = np.concatenate([np.eye(k), rng.dirichlet(np.ones(k), size=n - k)])
        fixed[:k] = True
    else:
        x = rng.dirichlet(np.ones(k), size=n)
    if n == 1 or fixed.all():
        # Nothing to spread: a single weight goes to the centre.
        return x if fixed.all() else np.full((1, k), 1.0 / k)
    energy = _log_energy(x, s)
    step = 0.5 / n ** (1.0 / (k - 1))  # about the spacing of n evenly spread points
    for _ in range(max_iterations):
        gradient = _log_energy_gradient(x, s)
        gradient -= gradient.mean(axis=1, keepdims=True)  # move within the plane sum(w) = 1
        gradient[fixed] = 0.0
        scale = np.sqrt(np.sum(gradient ** 2, axis=1)).max()
        if scale == 0:
            break
        direction = -gradient / scale  # the largest move of a point is `step`
        while step > 1e-9:
            candidate = _project_to_simplex(x + step * direction)
            candidate[fixed] = x[fixed]
            candidate_energy = _log_energy(candidate, s)
            if candidate_energy < energy:
                x, energy, step = candidate, candidate_energy, step * 1.5
                break
            step *= 0.5
        else:
            break  # no step lowers the energy: a (local) minimum
    return x / x.sum(axis=1, keepdims=True)


# --- metrics --------------------------------------------------------------------------------


def _best_utilities(front: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """``max_p w . p`` for each weight: ``(m,)``."""
    return (weights @ front.T).max(axis=1)


def expected_utility(front: Any, weights: Any) -> float:
    """The mean over weights ``(m, k)`` of the best linear utility ``max_p w . p`` the front
    ``(n, k)`` offers: what a user with a uniformly drawn preference gets (Zintgraf et al.)."""
    points = _as_points(front, "front")
    _require_nonempty(points, "front")
    return float(np.mean(_best_utilities(points, _as_weights(weights, points.shape[1]))))


def maximum_utility_loss(front: Any, true_front: Any, weights: Any) -> float:
    """The worst utility lost, over weights ``(m, k)``, by picking from ``front`` ``(n, k)``
    instead of ``true_front`` ``(t, k)``: ``max_w (max_true w . v - max_front w . v)``.
    0 when the front attains the true front's best at every weight; negative only if the
    front beats the "true" one at every weight."""
    points = _as_points(front, "front")
    truth = _as_points(true_front, "true_front")
    _require_nonempty(points, "front")
    _require_nonempty(truth, "true_front")
    _same_objectives(points, truth, "true_front")
    w = _as_weights(weights, points.shape[1])
    return float(np.max(_best_utilities(truth, w) - _best_utilities(points, w)))


def igd(front: Any, true_front: Any, *, normalize: bool = False) -> float:
    """Inverted generational distance: the mean over the true front's points ``(t, k)`` of the
    Euclidean distance to the nearest point of ``front`` ``(n, k)`` (0 when the front covers
    the true front).

    By default (``normalize=False``) distances are in the objectives' own units. With
    ``normalize=True`` each objective is first divided by the true front's range in it
    (``max - min``; an objective with zero range is left as it is), so objectives on different
    scales weigh alike.
    """
    points = _as_points(front, "front")
    truth = _as_points(true_front, "true_front")
    _require_nonempty(points, "front")
    _require_nonempty(truth, "true_front")
    _same_objectives(points, truth, "true_front")
    if normalize:
        span = truth.max(axis=0) - truth.min(axis=0)
        span = np.where(span > 0, span, 1.0)
        points, truth = points / span, truth / span
    distances = np.sqrt(np.sum((truth[:, None, :] - points[None, :, :]) ** 2, axis=2))
    return float(np.mean(distances.min(axis=1)))


def sparsity(front: Any) -> float:
    """PGMORL's sparsity (Xu et al. 2020) of ``front`` ``(n, k)``: for each objective, the
    squared gaps between consecutive values of its sorted column, summed over gaps and over
    objectives (the paper's definition and its code sum over objectives), divided by
    ``n - 1``. Lower is denser. 0 for fewer than 2 points. Computed on the rows as given: pass
    the non-dominated front (``front_metrics`` does)."""
    points = _as_points(front, "front")
    if len(points) < 2:
        return 0.0
    gaps = np.diff(np.sort(points, axis=0), axis=0)  # (n - 1, k)
    return float(np.sum(gaps ** 2) / (len(points) - 1))


def cardinality(front: Any) -> int:
    """The number of distinct non-dominated points of ``front`` ``(n, k)``."""
    return int(pareto_mask(front).sum())


def crowding_distance(points: Any) -> np.ndarray:
    """NSGA-II's crowding distance of each row of ``points`` ``(n, k)``: ``(n,)`` float64.

    Per objective, the points are sorted; the two extremes get infinity and every other point
    the gap between its two neighbours divided by the objective's range (an objective with
    zero range adds nothing). The distances are summed over objectives: a larger one means a
    less crowded point, which an archive keeps first (C-MORL's selection). With ``n <= 2``
    every point is an extreme.
    """
    array = _as_points(points)
    n, k = array.shape
    distance = np.zeros(n)
    if n <= 2:
        return np.full(n, np.inf)
    for objective in range(k):
        order = np.argsort(array[:, objective], kind="stable")
        values = array[order, objective]
        span = values[-1] - values[0]
        if span > 0:
            distance[order[1:-1]] += (values[2:] - values[:-2]) / span
        distance[order[[0, -1]]] = np.inf
    return distance


def front_metrics(front: Any, reference_point: Any, weights: Any,
                  true_front: Any | None = None) -> dict[str, float | int]:
    """The metrics of a front ``(n, k)`` in one dict, computed on its distinct non-dominated
    points: ``hypervolume`` (above ``reference_point`` ``(k,)``), ``expected_utility`` (over
    ``weights`` ``(m, k)``), ``sparsity``, ``cardinality``; given ``true_front`` ``(t, k)``
    also ``maximum_utility_loss`` (same weights) and ``igd`` (unnormalised)."""
    points = _as_points(front, "front")
    nondominated = points[_nondominated(points)]
    metrics: dict[str, float | int] = {
        "hypervolume": hypervolume(nondominated, reference_point),
        "expected_utility": expected_utility(nondominated, weights),
        "sparsity": sparsity(nondominated),
        "cardinality": len(nondominated),
    }
    if true_front is not None:
        metrics["maximum_utility_loss"] = maximum_utility_loss(nondominated, true_front, weights)
        metrics["igd"] = igd(nondominated, true_front)
    return metrics


# --- files ----------------------------------------------------------------------------------


def _objective_names(names: Sequence[str] | None, num_objectives: int) -> list[str]:
    if names is None:
        return [f"objective_{i}" for i in range(num_objectives)]
    names = [str(name) for name in names]
    if len(names) != num_objectives:
        raise ValueError(f"names has {len(names)} entries but the points have "
                         f"{num_objectives} objectives.")
    if len(set(names)) != len(names):
        raise ValueError(f"objective names must be distinct; got {names}.")
    return names


def _to_json(value: Any) -> Any:
    """``json.dump``'s fallback for NumPy and JAX values in ``extra``."""
    if isinstance(value, (np.ndarray, np.generic, jax.Array)):
        return np.asarray(value).tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"write_front cannot write a {type(value).__name__} to JSON: {value!r}.")


def write_front(path_prefix: str | Path, points: Any, names: Sequence[str] | None = None,
                extra: Mapping[str, Any] | None = None) -> tuple[Path, Path]:
    """Write a front ``(n, k)`` as ``<path_prefix>.csv`` and ``<path_prefix>.json``; returns
    both paths (parent folders are created).

    The CSV has one row per policy: ``policy`` (its row index), one column per objective
    (``names``, default ``objective_0 ...``) and ``non_dominated`` (1 or 0). The JSON holds
    ``objective_names``, ``points`` (a list of rows), ``non_dominated`` and ``metadata``
    (``extra``: anything JSON can hold, NumPy arrays included, e.g. each policy's preference
    weights or the run's seed). Floats are written with full precision.
    """
    array = _as_points(points)
    objective_names = _objective_names(names, array.shape[1])
    header = ["policy", *objective_names, "non_dominated"]
    if len(set(header)) != len(header):
        raise ValueError(f"objective names may not be 'policy' or 'non_dominated'; got "
                         f"{objective_names}.")
    mask = _nondominated(array)
    prefix = Path(path_prefix)
    prefix.parent.mkdir(parents=True, exist_ok=True)
    csv_path = prefix.with_name(prefix.name + ".csv")
    json_path = prefix.with_name(prefix.name + ".json")
    with csv_path.open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(header)
        for index, (row, keep) in enumerate(zip(array, mask)):
            writer.writerow([index, *(repr(float(v)) for v in row), int(keep)])
    record = {"objective_names": objective_names, "points": array.tolist(),
              "non_dominated": mask.tolist(), "metadata": dict(extra or {})}
    # allow_nan=False: the file stays standard JSON (a NaN in extra raises instead).
    json_path.write_text(json.dumps(record, indent=2, default=_to_json, allow_nan=False) + "\n")
    return csv_path, json_path


def _staircase(front: np.ndarray, reference: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The boundary of the region a non-dominated 2-D front ``(n, 2)`` dominates above
    ``reference`` ``(2,)``: the x and y of a polyline from the reference point's x axis value
    across to each point and down to the next, ending on the reference point's y."""
    inside = front[np.all(front > reference, axis=1)]
    if len(inside) == 0:
        return np.empty(0), np.empty(0)
    inside = inside[np.argsort(inside[:, 0])]  # non-dominated: y falls as x grows
    xs, ys = [reference[0]], [inside[0, 1]]
    following = np.append(inside[1:, 1], reference[1])
    for (x, y), next_y in zip(inside, following):
        xs += [x, x]
        ys += [y, next_y]
    return np.array(xs), np.array(ys)


def plot_front(points: Any, path: str | Path, true_front: Any | None = None,
               reference_point: Any | None = None,
               objective_names: Sequence[str] | None = None) -> Path:
    """Draw a front ``(n, k)``, ``k >= 2``, to the PNG ``path`` and return it.

    ``k = 2``: a scatter, the non-dominated points in colour, dominated ones grey, the
    dominated region's boundary when ``reference_point`` ``(k,)`` is given. ``k >= 3``: a
    lower-triangular grid of 2-D projections, one panel per pair of objectives. The true front
    ``(t, k)``, when given, is drawn as hollow circles. Uses a standalone ``Figure`` on the Agg
    canvas (no pyplot), so a caller's backend, e.g. a notebook's, is left alone.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    array = _as_points(points)
    k = array.shape[1]
    if k < 2:
        raise ValueError(f"plot_front draws fronts of 2 or more objectives; got {k}.")
    truth = None if true_front is None else _as_points(true_front, "true_front")
    if truth is not None:
        _same_objectives(array, truth, "true_front")
    reference = None if reference_point is None else _as_reference(reference_point, k)
    names = _objective_names(objective_names, k)
    mask = _nondominated(array)

    def draw(axis: Any, i: int, j: int, legend: bool) -> None:
        if truth is not None:
            axis.scatter(truth[:, i], truth[:, j], s=60, facecolors="none",
                         edgecolors="tab:orange", label="true front")
        axis.scatter(array[~mask, i], array[~mask, j], s=14, color="0.6", label="dominated")
        axis.scatter(array[mask, i], array[mask, j], s=20, color="tab:blue",
                     label="non-dominated")
        if reference is not None:
            axis.scatter([reference[i]], [reference[j]], marker="+", s=80, color="black",
                         label="reference point")
        axis.set_xlabel(names[i])
        axis.set_ylabel(names[j])
        axis.grid(alpha=0.3)
        if legend:
            axis.legend(loc="best", fontsize="small")

    if k == 2:
        figure = Figure(figsize=(5.5, 4.5))
        axis = figure.subplots()
        if reference is not None:
            xs, ys = _staircase(array[mask], reference)
            axis.plot(xs, ys, color="tab:blue", alpha=0.5, linewidth=1)
        draw(axis, 0, 1, legend=True)
    else:
        figure = Figure(figsize=(3.0 * (k - 1), 3.0 * (k - 1)))
        axes = np.asarray(figure.subplots(k - 1, k - 1, squeeze=False))
        for row in range(k - 1):
            for column in range(k - 1):
                if column > row:
                    axes[row, column].set_axis_off()
                else:  # objective `column` across, objective `row + 1` up
                    draw(axes[row, column], column, row + 1, legend=False)
        # The legend goes in the empty upper-right panel, clear of the points.
        axes[0, -1].legend(*axes[0, 0].get_legend_handles_labels(), loc="center")
    figure.suptitle(f"{int(mask.sum())} non-dominated of {len(array)} point(s)")
    figure.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    FigureCanvasAgg(figure).print_png(str(path))
    return path
