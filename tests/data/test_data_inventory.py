"""What ``pyramid-bert data`` does (:mod:`pyramid_bert.data.inventory`): list, fetch, show and export, as text."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from pyramid_bert.data import fetch, inventory
from pyramid_bert.data.catalog import GLUE_TASKS, MODEL_NAMES, TEXT_TASKS
from pyramid_bert.errors import ConfigError, DataError
from train_fixtures import make_keyword_task


@pytest.fixture(autouse=True)
def empty_home(tmp_path, monkeypatch):
    monkeypatch.setenv("PYRAMID_BERT_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("PYRAMID_BERT_GLUE_DIR", raising=False)


@pytest.fixture
def fetched(monkeypatch):
    """Replaces the download: records each source asked for and answers with a fake folder."""
    names = []
    monkeypatch.setattr(fetch, "fetch_source", lambda source, force=False: names.append((source.name, force)) or Path("/x"))
    return names


def test_the_list_has_one_full_row_per_name_in_the_order_of_all_names():
    rows = inventory.list_rows(None)
    assert [row[0] for row in rows] == inventory.all_names()
    assert all(len(row) == len(inventory.LIST_HEADER) for row in rows)
    text = inventory.list_data()
    assert text.splitlines()[0].split()[:2] == ["NAME", "KIND"] and text.endswith(inventory.LIST_NOTES)


def test_groups_name_their_members_and_all_leaves_glue_out():
    assert inventory.group_members("models") == list(MODEL_NAMES)
    assert inventory.group_members("glue") == list(GLUE_TASKS)
    everything = inventory.group_members("all")
    assert set(TEXT_TASKS) <= set(everything) and not set(GLUE_TASKS) & set(everything)
    assert set(inventory.group_members("lra")) <= set(everything)


def test_fetch_refuses_an_unknown_name_unfetched_and_fetches_a_group_with_force(fetched):
    with pytest.raises(DataError, match="unknown data set 'nope'.*valid names: minilm-l6"):
        inventory.fetch_data("nope", progress=False)
    assert fetched == []
    assert inventory.fetch_data("models", force=True, progress=False) == "minilm-l6: /x"
    assert fetched == [("minilm-l6", True)]


def test_show_a_text_task_counts_each_label_per_split_and_clips_examples(monkeypatch):
    task = make_keyword_task(sizes=(6, 4, 2))
    task.splits["train"].text_a[0] = "word " * 60
    task.splits["train"].labels[:] = [0, 0, 0, 0, 0, 1]
    monkeypatch.setattr("pyramid_bert.data.load_task", lambda *args, **kwargs: task)
    lines = inventory.show_data("rt-polarity", examples=1).splitlines()
    assert lines[0] == "rt-polarity: metric accuracy, N = 16, 2 labels ['bad', 'good']"
    assert lines[1] == "  train: 6 examples; bad 5, good 1"
    clipped = lines[2].split("] ", 1)[1]  # the long first example, on one line, cut to 100 characters
    assert len(clipped) == 100 and clipped.endswith("...") and clipped.startswith("word word")
    assert [line.split(":")[0].strip() for line in lines if line.startswith("  ") and not line.startswith("    ")] == [
        "train", "dev", "test"]  # fmt: skip
    assert sum(line.startswith("    [") for line in lines) == 3  # one example per split


def test_describe_labels_of_a_regression_task_gives_score_statistics():
    task = make_keyword_task(sizes=(2, 2, 2))
    task.is_regression = True
    assert inventory.describe_labels(task, [1.0, 3.0]) == "score mean 2.000, std 1.000, min 1.000, max 3.000"


def test_show_a_model_prints_its_shape_and_checksums(monkeypatch, tmp_path):
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "bert", "hidden_size": 384}))
    monkeypatch.setattr(fetch, "fetch_source", lambda source, force=False: folder)
    lines = inventory.show_data("minilm-l6").splitlines()
    assert lines[0].startswith("minilm-l6: ") and lines[0].endswith(f" -> {folder}")
    assert "  model_type: bert" in lines and "  hidden_size: 384" in lines and "  vocab_size: None" in lines
    assert lines[-1].startswith("  checksums: ") and lines[-1] != "  checksums: ok"  # its files are missing


def test_export_writes_a_seeded_sample_and_refuses_what_it_did_not_make(monkeypatch, tmp_path):
    monkeypatch.setattr("pyramid_bert.data.load_task", lambda *args, **kwargs: make_keyword_task(sizes=(20, 4, 4)))
    with pytest.raises(ConfigError, match="unknown task 'nope'; valid tasks: .*rt-polarity"):
        inventory.export_data("nope", out=tmp_path / "x.csv")
    out = tmp_path / "k.csv"
    assert inventory.export_data("rt-polarity", out=out, rows=5) == f"{out}: 5 examples of rt-polarity train (columns text, label)"
    with open(out, newline="") as handle:
        assert len(list(csv.DictReader(handle))) == 5
    out.write_text("mine\n")
    with pytest.raises(ConfigError, match="--out"):
        inventory.export_data("rt-polarity", out=out)
    assert out.read_text() == "mine\n"
