"""``pyramid-bert data list|fetch|show`` through the real CLI entry point."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_data_glue import write_glue_dir

from pyramid_bert.cli import main
from pyramid_bert.data import TASK_NAMES
from pyramid_bert.data import tasks as tasks_module


@pytest.fixture(autouse=True)
def empty_home(tmp_path, monkeypatch):
    monkeypatch.setenv("PYRAMID_BERT_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("PYRAMID_BERT_GLUE_DIR", raising=False)


def test_list_shows_every_task_with_metric_n_and_cache_state(capsys, tmp_path):
    assert main(["data", "list", "--glue-dir", str(write_glue_dir(tmp_path / "glue"))]) == 0
    lines = capsys.readouterr().out.splitlines()
    rows = {line.split()[0]: line.split() for line in lines[1:] if line.strip() and not line.startswith(("GLUE", "Text"))}
    assert set(TASK_NAMES) | {"minilm-l6"} <= set(rows)
    assert rows["rt-polarity"][-3:] == ["accuracy", "64", "no"]
    assert rows["rte"][-3:] == ["accuracy", "256", "glue-dir"]
    assert rows["stsb"][-3:] == ["spearman", "128", "glue-dir"]
    assert rows["minilm-l6"][-1] == "no"


def test_unknown_name_lists_valid_names_without_traceback(capsys):
    assert main(["data", "show", "imdb"]) == 2
    error = capsys.readouterr().err
    assert "unknown data set 'imdb'" in error and "rt-polarity" in error and "Traceback" not in error


def test_fetch_unknown_name_fails_before_fetching(capsys):
    assert main(["data", "fetch", "nope"]) == 2
    assert "valid names" in capsys.readouterr().err


def test_show_prints_counts_per_split_and_label(capsys, tmp_path, monkeypatch):
    folder = tmp_path / "cache"
    folder.mkdir()
    lines = [f"{label}:x Question {label} {i} ?" for label in ("HUM", "LOC") for i in range(30)]
    (folder / "question_labels.txt").write_text("\n".join(lines), encoding="utf-8")
    monkeypatch.setattr(tasks_module, "fetch_source", lambda source: folder)
    assert main(["data", "show", "trec", "--examples", "1"]) == 0
    out = capsys.readouterr().out
    assert "train: 48 examples; ABBR 0, DESC 0, ENTY 0, HUM 24, LOC 24, NUM 0" in out
    assert "test: 6 examples; ABBR 0, DESC 0, ENTY 0, HUM 3, LOC 3, NUM 0" in out


def test_show_glue_pair_task(capsys, tmp_path):
    glue = write_glue_dir(tmp_path / "glue")
    assert main(["data", "show", "mrpc", "--glue-dir", str(glue)]) == 0
    out = capsys.readouterr().out
    assert "test: 6 examples; not_equivalent 3, equivalent 3" in out
    assert "|| dev second sentence 0" in out


def test_fetch_reports_progress_and_result(capsys, monkeypatch, tmp_path):
    from pyramid_bert.data import fetch

    fetched = []
    monkeypatch.setattr(fetch, "fetch_source", lambda source, force=False: fetched.append(source.name) or Path("/x"))
    assert main(["data", "fetch", "models"]) == 0
    captured = capsys.readouterr()
    assert fetched == ["minilm-l6"]
    assert "minilm-l6: /x" in captured.out
    assert "fetch" in captured.err  # the tqdm progress bar
