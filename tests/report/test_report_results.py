"""The results tables: per-seed interpolation between measured points, intervals and paired differences by
hand, the dense-anchor mark, the constant-predictor flag, and the choice of speed axis."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pyramid_bert.errors import ConfigError
from pyramid_bert.measure.evaluation import DEV_SHARE_COLUMN
from pyramid_bert.report.aggregate import aggregate, resolve_speed_axis
from pyramid_bert.report.build import build_report
from pyramid_bert.report.results import best_baseline, flagged_lines, result_rows, results_markdown
from pyramid_bert.sweep.plan import ModelShape, TrainingBudget, plan_trials
from pyramid_bert.sweep.runner import run_sweep
from pyramid_bert.sweep.store import ResultsStore
from pyramid_bert.training.metrics import class_shares

T_975_DF2 = 4.302652729911275
SEEDS = (0, 1, 2)


def _trials():
    return plan_trials(tasks={"rt-polarity": 64}, model="minilm-l6", shape=ModelShape(6, 384, 1536),
                       methods=("attention", "coreset", "dense"), coreset_ms=(None,), seeds=SEEDS,
                       speedup_targets=(1.5, 3.0), budget=TrainingBudget(epochs=1))  # fmt: skip


def _fake(trials, *, with_sorted=True, dev_shares=None):
    """Results chosen by hand: per (method, rank of the schedule) a padded speedup, a test metric per seed,
    and the majority share of the test predictions."""
    ranks = {}
    for method in ("attention", "coreset"):
        labels = sorted({t.schedule for t in trials if t.method == method})
        predicted = {t.schedule: t for t in trials if t.method == method}
        ordered = sorted(labels, key=lambda label: predicted[label].lengths[-1], reverse=True)
        ranks.update({(method, label): rank for rank, label in enumerate(ordered)})
    table = {
        ("dense", None): (1.0, (0.85, 0.86, 0.87), 0.55),
        ("attention", 0): (1.4, (0.80, 0.82, 0.84), 0.6),
        ("attention", 1): (1.8, (0.70, 0.72, 0.74), 0.6),
        ("coreset", 0): (1.6, (0.84, 0.85, 0.86), 0.6),
        ("coreset", 1): (3.2, (0.60, 0.60, 0.60), 0.99),  # a constant predictor
    }

    def trial(config):
        method = config["method"]
        rank = None if method == "dense" else ranks[(method, next(t.schedule for t in trials if t.lengths and
                                                                     list(t.lengths) == config["lengths"]))]
        speedup, tests, share = table[(method, rank)]
        result = {"dev_metric": tests[config["seed"]], "test_metric": tests[config["seed"]], "metric_name": "accuracy",
                  "speedup_median": speedup, "predicted_speedup": speedup, "space_reduction": 0.0,
                  "prediction_majority_share": share, "label_majority_share": 0.52}  # fmt: skip
        if with_sorted:
            result["sorted_speedup_median"] = 1.0 + (speedup - 1.0) / 2
        if dev_shares is not None:  # stores written since trials record the dev predictions' majority share
            result[DEV_SHARE_COLUMN] = dev_shares.get((method, rank), share)
        return result

    return trial


def _store(tmp_path, **kwargs):
    trials = _trials()
    path = tmp_path / "results.sqlite"
    with ResultsStore(path) as store:
        run_sweep(trials, store, _fake(trials, **kwargs), checkpoint_root=tmp_path / "ck", progress=False)
    with ResultsStore(path) as store:
        return path, list(store.records())


def test_cell_is_the_per_seed_interpolation_with_its_interval_and_paired_differences(tmp_path):
    _, records = _store(tmp_path)
    result = aggregate(records, speed_axis="padded")["rt-polarity"]
    cell = result.cell("Att", "speedup", 1.5)
    # between 1.4X and 1.8X at weight 0.25: 0.775, 0.795, 0.815
    assert cell.test == pytest.approx({0: 0.775, 1: 0.795, 2: 0.815})
    assert cell.support == pytest.approx((1.4, 1.8)) and not cell.from_dense
    assert cell.ci.half_width == pytest.approx(T_975_DF2 * 0.02 / math.sqrt(3))
    rows, best = result_rows(result, 1.5)
    assert best == "Att"
    att = next(row for row in rows if row.column == "Att")
    # minus dense 0.85, 0.86, 0.87: -0.075, -0.065, -0.055 (s = 0.01)
    assert att.vs_dense.mean == pytest.approx(-0.065)
    assert att.vs_dense.high == pytest.approx(-0.065 + T_975_DF2 * 0.01 / math.sqrt(3))
    assert att.vs_dense.significant and att.vs_best is None
    table = results_markdown(result, 1.5)
    assert "significantly worse than dense by 6.5" in table
    assert "majority-class rate of test: 52.0" in table


def test_a_cell_that_needs_the_dense_point_is_marked(tmp_path):
    _, records = _store(tmp_path)
    result = aggregate(records, speed_axis="padded")["rt-polarity"]
    cell = result.cell("Att", "speedup", 1.2)
    assert cell.from_dense and cell.support == pytest.approx((1.0, 1.4))
    assert "‡ dense at 1.0X" in results_markdown(result, 1.2)
    assert result.cell("Att", "speedup", 2.5) is None  # beyond the last measured point: not extrapolated


def test_constant_predictors_are_flagged_and_kept_off_the_frontier(tmp_path):
    path, records = _store(tmp_path)
    result = aggregate(records, speed_axis="padded")["rt-polarity"]
    constant = next(p for p in result.points if p.method == "coreset" and p.mean("padded") > 3)
    assert constant.flagged and not any(p.flagged for p in result.points if p is not constant)
    assert all(p is not constant for p in result.methods["CS-k-1"].frontier("speedup"))
    assert result.cell("CS-k-1", "speedup", 3.0) is None  # the only point beyond 1.6X is the constant one
    assert "99.0%" in "\n".join(flagged_lines([result]))
    text = build_report(path, tmp_path / "report", plots=False).markdown_path.read_text()
    assert "**constant predictor**" in text


def test_the_one_class_flag_is_read_on_dev_and_on_test_only_in_older_stores(tmp_path):
    # coreset's fast schedule is one class on test only; attention's slow one is one class on dev only
    _, records = _store(tmp_path, dev_shares={("coreset", 1): 0.6, ("attention", 1): 0.99})
    result = aggregate(records, speed_axis="padded")["rt-polarity"]
    flagged = [point for point in result.points if point.flagged]
    assert [point.method for point in flagged] == ["attention"] and flagged[0].flag_split == "dev"
    assert "99.0% (dev)" in "\n".join(flagged_lines([result]))
    assert result.cell("CS-k-1", "speedup", 3.0) is not None  # no longer kept off the frontier by its test share
    _, old = _store(tmp_path / "old")
    old_flagged = [point for point in aggregate(old, speed_axis="padded")["rt-polarity"].points if point.flagged]
    assert [(point.method, point.flag_split) for point in old_flagged] == [("coreset", "test")]


def test_best_baseline_is_chosen_among_baselines_only(tmp_path):
    _, records = _store(tmp_path)
    result = aggregate(records, speed_axis="padded")["rt-polarity"]
    assert best_baseline(result, 1.5) == "Att"  # CS-k-1 has a better dev metric but is not a baseline


def test_speed_axis_is_sorted_when_every_trial_has_it(tmp_path):
    _, records = _store(tmp_path)
    assert resolve_speed_axis(records, None) == "sorted"
    result = aggregate(records, speed_axis=None)["rt-polarity"]
    assert result.cell("Att", "speedup", 1.1).support == pytest.approx((1.0, 1.2))  # sorted: 1.2X and 1.4X
    assert result.cell("Att", "speedup", 1.3).support == pytest.approx((1.2, 1.4))
    _, old = _store(tmp_path / "old", with_sorted=False)
    assert resolve_speed_axis(old, None) == "padded"
    with pytest.raises(ConfigError, match="--speed-axis sorted: 12 trial"):
        resolve_speed_axis(old, "sorted")
    with pytest.raises(ConfigError, match="--speed-axis must be one of sorted, padded"):
        resolve_speed_axis(old, "fast")


def test_class_shares_of_predictions_and_labels():
    shares = class_shares(np.array([1, 1, 1, 0]), np.array([0, 1, 0, 0]), is_regression=False)
    assert shares == {"prediction_majority_share": 0.75, "label_majority_share": 0.75,
                      "prediction_counts": {"0": 1, "1": 3}}  # fmt: skip
    assert class_shares([0.3, 0.1], [0.2, 0.5], is_regression=True)["prediction_majority_share"] is None


def test_speed_is_timed_in_the_first_seed_only_and_shared_by_the_others(tmp_path):
    trials = _trials()
    fake = _fake(trials)
    seen_options = []

    def timed_once(config):
        options = config.get("trial_options") or {}
        seen_options.append((config["seed"], options.get("measure_speed", True)))
        result = fake(config)
        if not options.get("measure_speed", True):
            result = {k: v for k, v in result.items() if "speedup_median" not in k}
        return result

    path = tmp_path / "results.sqlite"
    with ResultsStore(path) as store:
        run_sweep(trials, store, timed_once, checkpoint_root=tmp_path / "ck", progress=False)
        records = list(store.records())
    assert {seed for seed, timed in seen_options if timed} == {0}
    assert all(not record.result.get("speedup_median") for record in records if record.spec.seed > 0)
    result = aggregate(records, speed_axis="padded")["rt-polarity"]
    cell = result.cell("Att", "speedup", 1.5)  # the same cell as when every seed is timed
    assert cell.test == pytest.approx({0: 0.775, 1: 0.795, 2: 0.815})
    assert resolve_speed_axis(records, None) == "sorted"
