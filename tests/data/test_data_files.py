"""The user's own data files: formats, column rules, label kinds and mapping, held-out splits, N, bad input."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import threading
import tracemalloc
from pathlib import Path

import pytest

from pyramid_bert.data.corpora import read_pang_lee_reviews
from pyramid_bert.data.files import WIDE_FIELD_LIMIT, read_examples, wide_csv_fields
from pyramid_bert.data.glue import read_glue_tsv
from pyramid_bert.data.user_task import DataFiles, align_labels, label_kind, load_user_task
from pyramid_bert.errors import DataError
from train_fixtures import write_tiny_bert

LABELS = ["pos", "neg"]


def rows(count: int = 40, labels=LABELS) -> list[dict]:
    return [{"text": f"sentence number {i} is {labels[i % len(labels)]}", "label": labels[i % len(labels)],
             "other": f"second {i}"} for i in range(count)]  # fmt: skip


def write_csv(path: Path, data: list[dict], delimiter: str = ",") -> Path:
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(data[0]), delimiter=delimiter)
        writer.writeheader()
        writer.writerows(data)
    return path


def write_jsonl(path: Path, data: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in data))
    return path


def text_file(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def load(train: Path, **kwargs) -> object:
    return load_user_task(DataFiles(str(train), **kwargs), max_length=16)


@pytest.mark.parametrize("writer", ["csv", "tsv", "jsonl", "datasets"])
def test_each_format_reads_the_same_examples(writer, tmp_path):
    data = rows()
    if writer == "csv":
        path = write_csv(tmp_path / "d.csv", data)
    elif writer == "tsv":
        path = write_csv(tmp_path / "d.tsv", data, "\t")
    elif writer == "jsonl":
        path = write_jsonl(tmp_path / "d.jsonl", data)
    else:
        datasets = pytest.importorskip("datasets")
        path = tmp_path / "folder"
        datasets.Dataset.from_list(data).save_to_disk(str(path))
    task = load(path)
    assert task.label_names == ["neg", "pos"] and task.metric == "accuracy" and not task.is_regression
    together = sorted(text for split in task.splits.values() for text in split.text_a)
    assert together == sorted(row["text"] for row in data)
    for split in task.splits.values():  # labels follow their texts
        for text, label in zip(split.text_a, split.labels, strict=True):
            assert text.endswith(task.label_names[label])


def test_a_datasets_class_label_column_keeps_its_names(tmp_path):
    datasets = pytest.importorskip("datasets")
    features = datasets.Features({"text": datasets.Value("string"), "label": datasets.ClassLabel(names=["zeta", "alpha"])})
    data = {"text": [f"t {i}" for i in range(20)], "label": [i % 2 for i in range(20)]}
    datasets.Dataset.from_dict(data, features=features).save_to_disk(str(tmp_path / "f"))
    task = load(tmp_path / "f")
    assert task.label_names == ["zeta", "alpha"]
    for split in task.splits.values():
        for text, label in zip(split.text_a, split.labels, strict=True):
            assert label == int(text.split()[1]) % 2


def test_two_text_columns_make_sentence_pairs(tmp_path):
    task = load(write_csv(tmp_path / "d.csv", rows()), text_columns=("text", "other"))
    train = task.splits["train"]
    assert train.text_b is not None and all(b.startswith("second ") for b in train.text_b)
    assert [a.split()[2] for a in train.text_a] == [b.split()[1] for b in train.text_b]


def test_label_column_and_text_column_can_be_renamed(tmp_path):
    data = [{"review": row["text"], "stars": row["label"]} for row in rows()]
    task = load(write_csv(tmp_path / "d.csv", data), text_columns=("review",), label_column="stars")
    assert task.label_names == ["neg", "pos"]


def test_integer_labels_are_classes_in_numeric_order(tmp_path):
    data = [{"text": f"t {i}", "label": [2, 10, 1][i % 3]} for i in range(30)]
    task = load(write_csv(tmp_path / "d.csv", data))
    assert task.label_names == ["1", "2", "10"] and task.num_labels == 3
    assert label_kind(["1", "2"]) == "int" and label_kind([1, 2]) == "int"


def test_float_labels_mean_regression_scored_by_spearman(tmp_path):
    data = [{"text": f"t {i}", "label": i / 7} for i in range(40)]
    for path in (write_csv(tmp_path / "d.csv", data), write_jsonl(tmp_path / "d.jsonl", data)):
        task = load(path)
        assert task.is_regression and task.metric == "spearman" and task.num_labels == 1
        assert all(isinstance(v, float) for v in task.splits["train"].labels)
    assert label_kind(["1.0", "2"]) == "float" and label_kind(["1", "x"]) == "str"


def test_only_train_holds_out_seeded_stratified_dev_and_test_and_says_so(tmp_path):
    path = write_csv(tmp_path / "d.csv", rows(100))
    first, again, other_seed = load(path), load(path), load_user_task(DataFiles(str(path)), max_length=16, seed=1)
    assert [len(first.splits[s]) for s in ("train", "dev", "test")] == [80, 10, 10]
    assert first.splits["dev"].text_a == again.splits["dev"].text_a
    assert other_seed.splits["dev"].text_a != first.splits["dev"].text_a
    assert other_seed.splits["test"].text_a == first.splits["test"].text_a  # test does not depend on the seed
    assert sorted(first.splits["dev"].labels) == [0] * 5 + [1] * 5  # stratified
    assert "dev and test" in first.notes["held_out"] and "10%" in first.notes["held_out"]


def test_given_dev_and_test_files_are_used_as_they_are(tmp_path):
    train, dev = write_csv(tmp_path / "t.csv", rows(40)), write_jsonl(tmp_path / "d.jsonl", rows(6))
    task = load(train, dev=str(dev))
    assert task.splits["dev"].text_a == [row["text"] for row in rows(6)]
    assert len(task.splits["test"]) == 4 and len(task.splits["train"]) == 36
    assert task.notes["held_out"].startswith("test split")


def test_default_max_length_is_the_95th_percentile_capped_at_the_limit(tmp_path):
    tokenizer_folder = write_tiny_bert(tmp_path / "tiny")
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_folder)
    data = [{"text": " ".join(["the"] * (30 if i % 25 == 0 else i % 4 + 1)), "label": LABELS[i % 2]} for i in range(200)]
    files = DataFiles(str(write_csv(tmp_path / "d.csv", data)))
    task = load_user_task(files, tokenizer=tokenizer, input_limit=64)
    import numpy as np

    lengths = [len(tokenizer(t)["input_ids"]) for t in task.splits["train"].text_a]
    assert task.max_length == int(np.ceil(np.percentile(lengths, 95))) == 6 < max(lengths)
    assert load_user_task(files, tokenizer=tokenizer, input_limit=5).max_length == 5
    assert "95th percentile" in task.notes["max_length_rule"]


def test_label_mapping_aligns_to_a_models_id2label(tmp_path):
    task = load(write_csv(tmp_path / "d.csv", rows()))
    aligned = align_labels(task, {0: "pos", 1: "neg"}, "model M")
    assert aligned.label_names == ["pos", "neg"]
    for before, after in zip(task.splits["train"].labels, aligned.splits["train"].labels, strict=True):
        assert task.label_names[before] == aligned.label_names[after]
    assert align_labels(task, {0: "LABEL_0", 1: "LABEL_1"}, "m") is task
    with pytest.raises(DataError, match="trained on"):
        align_labels(task, {0: "spam", 1: "ham"}, "model M")


BAD = {
    "missing file": (lambda d: d / "nope.csv", {}, "--train: no such file"),
    "missing text column": (lambda d: write_csv(d / "x.csv", rows()), {"text_columns": ("body",)},
                            "no column 'body'; columns found: text, label, other"),
    "missing label column": (lambda d: write_csv(d / "x.csv", rows()), {"label_column": "y"}, "--label-column"),
    "empty file": (lambda d: text_file(d / "x.csv", ""), {}, "is empty"),
    "header only": (lambda d: text_file(d / "x.csv", "text,label\n"), {}, "is empty"),
    "empty jsonl": (lambda d: text_file(d / "x.jsonl", "\n"), {}, "is empty"),
    "single class": (lambda d: write_csv(d / "x.csv", rows(labels=["pos"])), {}, "single class ('pos')"),
    "bad csv row": (lambda d: text_file(d / "x.csv", "text,label\na,pos\nb,neg,extra\n"), {},
                    "line 3: 3 field(s)"),
    "bad json row": (lambda d: text_file(d / "x.jsonl", '{"text": "a", "label": 1}\n{"text": \n'),
                     {}, "line 2: unparseable JSON"),
    "empty label": (lambda d: text_file(d / "x.csv", "text,label\na,pos\nb,\n"), {},
                    "line 3: empty label"),
    "unknown format": (lambda d: text_file(d / "x.xlsx", "x"), {}, "unknown format '.xlsx'"),
    "three text columns": (lambda d: write_csv(d / "x.csv", rows()), {"text_columns": ("text", "other", "label")},
                           "--text-column"),
}


@pytest.mark.parametrize(("make", "kwargs", "needle"), list(BAD.values()), ids=list(BAD))
def test_bad_files_are_one_clear_error(make, kwargs, needle, tmp_path):
    path = make(tmp_path)
    with pytest.raises(DataError) as error:
        load(path, **kwargs)
    assert needle in str(error.value) and "\n" not in str(error.value)


def test_dev_or_test_labels_unseen_in_train_are_an_error(tmp_path):
    train = write_csv(tmp_path / "t.csv", rows())
    test = write_csv(tmp_path / "s.csv", rows(6, labels=["pos", "meh"]))
    with pytest.raises(DataError, match=r"--test: .*\['meh'\] do not occur in the train file"):
        load(train, test=str(test))


def test_regression_dev_labels_must_be_numbers(tmp_path):
    train = write_csv(tmp_path / "t.csv", [{"text": f"t {i}", "label": i / 3} for i in range(30)])
    dev = write_csv(tmp_path / "d.csv", [{"text": "a", "label": "0.5"}, {"text": "b", "label": "high"}])
    with pytest.raises(DataError, match="--dev: .* line 3: label 'high' is not a number"):
        load(train, dev=str(dev))


def test_a_built_in_split_exported_reads_back_with_its_label_names(tmp_path, monkeypatch, capsys):
    from pyramid_bert import cli
    from train_fixtures import make_keyword_task

    keyword = make_keyword_task(sizes=(40, 8, 8))
    monkeypatch.setattr("pyramid_bert.data.load_task", lambda *args, **kwargs: keyword)
    assert cli.main(["data", "export", "rt-polarity", "--out", str(tmp_path / "k.csv"), "--rows", "30"]) == 0
    task = load(tmp_path / "k.csv")
    assert task.label_names == ["bad", "good"]
    index = {text: keyword.label_names[label] for text, label in zip(keyword.splits["train"].text_a,
                                                                     keyword.splits["train"].labels, strict=True)}  # fmt: skip
    for split in task.splits.values():
        for text, label in zip(split.text_a, split.labels, strict=True):
            assert index[text] == task.label_names[label]
    assert cli.main(["data", "export", "rt-polarity", "--out", str(tmp_path / "k.csv")]) == 2  # exists: not replaced
    assert "--force" in capsys.readouterr().err


def test_finetune_and_evaluate_take_data_files_and_store_the_label_names(tmp_path, one_thread, capsys):
    from pyramid_bert import cli

    model = write_tiny_bert(tmp_path / "tiny")
    data = [{"review": f"the movie was {'good' if i % 2 else 'bad'} {i}", "stars": ["low", "high"][i % 2]}
            for i in range(60)]  # fmt: skip
    path = write_csv(tmp_path / "r.csv", data)
    files = ["--train", str(path), "--text-column", "review", "--label-column", "stars"]
    code = cli.main(["finetune", "--model", str(model), *files, "--method", "dense", "--epochs", "0.5",
                     "--out", str(tmp_path / "run"), "--no-progress"])  # fmt: skip
    assert code == 0
    out = capsys.readouterr().out
    assert "held out" in out and "high, low" in out
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["id2label"] == {"0": "high", "1": "low"} and config["label2id"] == {"high": 0, "low": 1}
    assert cli.main(["evaluate", str(tmp_path / "run"), *files, "--no-speed"]) == 0
    assert "r.csv / test (6 examples)" in capsys.readouterr().out


@pytest.mark.integration
def test_bench_times_the_test_split_of_a_data_file(tmp_path, one_thread, capsys):
    from pyramid_bert import cli

    data = [{"review": f"the film number {i} was " + "quite " * (i % 9) + ["good", "bad"][i % 2], "y": i % 2}
            for i in range(80)]  # fmt: skip
    path = write_csv(tmp_path / "r.csv", data)
    code = cli.main(["bench", "--model", "minilm-l6", "--train", str(path), "--text-column", "review",
                     "--label-column", "y", "--schedule", "ratio", "--configs", "1:0.5", "--batch-sizes", "4",
                     "--m", "1", "--examples", "8", "--repeats", "1", "--warmup", "1"])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0 and "on " + str(path) + " test (8 examples" in out
    assert cli.main(["bench", "--task", "rt-polarity", "--train", str(path)]) == 2


# --- the csv field size limit is raised only while our readers read; reading keeps only the columns it needs ---

LONG_TEXT = "word " * 60_000  # 300 kB: over csv's default field size limit of 128 kB


@pytest.fixture
def default_field_limit() -> int:
    """csv's default field size limit for the test, whatever the process had; restored after."""
    previous = csv.field_size_limit(131_072)
    yield 131_072
    csv.field_size_limit(previous)


def test_importing_the_package_leaves_the_csv_field_limit_alone():
    code = ("import csv; before = csv.field_size_limit(); import pyramid_bert.data, pyramid_bert.data.glue, "
            "pyramid_bert.data.corpora, pyramid_bert.data.files, pyramid_bert.data.user_task; "
            "print(before, csv.field_size_limit())")  # fmt: skip
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    before, after = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                                   env=env).stdout.split()  # fmt: skip
    assert before == after == "131072"


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".jsonl"])
def test_a_field_longer_than_csvs_default_limit_is_read_and_the_limit_restored(suffix, tmp_path, default_field_limit):
    data = [{"text": LONG_TEXT, "label": "pos"}, {"text": "short", "label": "neg"}]
    if suffix == ".jsonl":
        path = write_jsonl(tmp_path / "d.jsonl", data)
    else:
        path = write_csv(tmp_path / f"d{suffix}", data, "," if suffix == ".csv" else "\t")
    raw = read_examples(path, "--train", ("text",), "label")
    assert raw.text_a == [LONG_TEXT, "short"] and raw.labels == ["pos", "neg"]
    assert csv.field_size_limit() == default_field_limit


def test_corpus_and_glue_readers_read_long_fields_and_restore_the_limit(tmp_path, default_field_limit):
    pang_lee = text_file(tmp_path / "pang.csv", f'1,"{LONG_TEXT}"\n-1,"short"\n')
    assert read_pang_lee_reviews(pang_lee) == ([LONG_TEXT, "short"], ["positive", "negative"])
    sst2 = text_file(tmp_path / "dev.tsv", f"sentence\tlabel\n{LONG_TEXT}\t1\nshort\t0\n")
    assert read_glue_tsv(sst2, "sst2") == ([LONG_TEXT, "short"], None, [1, 0])
    assert csv.field_size_limit() == default_field_limit


def test_nested_and_concurrent_wide_field_blocks_restore_the_limit_once(default_field_limit):
    entered, release = threading.Barrier(2), threading.Event()

    def reader():
        with wide_csv_fields():
            entered.wait(5)
            assert release.wait(5)

    thread = threading.Thread(target=reader)
    thread.start()
    with wide_csv_fields():
        entered.wait(5)
        with wide_csv_fields():
            assert csv.field_size_limit() == WIDE_FIELD_LIMIT
        assert csv.field_size_limit() == WIDE_FIELD_LIMIT  # the inner block left, the outer holds
    assert csv.field_size_limit() == WIDE_FIELD_LIMIT  # the other thread still reads
    release.set()
    thread.join(5)
    assert csv.field_size_limit() == default_field_limit


def test_reading_keeps_only_the_needed_columns_and_shares_equal_labels(tmp_path):
    data = [{"id": i, "text": " ".join(["word"] * (10 + i % 50)), "label": LABELS[i % 2], "source": f"site-{i % 50}"}
            for i in range(20_000)]  # fmt: skip
    path = write_csv(tmp_path / "d.csv", data)
    tracemalloc.start()
    try:
        raw = read_examples(path, "--train", ("text",), "label")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert len(raw) == 20_000 and raw.labels[0] is raw.labels[2]
    assert peak < 2 * path.stat().st_size  # was 3.1x: a dict of every column per row, and one label string per row
