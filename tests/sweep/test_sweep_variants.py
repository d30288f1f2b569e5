"""Named configurations at one schedule (the selection-quality study): plan, trial identity, report."""

from __future__ import annotations

import pytest

from pyramid_bert.cli import build_parser, main
from pyramid_bert.commands.sweep import plan_from_args
from pyramid_bert.errors import ConfigError
from pyramid_bert.report.variants import variant_tables, variants_csv, variants_markdown
from pyramid_bert.sweep.presets import SELECTION_TASKS, selection_variants
from pyramid_bert.sweep.spec import TrialSpec
from pyramid_bert.sweep.store import TrialRecord
from pyramid_bert.sweep.variants import Variant


def plan(*extra):
    return plan_from_args(build_parser().parse_args(["sweep", "--out", "unused", "--synthetic", *extra])).trials


def test_selection_plan_shares_the_default_presets_dense_models_and_warm_starts_every_variant():
    trials = plan("--preset", "selection")
    dense = [t for t in trials if t.method == "dense"]
    assert len(dense) == 3 * 3 and len(trials) == 9 + 9 * len(selection_variants("trec"))
    default_dense = plan("--preset", "default", "--task", ",".join(SELECTION_TASKS), "--methods", "dense")
    assert sorted(t.key for t in dense) == sorted(t.key for t in default_dense)
    by_key = {t.key: t for t in dense}
    for trial in trials:
        if trial.method != "dense":
            start = by_key[trial.init_from]
            assert (start.task, start.seed) == (trial.task, trial.seed) and trial.epochs == 0.5
    seeds = [t.seed for t in trials]
    assert seeds == sorted(seeds)  # seed-major: a first seed covers every configuration early
    assert trials.index(by_key[trials[1].init_from]) < 1  # each dense model comes before its variants


def test_variant_options_are_part_of_the_identity_and_the_name_is_not():
    base = dict(task="trec", model="m", method="coreset", schedule="r", keep_ratios=(0.5, 0.25))
    plain, merged = TrialSpec(**base), TrialSpec(**base, options={"merge": True})
    renamed = TrialSpec(**base, options=(("merge", True),), variant="CS+merge")
    assert plain.key != merged.key and merged.key == renamed.key
    assert TrialSpec.from_dict(renamed.to_dict()) == renamed
    assert merged.finetune_config("out")["merge"] is True
    assert merged.finetune_config("out")["keep_ratios"] == [0.5, 0.25]
    old = TrialSpec(task="trec", model="m", method="coreset", schedule="r", lengths=(8, 4))
    assert "options" not in old.identity() and "keep_ratios" not in old.identity()  # older stores keep their keys
    with pytest.raises(ValueError, match="unknown field"):
        TrialSpec(**base, options={"learning_rate": 1})


def test_bad_variants_are_refused_with_the_reason():
    with pytest.raises(ConfigError, match="exactly one of"):
        Variant("x", "coreset", "r", keep_ratios=(0.5,), lengths=(4,))
    with pytest.raises(ConfigError, match="selection method"):
        Variant("x", "dense", "r", lengths=(4,))
    with pytest.raises(ConfigError, match="unknown option"):
        Variant("x", "coreset", "r", lengths=(4,), options=(("lr", 1.0),))
    assert main(["sweep", "--preset", "selection", "--methods", "coreset", "--synthetic", "--out", "unused"]) == 2


def _record(name, method, seed, dev, test, options=None, share=0.5, speed=2.0):
    spec = TrialSpec(task="t", model="m", method=method, schedule="s", seed=seed, variant=name,
                     options=options, keep_ratios=None if method == "dense" else (0.5,))  # fmt: skip
    result = {"dev_metric": dev, "test_metric": test, "metric_name": "accuracy", "sorted_speedup_median": speed,
              "speedup_median": speed + 1, "prediction_majority_share": share}  # fmt: skip
    return TrialRecord(spec=spec, status="ok", result=result)


def test_dev_chooses_the_best_baseline_and_differences_are_paired_over_seeds():
    records = []
    for seed, offset in enumerate((0.0, 0.02, -0.01)):
        records += [
            _record("dense", "dense", seed, 0.80, 0.80 + offset),
            _record("Att", "attention", seed, 0.75, 0.74 + offset),
            _record("Rand", "random", seed, 0.70, 0.76 + offset),  # better on test, worse on dev: not chosen
            _record("Stuck", "first_k", seed, 0.99, 0.50, share=0.99),  # one class: flagged, never the best
            _record("CS+", "coreset", seed, 0.77, 0.77 + offset + 0.001 * seed, options={"merge": True}),
        ]
    (table,) = variant_tables(records)
    assert table.best_baseline == "Att"
    rows = {row.name: row for row in table.rows}
    assert [row.name for row in table.rows][0] == "dense" and rows["Stuck"].flagged
    plus = rows["CS+"]
    assert plus.vs_best_baseline.mean == pytest.approx(0.03 + 0.001) and plus.vs_best_baseline.significant
    assert plus.vs_dense.mean == pytest.approx(-0.03 + 0.001)
    assert rows["Att"].vs_best_baseline is None and not rows["CS+"].is_baseline
    assert plus.speedup("sorted") == pytest.approx(2.0) and rows["dense"].speedup("padded") == 1.0
    markdown = variants_markdown([table])
    assert "best baseline on dev: Att" in markdown and "| CS+ | 3 | 77.4" in markdown and "one class" in markdown
    assert variants_csv([table]).count("\n") == 1 + 5


def test_selection_preset_runs_synthetically_and_reports_per_configuration(tmp_path, capsys):
    out = tmp_path / "sweep"
    assert main(["sweep", "--preset", "selection", "--task", "trec", "--seeds", "2", "--synthetic", "--out", str(out),
                 "--no-progress"]) == 0  # fmt: skip
    capsys.readouterr()
    assert main(["report", str(out / "results.sqlite"), "--variants"]) == 0
    printed = capsys.readouterr().out
    for name in ("dense", "CS", "CS+", "CS+KD", "1st-I", "Pool", "1st+merge"):
        assert f"| {name} | 2 |" in printed
    assert (out / "report" / "variants.csv").is_file()


def test_reproduce_with_the_selection_preset_prints_the_per_configuration_tables(tmp_path, capsys):
    out = tmp_path / "repro"
    assert main(["reproduce", "--preset", "selection", "--task", "rt-polarity", "--seeds", "1", "--synthetic",
                 "--out", str(out), "--no-progress"]) == 0  # fmt: skip
    printed = capsys.readouterr().out
    assert "best baseline on dev" in printed and "| CS+ | 1 |" in printed
    assert (out / "report" / "variants.md").is_file()


def test_configurations_named_with_a_group_are_compared_within_their_group_only():
    records = []
    for seed, offset in enumerate((0.0, 0.02, -0.01)):
        records += [
            _record("dense", "dense", seed, 0.80, 0.80 + offset),
            _record("Att@2X", "attention", seed, 0.79, 0.79 + offset),
            _record("CS+@2X", "coreset", seed, 0.78, 0.785 + offset + 0.001 * seed, options={"merge": True}),
            _record("Att@3X", "attention", seed, 0.74, 0.74 + offset),
            _record("CS+@3X", "coreset", seed, 0.76, 0.76 + offset + 0.001 * seed, options={"merge": True}),
        ]
    tables = variant_tables(records)
    assert [(t.group, t.best_baseline) for t in tables] == [("2X", "Att@2X"), ("3X", "Att@3X")]
    for table in tables:
        assert [row.name for row in table.rows] == ["dense", f"Att@{table.group}", f"CS+@{table.group}"]
    three = {row.name: row for row in tables[1].rows}
    assert three["CS+@3X"].vs_best_baseline.mean == pytest.approx(0.02 + 0.001)  # against Att@3X, not Att@2X
    assert three["CS+@3X"].vs_dense.family == 3  # its own Holm family: Att's and CS+'s comparisons at 3X
    assert "### t, 3X (accuracy" in variants_markdown(tables)


def test_accuracy_preset_plans_whole_split_trials_in_two_groups():
    trials = plan("--preset", "accuracy")
    dense = [t for t in trials if t.method == "dense"]
    assert len(dense) == 3 and all(t.max_train_examples is None and t.epochs == 1.0 for t in trials)
    groups = {t.variant.rsplit("@", 1)[1] for t in trials if t.method != "dense"}
    assert groups == {"2X", "3X"}
