"""The report on a store with a separate timing pass: each configuration's sorted speedup and interval come from
the pass, every cell says where it lies on the measured axis and whether a measured point is near its target, and
the swept variants CS+ and 1st+merge get columns of their own in the tested comparisons."""

from __future__ import annotations

import pytest

from pyramid_bert.report.aggregate import aggregate, apply_speed_pass, shown_columns
from pyramid_bert.report.results import result_rows, results_markdown, significance_lines
from pyramid_bert.report.tables import TableTarget, markdown_table
from pyramid_bert.sweep.spec import TrialSpec
from pyramid_bert.sweep.store import ResultsStore, SpeedRecord, TrialRecord

DENSE = (0.85, 0.86, 0.87)


def _spec(method, lengths=None, seed=0, variant=None, options=None, m=1):
    return TrialSpec(task="rt-polarity", model="minilm-l6", method=method, schedule=f"L={lengths[0] if lengths else 0}",
                     lengths=lengths, m=m, seed=seed, variant=variant, options=options)  # fmt: skip


def _trial(spec, value, trial_speedup=None):
    result = {"dev_metric": value, "test_metric": value, "metric_name": "accuracy", "label_majority_share": 0.5}
    if trial_speedup is not None:  # an older store: the trial timed itself (seed 0 only)
        result.update({"sorted_speedup_median": trial_speedup, "sorted_speedup_q25": trial_speedup - 0.05,
                       "sorted_speedup_q75": trial_speedup + 0.05, "speedup_median": trial_speedup + 0.3})
    return TrialRecord(spec=spec, status="ok", result=result)


def _speed(spec, median, low, high):
    return SpeedRecord(spec, spec.variant or spec.method, {"speedup": {"median": median, "low": low, "high": high,
                                                                       "n": 6, "coverage": 0.96875}})  # fmt: skip


#: (method, lengths, variant, options) -> (pass speedup median, low, high, test per seed)
CONFIGS = {
    ("attention", (40,) * 6, None, None): ((1.45, 1.40, 1.52), (0.80, 0.82, 0.84)),
    ("attention", (20,) * 6, None, None): ((2.95, 2.90, 3.05), (0.70, 0.72, 0.74)),
    ("first_k", (50,) * 6, None, None): ((1.20, 1.18, 1.25), (0.84, 0.84, 0.86)),
    ("first_k", (20,) * 6, None, None): ((2.20, 2.10, 2.30), (0.74, 0.76, 0.78)),
    ("coreset", (40,) * 6, "CS+", (("merge", True),)): ((1.40, 1.35, 1.45), (0.83, 0.86, 0.86)),
    ("coreset", (20,) * 6, "CS+", (("merge", True),)): ((3.10, 3.00, 3.20), (0.76, 0.77, 0.78)),
}


def _records(with_pass=True):
    records, speeds = [], {}
    for seed, value in enumerate(DENSE):
        records.append(_trial(_spec("dense", seed=seed), value))
    for (method, lengths, variant, options), (speed, tests) in CONFIGS.items():
        for seed, value in enumerate(tests):
            spec = _spec(method, lengths, seed, variant, options)
            records.append(_trial(spec, value, None if with_pass or seed else speed[0]))
            if with_pass and seed == 0:
                speeds[spec.config_key] = _speed(spec, *speed)
    return records, speeds


def test_the_pass_gives_every_seed_its_configurations_sorted_speedup_and_interval():
    records, speeds = _records()
    timed = apply_speed_pass(records, speeds)
    first_k = [r for r in timed if r.spec.method == "first_k" and r.spec.lengths == (50,) * 6]
    assert [r.result["sorted_speedup_median"] for r in first_k] == [1.20] * 3
    assert {r.result["sorted_speedup_source"] for r in first_k} == {"pass"}
    result = aggregate(records, speed_axis=None, speeds=speeds)["rt-polarity"]
    point = result.methods["1st"].points[0]
    assert point.speed_interval == (1.18, 1.25) and point.speed_source == "pass" and point.axis == "sorted"


def test_each_cell_says_where_it_lies_and_whether_a_measured_point_is_near_its_target():
    records, speeds = _records()
    result = aggregate(records, speed_axis=None, speeds=speeds)["rt-polarity"]
    near = result.cell("Att", "speedup", 1.5)  # between 1.45X and 2.95X: 1.45 is 3% off
    assert near.support == pytest.approx((1.45, 2.95)) and near.near and not near.from_dense
    assert "1.45X [1.40, 1.52] – 2.95X [2.90, 3.05]; measured near" in results_markdown(result, 1.5)
    far = result.cell("1st", "speedup", 1.7)  # between 1.20X (29% off) and 2.20X (29% off)
    assert not far.near
    assert "1.20X [1.18, 1.25] – 2.20X [2.10, 2.30]; interpolated (none within 15%)" in results_markdown(result, 1.7)
    # CS+ too: 1.40X is 18% off 1.7X
    assert "Interpolated with no measured configuration within 15% of 1.7X: 1st, CS+." in significance_lines(result, 1.7)

    def row_cells(target):  # the paper-layout row: task, metric, 1st-I, 1st, Rand, Pool, Att, ...
        return markdown_table([result], TableTarget("speedup", target), with_paper=False).splitlines()[2].split("|")

    assert row_cells(1.7)[4].strip().endswith("°") and not row_cells(1.5)[7].strip().endswith("°")


def test_cs_plus_is_a_column_of_its_own_compared_with_dense_and_the_best_baseline_under_holm():
    records, speeds = _records()
    result = aggregate(records, speed_axis=None, speeds=speeds)["rt-polarity"]
    assert shown_columns([result]) == ("1st-I", "1st", "Rand", "Pool", "Att", "CS-k-1", "CS-opt", "CS+", "dense")
    assert not result.methods["CS-opt"].points  # the CS+ trials are not plain coreset configurations
    rows, best = result_rows(result, 2.5)
    cs_plus = next(row for row in rows if row.column == "CS+")
    # CS+ at 2.5X between 1.40X and 3.10X, weight 1.1 / 1.7 on the second, per seed, minus dense
    weight = (2.5 - 1.40) / (3.10 - 1.40)
    expected = [(1 - weight) * a + weight * b - d for a, b, d in zip((0.83, 0.86, 0.86), (0.76, 0.77, 0.78), DENSE, strict=True)]
    assert cs_plus.vs_dense.mean == pytest.approx(sum(expected) / 3)
    assert cs_plus.vs_dense.family == cs_plus.vs_best.family >= 3  # one Holm family with the baselines' comparisons
    assert best == "Att"


def test_an_older_store_reads_as_it_is_and_its_speeds_say_they_were_timed_in_one_seeds_trial(tmp_path):
    records, _ = _records(with_pass=False)
    path = tmp_path / "results.sqlite"
    with ResultsStore(path) as store:
        for record in records:
            store.add(record)
        assert store.speeds() == {}
    result = aggregate(records, speed_axis=None)["rt-polarity"]
    assert result.methods["Att"].points[0].speed_source == "trial"
    assert "1.45X (IQR 1.40-1.50, one seed)" in results_markdown(result, 1.5)
