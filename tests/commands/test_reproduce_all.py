"""``pyramid-bert reproduce --all`` as a pipeline check: the main job and the ablations on the synthetic trial
function, gathered into one report (the analyses and LRA, which have no synthetic version, are skipped)."""

from __future__ import annotations

from pyramid_bert import cli
from pyramid_bert.commands.reproduce import STEPS


def test_reproduce_all_synthetic_runs_every_ablation_and_writes_one_report(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    argv = ["reproduce", "--preset", "smoke", "--synthetic", "--all", "--out", "runs/reproduce", "--workers", "1",
            "--no-progress"]  # fmt: skip
    assert cli.main(argv) == 0
    report = (tmp_path / "runs" / "reproduce" / "report-all.md").read_text()
    assert "runs/reproduce/report/report.md" in report
    for heading in ("Table 5", "Table 6", "Table 7", "Figure 6"):
        assert f"## {heading}" in report
    assert "pyramid-bert analyze" not in report and "pyramid-bert lra" not in report  # skipped: no model
    assert {argv[0] for _, argv, _ in STEPS} == {"ablate", "analyze", "lra"}


def test_the_lra_steps_are_valid_lra_calls_over_three_seeds_of_every_task():
    import argparse

    from pyramid_bert.commands import lra as lra_command

    parser = argparse.ArgumentParser()
    lra_command.add_arguments(parser)
    calls = [parser.parse_args(list(argv[1:])) for _, argv, _ in STEPS if argv[0] == "lra"]
    assert sorted(call.task for call in calls) == ["lra-bytes", "lra-image", "lra-pathfinder32"]
    assert all(lra_command.parse_seeds(call.seeds, call.seed) == [0, 1, 2] and call.out for call in calls)
