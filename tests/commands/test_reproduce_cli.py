"""The ``reproduce``, ``sweep`` and ``report`` commands: end to end with the synthetic trial function, and
one clear message for each kind of bad input."""

from __future__ import annotations

import sqlite3

import pytest

from pyramid_bert.cli import main


def test_reproduce_runs_the_quick_preset_and_prints_the_3x_and_1_5x_tables(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["reproduce", "--synthetic", "--out", str(out), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "Test metric at 3X measured inference speedup" in printed
    assert "Test metric at 1.5X measured inference speedup" in printed
    assert "| rt-polarity | accuracy |" in printed
    assert f"report: {out / 'report' / 'report.md'}" in printed
    assert (out / "report" / "plots" / "rt-polarity_speedup.png").is_file()
    assert (out / "results.sqlite").is_file()

    # a second run on the same folder needs --resume, and then runs nothing again
    assert main(["reproduce", "--synthetic", "--out", str(out), "--no-progress"]) == 2
    assert "--resume" in capsys.readouterr().err
    assert main(["reproduce", "--synthetic", "--out", str(out), "--no-progress", "--resume"]) == 0
    assert "0 trials run (0 failed)" in capsys.readouterr().out


def test_sweep_then_report_rebuilds_the_tables(tmp_path, capsys):
    out = tmp_path / "sweep"
    assert main(["sweep", "--synthetic", "--out", str(out), "--task", "rt-polarity,sst2", "--methods",
                 "coreset,random,dense", "--seeds", "2", "--no-progress"]) == 0  # fmt: skip
    capsys.readouterr()
    with sqlite3.connect(out / "results.sqlite") as db:
        tasks = {row[0] for row in db.execute("SELECT DISTINCT task FROM trials")}
        seeds = {row[0] for row in db.execute("SELECT DISTINCT seed FROM trials")}
    assert tasks == {"rt-polarity", "sst2"} and seeds == {0, 1}
    assert main(["report", str(out / "results.sqlite"), "--out", str(tmp_path / "rep"), "--no-plots"]) == 0
    printed = capsys.readouterr().out
    assert "*SST-2 (paper, BERT-base, Table 2)*" in printed
    assert (tmp_path / "rep" / "report.md").is_file()


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--preset", "huge"], "preset must be one of default, smoke, selection, accuracy, accuracy-trec, paper"),
        (["--protocol", "cold"], "--protocol must be one of warm, paper"),
        (["--workers", "0"], "argument --workers: must be an int >= 1"),
        (["--adapt-epochs", "0"], "argument --adapt-epochs: must be a finite number > 0"),
        (["--task", "imdb"], "unknown task 'imdb'"),
        (["--methods", "coreset,magic"], "unknown method 'magic'"),
        (["--executor", "slurm"], "executor must be one of local, ray"),
        (["--seeds", "0"], "argument --seeds: must be an int >= 1"),
        (["--retry-failed"], "--retry-failed needs --resume"),
    ],
)
def test_bad_input_gets_one_clear_message(tmp_path, capsys, arguments, message):
    try:
        code = main(["reproduce", "--synthetic", "--out", str(tmp_path / "x"), "--no-progress", *arguments])
    except SystemExit as exit_:  # argparse's own checks (types of numeric flags) exit from parse_args
        code = exit_.code
    error = capsys.readouterr().err
    assert code == 2
    assert message in error
    assert "Traceback" not in error


def test_report_refuses_a_file_that_is_not_a_results_store(tmp_path, capsys):
    path = tmp_path / "notes.db"
    path.write_text("not a database")
    assert main(["report", str(path)]) == 2
    assert "not a pyramid-bert results store" in capsys.readouterr().err
    assert path.read_text() == "not a database"
    assert main(["report", str(tmp_path / "missing.sqlite")]) == 2
    assert "no such file" in capsys.readouterr().err


def test_missing_task_data_is_one_message_before_any_trial(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("pyramid_bert.sweep.request.model_shape", lambda model, synthetic: (6, 384, 1536))
    monkeypatch.delenv("PYRAMID_BERT_GLUE_DIR", raising=False)
    monkeypatch.setitem(__import__("sys").modules, "datasets", None)
    out = tmp_path / "glue"
    assert main(["reproduce", "--task", "sst2", "--out", str(out), "--no-progress"]) == 2
    error = capsys.readouterr().err
    assert "GLUE" in error and "--glue-dir" in error
    assert not (out / "results.sqlite").exists()


def test_report_speed_axis_flag_and_results_csv(tmp_path, capsys):
    import csv

    out = tmp_path / "sweep"
    assert main(["sweep", "--synthetic", "--preset", "smoke", "--seeds", "3", "--out", str(out), "--no-progress",
                 "--workers", "2"]) == 0  # fmt: skip
    capsys.readouterr()
    store = str(out / "results.sqlite")
    assert main(["report", store, "--out", str(tmp_path / "padded"), "--no-plots", "--speed-axis", "padded"]) == 0
    printed = capsys.readouterr().out
    assert "Speed axis: **padded**" in printed and "### At 3X: rt-polarity" in printed
    assert "Test metric at 3X measured inference speedup (padded batches)" in printed
    assert main(["report", store, "--out", str(tmp_path / "auto"), "--no-plots"]) == 0
    assert "Speed axis: **sorted**" in capsys.readouterr().out  # the synthetic trials measure both
    with open(tmp_path / "auto" / "tables" / "results.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 3 * 10 and {row["target"] for row in rows} == {"1.5", "2.0", "3.0"}  # 9 columns + dense
    dense = next(row for row in rows if row["method"] == "dense")
    assert dense["seeds"] == "3" and float(dense["test_ci_low"]) < float(dense["test_mean"])
    assert main(["report", store, "--speed-axis", "fast"]) == 2
    assert "--speed-axis must be one of sorted, padded" in capsys.readouterr().err
