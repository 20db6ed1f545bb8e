"""Pareto fronts and multi-objective metrics (``jaxrl_suite/run/pareto.py``, DESIGN.md s5):
values computed by hand, hypervolumes against independent exact counts, the weight sets, the
files and pictures."""

from __future__ import annotations

import csv
import itertools
import json
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jaxrl_suite.run import pareto

# Deep Sea Treasure's convex front, (treasure, time) per policy: MO-Gymnasium's
# deep-sea-treasure-v0, CONVEX_FRONT in mo_gymnasium/envs/deep_sea_treasure/deep_sea_treasure.py
# (commit 17aa396b2608f68c59b23a43b3876391d216d053).
DST_FRONT = np.array([[0.7, -1], [8.2, -3], [11.5, -5], [14.0, -7], [15.1, -8], [16.1, -9],
                      [19.6, -13], [20.3, -14], [22.4, -17], [23.7, -19]])


def _inclusion_exclusion(points, reference):
    """Hypervolume as the signed sum over every non-empty subset of its boxes' intersection,
    ``[reference, min over the subset]``: exact for any floats, exponential in the count."""
    shifted = np.asarray(points, float) - reference
    total = 0.0
    for size in range(1, len(shifted) + 1):
        for subset in itertools.combinations(range(len(shifted)), size):
            corner = shifted[list(subset)].min(axis=0)
            total += (-1) ** (size + 1) * np.prod(np.maximum(corner, 0.0))
    return total


def _count_cells(points, side):
    """Hypervolume above 0 of integer points in {0..side}^k, by counting the unit cells
    [c, c + 1] some point covers (p >= c + 1 in every objective)."""
    k = points.shape[1]
    cells = np.array(list(itertools.product(range(side), repeat=k)))  # (side^k, k)
    covered = np.any(np.all(points[None, :, :] >= cells[:, None, :] + 1, axis=2), axis=1)
    return int(covered.sum())


def _min_pairwise_distance(points):
    distances = np.sqrt(np.sum((points[:, None] - points[None]) ** 2, axis=2))
    np.fill_diagonal(distances, np.inf)
    return distances.min()


# --- Pareto filtering -----------------------------------------------------------------------


def test_pareto_mask_drops_dominated_points_and_repeats():
    points = np.array([[1, 2], [2, 1], [1, 2], [0, 0], [2, 1], [1, 1.5], [2, 0.5], [-1, 3]])
    # [1, 1.5] and [2, 0.5] are weakly dominated (equal in one objective, worse in the other);
    # [-1, 3] is the best in the second objective.
    expected = [True, True, False, False, False, False, False, True]
    assert pareto.pareto_mask(points).tolist() == expected
    np.testing.assert_array_equal(pareto.pareto_front(points), [[1, 2], [2, 1], [-1, 3]])
    assert pareto.cardinality(points) == 3


def test_pareto_mask_of_empty_and_single_sets():
    assert pareto.pareto_mask(np.zeros((0, 3))).shape == (0,)
    assert pareto.pareto_mask([[1.0, 2.0, 3.0]]).tolist() == [True]
    assert pareto.pareto_mask([[5.0], [3.0], [5.0]]).tolist() == [True, False, False]


def test_pareto_mask_jax_matches_numpy_inside_jit():
    rng = np.random.default_rng(0)
    points = rng.integers(0, 4, size=(40, 3)).astype(np.float32)  # many repeats and ties
    jitted = jax.jit(pareto.pareto_mask_jax)
    np.testing.assert_array_equal(np.asarray(jitted(points)), pareto.pareto_mask(points))
    batch = rng.integers(0, 4, size=(5, 12, 2)).astype(np.float32)
    for mask, points in zip(jax.jit(jax.vmap(pareto.pareto_mask_jax))(batch), batch):
        np.testing.assert_array_equal(np.asarray(mask), pareto.pareto_mask(points))
    assert pareto.pareto_mask_jax(jnp.zeros((0, 2))).shape == (0,)


# --- hypervolume ----------------------------------------------------------------------------


def test_deep_sea_treasure_hypervolume_is_its_rectangles():
    # Above the reference point (0, -25), the front sorted by treasure adds one rectangle per
    # point: (its treasure - the previous treasure) wide, (its time + 25) high.
    by_hand = (0.7 * 24 + (8.2 - 0.7) * 22 + (11.5 - 8.2) * 20 + (14.0 - 11.5) * 18
               + (15.1 - 14.0) * 17 + (16.1 - 15.1) * 16 + (19.6 - 16.1) * 12
               + (20.3 - 19.6) * 11 + (22.4 - 20.3) * 8 + (23.7 - 22.4) * 6)
    assert by_hand == pytest.approx(401.8)
    assert pareto.hypervolume(DST_FRONT, [0.0, -25.0]) == pytest.approx(by_hand, abs=1e-9)
    shuffled = DST_FRONT[np.random.default_rng(1).permutation(len(DST_FRONT))]
    dominated = DST_FRONT - [0.5, 0.5]  # each a little worse than a front point
    assert pareto.hypervolume(np.concatenate([dominated, shuffled]), [0.0, -25.0]) == \
        pytest.approx(by_hand, abs=1e-9)


def test_three_objective_hypervolume_by_inclusion_exclusion():
    a, b, c = [2, 2, 1], [1, 1, 3], [3, 1, 2]
    # |A| + |B| + |C| - |A^B| - |A^C| - |B^C| + |A^B^C|, with ^ the elementwise minimum:
    # 4 + 3 + 6 - |(1,1,1)| - |(2,1,1)| - |(1,1,2)| + |(1,1,1)| = 13 - 1 - 2 - 2 + 1
    assert pareto.hypervolume([a, b, c], [0, 0, 0]) == pytest.approx(9.0)
    # Shifted reference point, one point equal to it in one objective (no volume) and one
    # below it: (2-1)(3-1)(2-1) + (3-1)(2-1)(3-1) - (2-1)(2-1)(2-1) = 2 + 4 - 1
    points = [[2, 3, 2], [3, 2, 3], [1, 5, 5], [0, 9, 9]]
    assert pareto.hypervolume(points, [1, 1, 1]) == pytest.approx(5.0)
    assert pareto.hypervolume([[1, 5, 5]], [1, 1, 1]) == 0.0
    assert pareto.hypervolume(np.zeros((0, 3)), [0, 0, 0]) == 0.0


@pytest.mark.parametrize("k", [1, 2, 3, 4, 5])
def test_hypervolume_of_random_floats_is_inclusion_exclusion(k):
    rng = np.random.default_rng(k)
    for _ in range(8):
        points = rng.uniform(-0.3, 1.0, size=(int(rng.integers(1, 9)), k))
        reference = rng.uniform(-0.2, 0.1, size=k)
        assert pareto.hypervolume(points, reference) == \
            pytest.approx(_inclusion_exclusion(points, reference), rel=1e-12, abs=1e-12)


@settings(max_examples=25, deadline=None)
@given(k=st.integers(2, 6), seed=st.integers(0, 2**32 - 1), count=st.integers(1, 25))
def test_hypervolume_of_integer_sets_is_the_count_of_covered_cells(k, seed, count):
    side = {2: 9, 3: 6, 4: 5, 5: 4, 6: 3}[k]
    points = np.random.default_rng(seed).integers(0, side + 1, size=(count, k))
    assert pareto.hypervolume(points, np.zeros(k)) == pytest.approx(_count_cells(points, side))


def test_hypervolume_of_a_larger_front_is_bounded_by_its_shape():
    # 150 points on the unit sphere's positive part: the volume under the sphere, pi/6, bounds
    # it from above and the boxes of the points only grow as points are added.
    rng = np.random.default_rng(2)
    points = np.abs(rng.normal(size=(150, 3)))
    points /= np.linalg.norm(points, axis=1, keepdims=True)
    volume = pareto.hypervolume(points, np.zeros(3))
    assert pareto.hypervolume(points[:75], np.zeros(3)) < volume < math.pi / 6


def test_hypervolume_errors_are_clear():
    with pytest.raises(ValueError, match="reference_point has 3 values but the points have 2"):
        pareto.hypervolume([[1.0, 2.0]], [0.0, 0.0, 0.0])
    with pytest.raises(ValueError, match=r"non-finite values .* row\(s\) \[1\]"):
        pareto.hypervolume([[1.0, 2.0], [np.nan, 1.0]], [0.0, 0.0])
    with pytest.raises(ValueError, match="reference_point must be finite"):
        pareto.hypervolume([[1.0, 2.0]], [0.0, -np.inf])
    with pytest.raises(ValueError, match=r"shape \(n, k\).*got shape \(2,\)"):
        pareto.hypervolume([1.0, 2.0], [0.0, 0.0])


# --- weight sets ----------------------------------------------------------------------------


def test_equally_spaced_weights_are_the_simplex_lattice():
    weights = pareto.equally_spaced_weights(3, partitions=4)
    assert weights.shape == (math.comb(6, 2), 3) == (15, 3)
    np.testing.assert_allclose(weights.sum(axis=1), 1.0)
    assert (weights >= 0).all()
    assert len({tuple(row) for row in weights}) == 15
    np.testing.assert_allclose(weights * 4, np.round(weights * 4))  # multiples of 1/4
    np.testing.assert_array_equal(weights[0], [1, 0, 0])
    # num_points: the largest lattice with at most that many rows (H = 4 gives 15, H = 5 21).
    assert pareto.equally_spaced_weights(3, 20).shape == (15, 3)
    assert pareto.equally_spaced_weights(3, 21).shape == (21, 3)
    two = pareto.equally_spaced_weights(2, 11)
    np.testing.assert_allclose(sorted(two[:, 0]), np.linspace(0, 1, 11))
    np.testing.assert_array_equal(pareto.equally_spaced_weights(1, 5), [[1.0]])


def test_equally_spaced_weights_errors():
    with pytest.raises(ValueError, match="exactly one of num_points and partitions"):
        pareto.equally_spaced_weights(3)
    with pytest.raises(ValueError, match="exactly one"):
        pareto.equally_spaced_weights(3, 10, partitions=2)
    with pytest.raises(ValueError, match=r"at least num_objectives \(3\)"):
        pareto.equally_spaced_weights(3, 2)
    with pytest.raises(ValueError, match="num_objectives must be an integer >= 1"):
        pareto.equally_spaced_weights(0, partitions=2)


def test_riesz_energy_weights_spread_evenly_and_reproducibly():
    weights = pareto.riesz_energy_weights(3, 28, seed=0)
    assert weights.shape == (28, 3)
    np.testing.assert_allclose(weights.sum(axis=1), 1.0, atol=1e-12)
    assert (weights >= 0).all()
    np.testing.assert_array_equal(weights[:3], np.eye(3))  # the single-objective preferences
    # Far more evenly spread than random points on the simplex, and close to the lattice's
    # spacing for the same count (H = 6: sqrt(2) / 6).
    random = np.random.default_rng(0).dirichlet(np.ones(3), size=28)
    assert _min_pairwise_distance(weights) > 5 * _min_pairwise_distance(random)
    assert _min_pairwise_distance(weights) > 0.9 * math.sqrt(2) / 6
    np.testing.assert_array_equal(weights, pareto.riesz_energy_weights(3, 28, seed=0))
    assert not np.array_equal(pareto.riesz_energy_weights(3, 10, seed=1),
                              pareto.riesz_energy_weights(3, 10, seed=2))
    four = pareto.riesz_energy_weights(4, 7, seed=3, include_extremes=False)
    assert four.shape == (7, 4) and (four >= 0).all()
    np.testing.assert_allclose(four.sum(axis=1), 1.0, atol=1e-12)
    np.testing.assert_allclose(pareto.riesz_energy_weights(3, 1), [[1 / 3] * 3])
    with pytest.raises(ValueError, match="num_objectives must be an integer >= 2"):
        pareto.riesz_energy_weights(1, 4)
    with pytest.raises(ValueError, match="exponent must be a positive"):
        pareto.riesz_energy_weights(3, 4, exponent=-1.0)


# --- metrics --------------------------------------------------------------------------------

TINY_FRONT = np.array([[1.0, 0.0], [0.0, 1.0], [0.6, 0.6]])
TINY_WEIGHTS = np.array([[1.0, 0.0], [0.5, 0.5], [0.0, 1.0]])


def test_expected_utility_and_maximum_utility_loss_by_hand():
    # Best w . v per weight: 1 ([1, 0]), 0.6 ([0.6, 0.6]), 1 ([0, 1]).
    assert pareto.expected_utility(TINY_FRONT, TINY_WEIGHTS) == pytest.approx((1 + 0.6 + 1) / 3)
    true_front = np.concatenate([TINY_FRONT, [[0.8, 0.8]]])
    # The true front's best is 1, 0.8, 1: the front loses 0, 0.2, 0.
    assert pareto.maximum_utility_loss(TINY_FRONT, true_front, TINY_WEIGHTS) == \
        pytest.approx(0.2)
    assert pareto.maximum_utility_loss(true_front, true_front, TINY_WEIGHTS) == 0.0
    with pytest.raises(ValueError, match="weights have 3 columns but the front has 2"):
        pareto.expected_utility(TINY_FRONT, np.ones((2, 3)) / 3)
    with pytest.raises(ValueError, match="front is empty"):
        pareto.expected_utility(np.zeros((0, 2)), TINY_WEIGHTS)


def test_igd_by_hand():
    true_front = np.array([[0.0, 1.0], [1.0, 0.0]])
    # Distances from the true points to [0, 0.5]: 0.5 and sqrt(1 + 0.25).
    assert pareto.igd([[0.0, 0.5]], true_front) == pytest.approx((0.5 + math.sqrt(1.25)) / 2)
    assert pareto.igd(true_front, true_front) == 0.0
    # Normalised by the true front's range (2 and 1): the points [0, 1], [1, 0] and [0, 0].
    wide = np.array([[0.0, 1.0], [2.0, 0.0]])
    assert pareto.igd([[0.0, 0.0]], wide) == pytest.approx((1 + 2) / 2)
    assert pareto.igd([[0.0, 0.0]], wide, normalize=True) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="true_front has 3 objectives but the front has 2"):
        pareto.igd([[0.0, 0.0]], [[0.0, 0.0, 0.0]])


def test_sparsity_by_hand():
    # Each objective's sorted column is 0, 1, 3: squared gaps 1 + 4, over 2 objectives, / (3-1).
    assert pareto.sparsity([[0, 3], [1, 1], [3, 0]]) == pytest.approx((5 + 5) / 2)
    assert pareto.sparsity([[2, 2, 2]]) == 0.0
    assert pareto.sparsity(np.zeros((0, 2))) == 0.0


def test_crowding_distance_by_hand():
    points = np.array([[0, 6], [2, 5], [3, 1], [4, 0]], dtype=float)
    # Objective 0 (range 4): [2, 5] has neighbours 0 and 3, [3, 1] has 2 and 4.
    # Objective 1 (range 6): [3, 1] has neighbours 0 and 5, [2, 5] has 1 and 6.
    distance = pareto.crowding_distance(points)
    assert np.isinf(distance[[0, 3]]).all()
    assert distance[1] == pytest.approx(3 / 4 + 5 / 6)
    assert distance[2] == pytest.approx(2 / 4 + 5 / 6)
    assert np.isinf(pareto.crowding_distance([[1.0, 2.0], [2.0, 1.0]])).all()
    assert pareto.crowding_distance(np.zeros((0, 2))).shape == (0,)


def test_front_metrics_collects_the_metrics_of_the_nondominated_points():
    front = np.concatenate([TINY_FRONT, [[0.5, 0.5], [1.0, 0.0]]])  # a dominated point, a repeat
    true_front = np.concatenate([TINY_FRONT, [[0.8, 0.8]]])
    metrics = pareto.front_metrics(front, [-1.0, -1.0], TINY_WEIGHTS)
    assert metrics == {
        # Above (-1, -1), by decreasing first objective: 2 x 1, then 1.6 x (1.6 - 1), 1 x 0.4.
        "hypervolume": pytest.approx(2 * 1 + 1.6 * 0.6 + 1 * 0.4),
        "expected_utility": pytest.approx(2.6 / 3),
        "sparsity": pytest.approx(pareto.sparsity(TINY_FRONT)),
        "cardinality": 3,
    }
    with_truth = pareto.front_metrics(front, [-1.0, -1.0], TINY_WEIGHTS, true_front)
    assert with_truth["maximum_utility_loss"] == pytest.approx(0.2)
    assert with_truth["igd"] == pytest.approx(math.dist([0.8, 0.8], [0.6, 0.6]) / 4)


# --- files ----------------------------------------------------------------------------------


def test_write_front_writes_csv_and_json(tmp_path):
    points = np.array([[1.0, 2.0], [0.5, 0.5], [2.0, 1.0 / 3.0]])
    weights = np.array([[0.2, 0.8], [0.5, 0.5], [0.8, 0.2]], dtype=np.float32)
    csv_path, json_path = pareto.write_front(tmp_path / "fronts" / "final", points,
                                             names=["treasure", "time"],
                                             extra={"weights": weights, "seed": np.int64(3)})
    assert csv_path == tmp_path / "fronts" / "final.csv" and json_path.suffix == ".json"
    with csv_path.open(newline="") as file:
        rows = list(csv.DictReader(file))
    assert list(rows[0]) == ["policy", "treasure", "time", "non_dominated"]
    assert [row["non_dominated"] for row in rows] == ["1", "0", "1"]
    assert float(rows[2]["time"]) == 1.0 / 3.0  # full precision
    record = json.loads(json_path.read_text())
    assert record["objective_names"] == ["treasure", "time"]
    np.testing.assert_array_equal(record["points"], points)
    assert record["non_dominated"] == [True, False, True]
    np.testing.assert_allclose(record["metadata"]["weights"], weights)
    assert record["metadata"]["seed"] == 3
    with pytest.raises(ValueError, match="names has 1 entries but the points have 2"):
        pareto.write_front(tmp_path / "bad", points, names=["treasure"])


@pytest.mark.parametrize("k", [2, 3])
def test_plot_front_writes_a_png(tmp_path, k):
    rng = np.random.default_rng(k)
    points = rng.uniform(0, 1, size=(12, k))
    true_front = pareto.pareto_front(rng.uniform(0, 1.2, size=(30, k)))
    path = pareto.plot_front(points, tmp_path / f"front_{k}.png", true_front=true_front,
                             reference_point=np.zeros(k),
                             objective_names=[f"r{i}" for i in range(k)])
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="2 or more objectives"):
        pareto.plot_front([[1.0], [2.0]], tmp_path / "one.png")
