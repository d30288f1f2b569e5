"""GLUE loaders on fixture folders in the standard TSV layout, and their errors."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from pyramid_bert.data import GLUE_TASKS, load_task
from pyramid_bert.data.glue import load_glue
from pyramid_bert.data.tasks import glue_dev_size
from pyramid_bert.errors import DataError

TRAIN_ROWS, DEV_ROWS = 40, 6

HEADERS = {
    "SST-2": ["sentence", "label"],
    "MRPC": ["Quality", "#1 ID", "#2 ID", "#1 String", "#2 String"],
    "STS-B": ["index", "genre", "filename", "year", "old_index", "source1", "source2", "sentence1", "sentence2",
              "score"],
    "QQP": ["id", "qid1", "qid2", "question1", "question2", "is_duplicate"],
    "MNLI": ["index", "promptID", "pairID", "genre", "sentence1_binary_parse", "sentence2_binary_parse",
             "sentence1_parse", "sentence2_parse", "sentence1", "sentence2", "label1", "gold_label"],
    "QNLI": ["index", "question", "sentence", "label"],
    "RTE": ["index", "sentence1", "sentence2", "label"],
    "WNLI": ["index", "sentence1", "sentence2", "label"],
}
RAW_LABELS = {"SST-2": ["0", "1"], "MRPC": ["0", "1"], "QQP": ["0", "1"], "WNLI": ["0", "1"],
              "MNLI": ["entailment", "neutral", "contradiction"], "QNLI": ["entailment", "not_entailment"],
              "RTE": ["entailment", "not_entailment"], "CoLA": ["0", "1"]}


def glue_row(folder: str, i: int, split: str) -> list[str]:
    a, b = f"{split} first sentence {i}", f"{split} second sentence {i}"
    if folder == "CoLA":
        return ["gj04", RAW_LABELS["CoLA"][i % 2], "*" if i % 2 == 0 else "", a]
    label = str(round(5 * (i % 11) / 10, 1)) if folder == "STS-B" else RAW_LABELS[folder][i % len(RAW_LABELS[folder])]
    values = {"sentence": b if folder == "QNLI" else a, "#1 String": a, "#2 String": b, "sentence1": a, "sentence2": b, "question1": a,
              "question2": b, "question": a, "label": label, "Quality": label, "score": label,
              "is_duplicate": label, "gold_label": label}
    return [values.get(column, str(i)) for column in HEADERS[folder]]


def write_tsv(path: Path, header: list[str] | None, rows: list[list[str]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ([header] if header else []) + rows
    path.write_text("".join("\t".join(line) + "\n" for line in lines), encoding="utf-8")


def write_glue_dir(root: Path) -> Path:
    for folder in ["CoLA", *HEADERS]:
        header = HEADERS.get(folder)
        files = {"train.tsv": ("train", TRAIN_ROWS)}
        if folder == "MNLI":
            files.update({"dev_matched.tsv": ("matched", DEV_ROWS), "dev_mismatched.tsv": ("mismatched", DEV_ROWS + 3)})
        else:
            files["dev.tsv"] = ("dev", DEV_ROWS)
        for name, (split, count) in files.items():
            write_tsv(root / folder / name, header, [glue_row(folder, i, split) for i in range(count)])
    return root


@pytest.fixture
def glue_dir(tmp_path) -> Path:
    return write_glue_dir(tmp_path / "glue")


@pytest.mark.parametrize("task", list(GLUE_TASKS))
def test_every_glue_task_loads_with_its_metric_and_splits(task, glue_dir):
    data = load_task(task, glue_dir=glue_dir)
    spec = GLUE_TASKS[task]
    assert (data.metric, data.max_length, data.num_labels) == (spec.metric, spec.max_length, spec.num_labels)
    dev_size = glue_dev_size(TRAIN_ROWS)
    official_dev = DEV_ROWS + 3 if task == "mnli-mm" else DEV_ROWS
    assert {k: len(v) for k, v in data.splits.items()} == {"train": TRAIN_ROWS - dev_size, "dev": dev_size,
                                                           "test": official_dev}
    assert all(text.startswith("train") for split in ("train", "dev") for text in data.splits[split].text_a)
    expected_test_prefix = {"mnli": "matched", "mnli-mm": "mismatched"}.get(task, "dev")
    assert all(text.startswith(expected_test_prefix) for text in data.splits["test"].text_a)
    if spec.is_pair:
        assert data.splits["test"].text_b == [f"{expected_test_prefix} second sentence {i}"
                                              for i in range(official_dev)]
    else:
        assert data.splits["test"].text_b is None


def test_labels_follow_the_datasets_class_order(glue_dir):
    assert load_task("mnli", glue_dir=glue_dir).splits["test"].labels == [0, 1, 2, 0, 1, 2]
    assert load_task("qnli", glue_dir=glue_dir).splits["test"].labels == [0, 1, 0, 1, 0, 1]
    cola = load_task("cola", glue_dir=glue_dir)
    assert cola.splits["test"].labels == [0, 1, 0, 1, 0, 1]
    assert cola.splits["test"].text_a[0] == "dev first sentence 0"
    stsb = load_task("stsb", glue_dir=glue_dir)
    assert stsb.is_regression and stsb.splits["test"].labels == [0.0, 0.5, 1.0, 1.5, 2.0, 2.5]


def test_dev_is_a_seeded_holdout_from_train(glue_dir):
    first, again, other = (load_task("rte", glue_dir=glue_dir, seed=s) for s in (0, 0, 1))
    assert first.splits["dev"].text_a == again.splits["dev"].text_a
    assert first.splits["dev"].text_a != other.splits["dev"].text_a
    assert set(first.splits["dev"].text_a).isdisjoint(first.splits["train"].text_a)
    assert first.splits["test"].text_a == other.splits["test"].text_a


def test_glue_dir_from_environment(glue_dir, monkeypatch):
    monkeypatch.setenv("PYRAMID_BERT_GLUE_DIR", str(glue_dir))
    assert len(load_task("sst2").splits["test"]) == DEV_ROWS


def test_dev_holdout_size_is_capped():
    assert glue_dev_size(2490) == 249
    assert glue_dev_size(392702) == 5000


def test_a_label_closing_the_row_is_read_from_the_end(glue_dir):
    rows = [glue_row("STS-B", i, "dev") for i in range(3)]
    rows[1] = rows[1][:8] + ["stray field"] + rows[1][8:]
    write_tsv(glue_dir / "STS-B" / "dev.tsv", HEADERS["STS-B"], rows)
    assert load_task("stsb", glue_dir=glue_dir).splits["test"].labels == [0.0, 0.5, 1.0]


def test_missing_file_is_named(glue_dir):
    (glue_dir / "RTE" / "dev.tsv").unlink()
    with pytest.raises(DataError, match=r"missing file .*RTE/dev.tsv"):
        load_task("rte", glue_dir=glue_dir)


def test_missing_column_is_named(glue_dir):
    write_tsv(glue_dir / "QNLI" / "train.tsv", ["index", "question", "label"], [["0", "q", "entailment"]])
    with pytest.raises(DataError, match=r"QNLI/train.tsv has no column 'sentence'"):
        load_task("qnli", glue_dir=glue_dir)


def test_label_outside_the_label_set_is_named(glue_dir):
    rows = [glue_row("MNLI", i, "train") for i in range(5)]
    rows[3][-1] = "maybe"
    write_tsv(glue_dir / "MNLI" / "train.tsv", HEADERS["MNLI"], rows)
    with pytest.raises(DataError, match=r"line 5: label 'maybe' is not one of"):
        load_task("mnli", glue_dir=glue_dir)


def test_empty_split_is_an_error(glue_dir):
    write_tsv(glue_dir / "SST-2" / "dev.tsv", HEADERS["SST-2"], [])
    with pytest.raises(DataError, match="empty split"):
        load_task("sst2", glue_dir=glue_dir)


def test_many_short_rows_are_an_error(glue_dir):
    write_tsv(glue_dir / "QQP" / "dev.tsv", HEADERS["QQP"], [["1", "2", "3", "only a question"]] * 3)
    with pytest.raises(DataError, match="fewer than 6 tab-separated columns"):
        load_task("qqp", glue_dir=glue_dir)


def test_nonexistent_glue_dir_is_named(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_task("cola", glue_dir=tmp_path / "nowhere")


def test_without_folder_or_datasets_the_error_says_what_to_do(monkeypatch):
    monkeypatch.delenv("PYRAMID_BERT_GLUE_DIR", raising=False)
    monkeypatch.setitem(sys.modules, "datasets", None)
    with pytest.raises(DataError, match=r"--glue-dir.*datasets"):
        load_glue("cola")


def test_datasets_route_maps_columns_and_uses_validation_as_test(monkeypatch):
    calls = []

    class FakeDatasets:
        @staticmethod
        def load_dataset(name, config):
            calls.append((name, config))
            part = {"premise": ["p0", "p1"], "hypothesis": ["h0", "h1"], "label": [2, 0], "idx": [0, 1]}
            return {"train": part, "validation_matched": {**part, "premise": ["vp0", "vp1"]}}

    monkeypatch.delenv("PYRAMID_BERT_GLUE_DIR", raising=False)
    monkeypatch.setitem(sys.modules, "datasets", FakeDatasets)
    splits = load_glue("mnli")
    assert calls == [("glue", "mnli")]
    assert splits["train"] == (["p0", "p1"], ["h0", "h1"], [2, 0])
    assert splits["test"] == (["vp0", "vp1"], ["h0", "h1"], [2, 0])
