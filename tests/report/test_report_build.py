"""The report rebuilt from a results store alone: Markdown, CSV tables, PNG plots, paper numbers only
beside GLUE tasks of the same name, failed trials marked."""

from __future__ import annotations

import csv

import pytest

from pyramid_bert.io import OUTPUT_MARKER
from pyramid_bert.report.build import build_report
from pyramid_bert.sweep.plan import ModelShape, TrainingBudget, plan_trials
from pyramid_bert.sweep.runner import run_sweep
from pyramid_bert.sweep.store import ResultsStore
from pyramid_bert.sweep.synthetic import synthetic_trial


def _store(tmp_path, *, fail_method=None):
    trials = plan_trials(tasks={"rt-polarity": 64, "sst2": 64}, model="minilm-l6", shape=ModelShape(6, 384, 1536),
                         coreset_ms=(1, 0.2, None), seeds=(0, 1), speedup_targets=(1.5, 2.5, 4.0),
                         budget=TrainingBudget(epochs=1))  # fmt: skip

    def trial(config):
        if config["method"] == fail_method and config["task"] == "sst2":
            raise RuntimeError("simulated crash")
        return synthetic_trial(config)

    path = tmp_path / "results.sqlite"
    with ResultsStore(path) as store:
        store.set_meta("sweep", {"preset": "test"})
        run_sweep(trials, store, trial, checkpoint_root=tmp_path / "ck", progress=False)
    return path, trials


def test_report_is_rebuilt_from_the_store_alone(tmp_path):
    path, trials = _store(tmp_path)
    report = build_report(path, tmp_path / "report")
    text = report.markdown_path.read_text()
    assert "## Test metric at 3X measured inference speedup" in text
    assert "## Test metric at 70% attention-space reduction (the paper's formula)" in text
    assert "| attention-space reduction (paper's formula) | attention-space reduction (exact) |" in text
    assert report.trials_ok == len(trials) and report.trials_failed == 0
    assert "source corpus of SST-2" in text
    # the paper's SST-2 row appears below sst2, never below rt-polarity
    table = report.table("speedup", 3.0).splitlines()
    rt_row = next(i for i, line in enumerate(table) if line.startswith("| rt-polarity"))
    sst2_row = next(i for i, line in enumerate(table) if line.startswith("| sst2"))
    assert "paper" not in table[rt_row + 1]
    assert table[sst2_row + 1].startswith("| *SST-2 (paper, BERT-base, Table 1)*")
    assert "| *89.6* | *92.4* |" in table[sst2_row + 1]
    for png in report.plot_paths:
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(report.plot_paths) == 6  # per task: the overview, the speedup panels, the space panels

    with open(tmp_path / "report" / "tables" / "speedup_1.5x.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert [row["task"] for row in rows] == ["rt-polarity", "sst2", "mean"]
    assert rows[1]["paper_CS-opt"] == "92.4" and rows[0]["paper_CS-opt"] == ""
    assert 0 < float(rows[0]["dense"]) <= 100 and rows[0]["dense_seeds"] == "2"

    # one row per configuration of each task (seeds merged), the dense row anchoring every frontier
    section = text.split("### rt-polarity")[1].split("###")[0]
    rows = [line for line in section.splitlines() if line.startswith("| ") and not line.startswith("| method")]
    assert len(rows) == len({t.config_key for t in trials if t.task == "rt-polarity"})
    dense_row = next(line for line in rows if line.startswith("| dense"))
    # the paper's formula counts each layer's kept length, the exact one what it attends to (layer 1: all N);
    # Input-first-k cuts before layer 1, so there both agree
    for line in rows:
        method, paper, exact = line.split(" | ")[0][2:], *line.split(" | ")[6:8]
        if method in ("dense", "input_first_k"):
            assert paper == exact
        else:
            assert int(paper[:-1]) > int(exact[:-1]), line
    assert dense_row.rstrip(" |").endswith("1st-I, 1st, Rand, Pool, Att, CS-k-1, CS-opt")

    # the same store gives the same tables again
    again = build_report(path, tmp_path / "again", plots=False)
    assert again.tables == report.tables


def test_failed_trials_are_listed_and_their_cells_marked(tmp_path):
    path, _ = _store(tmp_path, fail_method="attention")
    report = build_report(path, tmp_path / "report", plots=False)
    text = report.markdown_path.read_text()
    assert report.trials_failed == 6  # 3 schedules x 2 seeds on sst2
    assert "simulated crash" in text
    sst2_row = next(line for line in report.table("speedup", 1.5).splitlines() if line.startswith("| sst2"))
    cells = [cell.strip() for cell in sst2_row.strip("|").split("|")]
    assert cells[2 + 4] == "n/a†"  # Att: no successful trial, and failures
    assert not cells[2 + 2].endswith("†")  # Rand is complete


def test_reports_write_through_unique_temporaries_and_leave_none_behind(tmp_path):
    path, _ = _store(tmp_path)
    out = tmp_path / "report"
    (out / "tables").mkdir(parents=True)
    others = [out / ".report.md.tmp", out / "tables" / ".trials.csv.tmp"]  # another report's files, mid-write
    for other in others:
        other.write_text("another report, still writing\n")
    report = build_report(path, out, plots=False)
    assert report.markdown_path.read_text().startswith("# Pyramid-BERT sweep report")
    assert all(other.read_text() == "another report, still writing\n" for other in others)
    assert {p for p in out.rglob(".*") if p.is_file() and p.name != OUTPUT_MARKER} == set(others)


def test_a_plot_that_fails_to_render_leaves_no_temporary(tmp_path, monkeypatch):
    from matplotlib.figure import Figure

    from pyramid_bert.report.plots import save_figure

    def crash(target, **options):
        target.write(b"\x89PNG half a picture")
        raise RuntimeError("renderer crashed")

    figure = Figure()
    monkeypatch.setattr(figure, "savefig", crash)
    with pytest.raises(RuntimeError, match="renderer crashed"):
        save_figure(figure, tmp_path / "plots" / "figure.png")
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []


def test_a_trials_export_rebuilds_the_same_report_as_its_store(tmp_path, capsys):
    from pyramid_bert import cli

    path, trials = _store(tmp_path, fail_method="random")
    export = tmp_path / "trials.jsonl"
    assert cli.main(["report", str(path), "--export", str(export)]) == 0
    lines = export.read_text().splitlines()
    assert len(lines) == 1 + len(trials) and '"preset": "test"' in lines[0]
    assert cli.main(["report", str(path), "--out", str(tmp_path / "from-store"), "--no-plots"]) == 0
    assert cli.main(["report", str(export), "--out", str(tmp_path / "from-export"), "--no-plots"]) == 0
    from_store = (tmp_path / "from-store" / "report.md").read_text().splitlines()
    from_export = (tmp_path / "from-export" / "report.md").read_text().splitlines()
    assert f"- results: `{export}`" in from_export[2]  # the report names the file it was rebuilt from
    assert from_store[3:] == from_export[3:] and "simulated crash" in "\n".join(from_export)
    for name in ("results.csv", "trials.csv"):
        tables = [(tmp_path / folder / "tables" / name).read_text() for folder in ("from-store", "from-export")]
        assert tables[0] == tables[1]
    assert cli.main(["report", str(path), "--export", str(export)]) == 2  # never replaced unasked
    assert "--force" in capsys.readouterr().err


def test_a_file_that_is_no_export_is_one_clear_error(tmp_path, capsys):
    from pyramid_bert import cli

    bogus = tmp_path / "other.jsonl"
    bogus.write_text('{"a": 1}\n')
    assert cli.main(["report", str(bogus), "--out", str(tmp_path / "r")]) == 2
    assert "not a trials export" in capsys.readouterr().err


def test_an_export_carries_the_timing_pass_and_its_report_is_the_stores(tmp_path, capsys):
    from pyramid_bert import cli

    out = tmp_path / "sweep"
    assert cli.main(["sweep", "--synthetic", "--preset", "smoke", "--out", str(out), "--no-progress"]) == 0
    store, export = out / "results.sqlite", tmp_path / "trials.jsonl"
    assert cli.main(["report", str(store), "--export", str(export)]) == 0
    lines = export.read_text().splitlines()
    assert '"version": 2' in lines[0] and '"speed_choice"' in lines[0]
    assert sum('"speed": ' in line for line in lines) == 18  # 9 columns x 2 schedules of smoke, each timed once
    for source, folder in ((store, "from-store"), (export, "from-export")):
        assert cli.main(["report", str(source), "--out", str(tmp_path / folder), "--no-plots"]) == 0
    tables = [(tmp_path / folder / "tables" / "results.csv").read_text() for folder in ("from-store", "from-export")]
    assert tables[0] == tables[1] and ";" in tables[0]  # the speed intervals travelled with it
