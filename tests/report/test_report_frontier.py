"""Pareto frontier and interpolation on hand-made points; aggregation rules (dev chooses, test reports)."""

from __future__ import annotations

import math

import pytest

from pyramid_bert.report.aggregate import aggregate
from pyramid_bert.report.frontier import Interpolation, locate, pareto_frontier, value_at
from pyramid_bert.sweep.spec import TrialSpec
from pyramid_bert.sweep.store import TrialRecord


def test_frontier_keeps_only_non_dominated_points_in_increasing_speedup():
    xs = [1.0, 1.5, 2.0, 2.5, 3.0, 1.2]
    ys = [0.90, 0.88, 0.89, 0.80, 0.70, 0.85]
    # (1.5, .88) is dominated by (2.0, .89); (1.2, .85) by (1.5, .88) and (2.0, .89)
    assert pareto_frontier(xs, ys) == [0, 2, 3, 4]


def test_frontier_of_equal_speedups_keeps_the_best_metric():
    assert pareto_frontier([2.0, 2.0, 1.0], [0.7, 0.8, 0.9]) == [2, 1]


def test_frontier_keeps_one_of_exact_duplicates():
    assert pareto_frontier([2.0, 2.0, 1.0], [0.8, 0.8, 0.9]) == [2, 0]


def test_frontier_drops_points_with_equal_metric_and_less_speed():
    # equal metric: the faster point dominates the slower one
    assert pareto_frontier([1.0, 2.0], [0.8, 0.8]) == [1]


def test_frontier_of_nothing_is_empty_and_lengths_must_match():
    assert pareto_frontier([], []) == []
    with pytest.raises(ValueError, match="same length"):
        pareto_frontier([1.0], [])


def test_interpolation_is_linear_between_the_neighbouring_frontier_points():
    xs, ys = [1.0, 2.0, 4.0], [0.9, 0.8, 0.6]
    assert value_at(xs, ys, 1.5) == pytest.approx(0.85)
    assert value_at(xs, ys, 3.0) == pytest.approx(0.7)
    assert value_at(xs, ys, 3.5) == pytest.approx(0.65)


def test_interpolation_hits_measured_points_exactly_including_the_ends():
    xs, ys = [1.0, 2.0, 4.0], [0.9, 0.8, 0.6]
    assert value_at(xs, ys, 1.0) == pytest.approx(0.9)
    assert value_at(xs, ys, 2.0) == pytest.approx(0.8)
    assert value_at(xs, ys, 4.0) == pytest.approx(0.6)


def test_no_extrapolation_outside_the_measured_range():
    xs, ys = [1.2, 2.0, 2.8], [0.9, 0.8, 0.7]
    assert value_at(xs, ys, 3.0) is None
    assert value_at(xs, ys, 3.5) is None
    assert value_at(xs, ys, 1.0) is None
    assert value_at([], [], 1.5) is None


def test_interpolation_uses_the_frontier_not_dominated_points():
    # (2.0, 0.5) is dominated by (2.5, 0.8): 2X must interpolate 1.0 -> 2.5, not use 0.5
    xs, ys = [1.0, 2.0, 2.5], [0.9, 0.5, 0.8]
    assert value_at(xs, ys, 2.0) == pytest.approx(0.9 + (0.8 - 0.9) * (1.0 / 1.5))


def test_locate_returns_weights_that_reproduce_the_value():
    where = locate([1.0, 3.0], 2.5)
    assert where == Interpolation(0, 1, 0.75)
    assert where.apply([10.0, 20.0]) == pytest.approx(17.5)
    with pytest.raises(ValueError, match="increasing"):
        locate([2.0, 1.0], 1.5)


def _record(method, seed, dev, test, speedup, *, m=1, schedule="s", lengths=(8,), space=0.5, ok=True):
    spec = TrialSpec(task="toy", model="tiny", method=method, schedule=schedule,
                     lengths=None if method == "dense" else lengths, m=m, seed=seed)  # fmt: skip
    result = {"dev_metric": dev, "test_metric": test, "speedup_median": speedup, "space_reduction": space,
              "metric_name": "accuracy"}  # fmt: skip
    return TrialRecord(spec=spec, status="ok" if ok else "failed", result=result if ok else {}, error=None if ok else "boom")


def test_cell_is_mean_and_std_over_seeds_with_the_same_interpolation_weights():
    records = [
        _record("dense", 0, 0.90, 0.90, 1.0),
        _record("dense", 1, 0.92, 0.92, 1.0),
        _record("random", 0, 0.80, 0.80, 3.0, lengths=(4,)),
        _record("random", 1, 0.84, 0.70, 3.0, lengths=(4,)),
    ]
    task = aggregate(records)["toy"]
    # frontier: dense anchor (1.0X, test mean .91) -> random (3.0X, test mean .75); at 2X: halfway
    cell = task.cell("Rand", "speedup", 2.0)
    assert cell.mean == pytest.approx((0.91 + 0.75) / 2)
    per_seed = [(0.90 + 0.80) / 2, (0.92 + 0.70) / 2]
    assert cell.std == pytest.approx(math.sqrt(sum((v - sum(per_seed) / 2) ** 2 for v in per_seed)))
    assert cell.seeds == 2
    assert task.cell("Rand", "speedup", 3.5) is None  # beyond the fastest measured configuration
    assert task.cell("Att", "speedup", 2.0) is None  # no trials of that method
    assert not task.has_points("Att")


def test_without_the_dense_anchor_the_range_starts_at_the_slowest_configuration():
    records = [_record("dense", 0, 0.9, 0.9, 1.0), _record("random", 0, 0.8, 0.8, 3.0, lengths=(4,))]
    assert aggregate(records, dense_anchor=False)["toy"].cell("Rand", "speedup", 2.0) is None


def test_cs_opt_chooses_m_on_dev_and_reports_test():
    records = [
        _record("dense", 0, 0.9, 0.9, 1.0),
        # m = 1: best on dev, worse on test; m = k-1: worse on dev, better on test
        _record("coreset", 0, 0.85, 0.70, 3.0, m=1, lengths=(4,)),
        _record("coreset", 0, 0.80, 0.80, 3.0, m=None, lengths=(4,)),
    ]
    task = aggregate(records)["toy"]
    assert task.cell("CS-opt", "speedup", 3.0).mean == pytest.approx(0.70)
    assert task.cell("CS-k-1", "speedup", 3.0).mean == pytest.approx(0.80)


def test_frontier_points_are_chosen_on_dev():
    records = [
        _record("dense", 0, 0.90, 0.90, 1.0),
        # A is dominated on dev by B (same speed region), though A's test is higher
        _record("first_k", 0, 0.70, 0.88, 2.0, lengths=(6,), schedule="A"),
        _record("first_k", 0, 0.80, 0.60, 2.5, lengths=(5,), schedule="B"),
    ]
    task = aggregate(records)["toy"]
    labels = [p.label for p in task.methods["1st"].frontier("speedup")]
    assert labels == ["dense", "B"]
    assert task.cell("1st", "speedup", 2.5).mean == pytest.approx(0.60)


def test_failed_trials_are_counted_per_method_and_left_out_of_the_numbers():
    records = [
        _record("dense", 0, 0.9, 0.9, 1.0),
        _record("attention", 0, 0.8, 0.8, 2.0, lengths=(5,)),
        _record("attention", 0, 0, 0, 0, lengths=(4,), ok=False),
    ]
    task = aggregate(records)["toy"]
    assert task.failed("Att") == 1
    assert task.cell("Att", "speedup", 2.0).mean == pytest.approx(0.8)
    assert task.failed("Rand") == 0
