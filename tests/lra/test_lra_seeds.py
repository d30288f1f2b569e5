"""``pyramid-bert lra --seeds``: one comparison per seed, resumable, and the Table 4 summary over seeds."""

from __future__ import annotations

import argparse
import json

import pytest

from pyramid_bert.commands import lra as lra_command
from pyramid_bert.errors import ConfigError
from pyramid_bert.lra.summary import format_table4, group_cells, mean_std, summarise


def fake_result(config, accuracy_by_label=None):
    accuracy_by_label = accuracy_by_label or {}
    rows = [
        {"label": label, "method": label, "m": 1, "keep": 20, "space_reduction": 0.7,
         "accuracy": accuracy_by_label.get(label, 0.5 + 0.1 * config.seed), "train_seconds": 1.0, "final_loss": 0.1,
         "forward_seconds": 0.01, "selection_seconds": 0.001, "selection_share": 0.1,
         "speedup_median": 2.0, "speedup_q25": 1.9, "speedup_q75": 2.1}
        for label in config.methods
    ]
    return {"config": config.to_dict(), "task": config.task, "seq_len": 40, "keep": 20,
            "train_examples": 10, "test_examples": 5, "rows": rows}


def lra_args(tmp_path, **overrides):
    parser = argparse.ArgumentParser()
    lra_command.add_arguments(parser)
    argv = ["--task", "lra-bytes", "--backbone", "performer", "--methods", "first_k,no_pruning", "--quiet",
            "--out", str(tmp_path)]
    for flag, value in overrides.items():
        argv += [f"--{flag.replace('_', '-')}", str(value)]
    return parser.parse_args(argv)


@pytest.fixture
def counted_runs(monkeypatch):
    calls = []

    def run(config):
        calls.append(config.seed)
        return fake_result(config)

    monkeypatch.setattr("pyramid_bert.lra.experiment.run_lra_comparison", run)
    return calls


def test_each_seed_runs_once_and_a_second_call_reads_the_files_back(tmp_path, counted_runs) -> None:
    assert lra_command.run(lra_args(tmp_path, seeds="0,1,2")) == 0
    assert counted_runs == [0, 1, 2]
    assert sorted(p.name for p in tmp_path.glob("lra-*.json")) == [f"lra-bytes_performer_seed{s}.json" for s in range(3)]
    assert lra_command.run(lra_args(tmp_path, seeds="0,1,2,3")) == 0
    assert counted_runs == [0, 1, 2, 3]  # only the new seed ran
    summary = (tmp_path / "lra-bytes_performer.md").read_text()
    # accuracy 0.5, 0.6, 0.7, 0.8 over seeds 0..3: mean 65.0, sample std 12.9
    assert "65.0 ± 12.9 (4)" in summary


def test_a_file_with_other_settings_is_refused_not_overwritten(tmp_path, counted_runs) -> None:
    lra_command.run(lra_args(tmp_path, seeds="0"))
    before = (tmp_path / "lra-bytes_performer_seed0.json").read_text()
    with pytest.raises(ConfigError, match="--out"):
        lra_command.run(lra_args(tmp_path, seeds="0", epochs=5))
    assert (tmp_path / "lra-bytes_performer_seed0.json").read_text() == before
    assert counted_runs == [0]


def test_progress_bars_do_not_count_as_other_settings(tmp_path, counted_runs) -> None:
    lra_command.run(lra_args(tmp_path, seeds="1"))
    args = lra_args(tmp_path, seeds="1")
    args.quiet = False
    lra_command.run(args)
    assert counted_runs == [1]


@pytest.mark.parametrize("text", ["", "a,b", "1,1", "-1", ","])
def test_bad_seeds_name_the_flag(text) -> None:
    with pytest.raises(ConfigError, match="--seeds"):
        lra_command.parse_seeds(text, 0)


def test_parse_seeds_default_and_list() -> None:
    assert lra_command.parse_seeds(None, 4) == [4]
    assert lra_command.parse_seeds("2, 0,1", 4) == [2, 0, 1]


def test_summary_is_the_mean_and_sample_std_per_cell_with_the_paper_beside(tmp_path) -> None:
    args = lra_args(tmp_path)
    results = []
    for seed, accuracy in ((0, 0.40), (1, 0.50), (2, 0.90)):
        config = lra_command.experiment_config(args, "bigbird", seed)
        config.task = "lra-image"
        results.append(fake_result(config, {"first_k": accuracy, "no_pruning": 0.6}))
        (tmp_path / f"r{seed}.json").write_text(json.dumps(results[-1]))
    table = format_table4(group_cells(results))
    mean, std = mean_std([40.0, 50.0, 90.0])
    assert f"{mean:.1f} ± {std:.1f} (3) [26.9]" in table  # the paper's Big Bird First-k on CIFAR-10
    assert "60.0 ± 0.0 (3) [40.9]" in table
    assert "2.00X (k 20, selection 10%)" in table
    assert summarise([tmp_path]) == table
    assert "| bigbird | First-k | - |" not in table  # First-k has a paired row only where CS (m=1) ran
    results = [dict(r, rows=r["rows"] + [dict(r["rows"][0], label="cs_opt", accuracy=a)])
               for r, a in zip(results, (0.45, 0.60, 0.90), strict=True)]  # fmt: skip
    paired = format_table4(group_cells(results)).split("CS (m=1) minus")[1]
    # CS - First-k per seed: +5, +10, 0 -> mean +5.0; t interval 5 ± 4.30 * 5/sqrt(3) = [-7.4, +17.4]
    assert "| bigbird | First-k | +5.0 [-7.4, +17.4] |" in paired
    # CS - no pruning: -15, 0, +30 -> +5.0, sample std 22.9: 5 ± 4.30 * 22.9/sqrt(3)
    assert "| bigbird | no pruning | +5.0 [-51.9, +61.9] |" in paired
    assert mean_std([3.0]) == (3.0, 0.0)


def test_a_cell_says_how_many_of_its_models_predicted_one_class() -> None:
    from pyramid_bert.lra.summary import format_cell

    rows = [{"accuracy": 0.5, "majority_share": 1.0}, {"accuracy": 0.5, "majority_share": 1.0},
            {"accuracy": 0.6, "majority_share": 0.7}]  # fmt: skip
    assert format_cell(rows) == "53.3 ± 5.8 (3) one class 2/3"
    assert format_cell(rows[2:]) == "60.0 ± 0.0 (1)"
    assert format_cell([{"accuracy": 0.5}]) == "50.0 ± 0.0 (1)"  # older files without the field


def test_the_paired_table_applies_holm_over_its_differences(tmp_path) -> None:
    # CS - First-k and CS - no pruning are both +4, +6, +8 points: t = 6 / (2 / sqrt(3)) = 5.2 with 2 degrees of
    # freedom, p = 0.035 each, significant alone; Holm over the 2 makes both 0.07: not significant
    args = lra_args(tmp_path)
    results = []
    for seed, cs in enumerate((0.50, 0.52, 0.54)):
        config = lra_command.experiment_config(args, "bigbird", seed)
        config.task = "lra-image"
        result = fake_result(config, {"first_k": 0.46, "no_pruning": 0.46})
        results.append(dict(result, rows=result["rows"] + [dict(result["rows"][0], label="cs_opt", accuracy=cs)]))
    paired = format_table4(group_cells(results)).split("CS (m=1) minus")[1]
    assert "Holm's correction over the table's 2 differences" in paired
    # the raw interval 6 +- 4.30 * 2 / sqrt(3) excludes 0, but no star
    assert "| bigbird | First-k | +6.0 [+1.0, +11.0] |" in paired
    assert "| bigbird | no pruning | +6.0 [+1.0, +11.0] |" in paired
