"""``predict``: streamed predictions (chunks of batches read, predicted and written as they come) that equal the
whole-file predictions, a reader consumed lazily, and nothing left behind when a row further on is bad.

The model is a tiny random 2-layer BERT classifier with keep-ratio token selection, saved as a model folder; the
texts are the keyword fixture's, so nothing is downloaded.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from pyramid_bert import cli
from train_fixtures import make_keyword_task, write_tiny_bert

pytestmark = pytest.mark.usefixtures("one_thread")

ROWS = 50


@pytest.fixture(scope="module")
def texts() -> list[str]:
    task = make_keyword_task(sizes=(ROWS, 4, 4))
    return task.splits["train"].text_a


@pytest.fixture(scope="module")
def classifier(tmp_path_factory, texts) -> Path:
    """A pyramid classifier folder (coreset, keep ratios 0.5 per layer) with label names, its head scaled and
    centred so that the texts get both labels and scores spread over (0.5, 1)."""
    import torch
    from transformers import AutoTokenizer

    from pyramid_bert import load_pyramid_model, pyramidize

    folder = write_tiny_bert(tmp_path_factory.mktemp("predict") / "model", num_layers=2, num_labels=2)
    model = pyramidize(load_pyramid_model(str(folder)), keep_ratios=[0.5, 0.5]).eval()
    model.config.id2label, model.config.label2id = {0: "bad", 1: "good"}, {"bad": 0, "good": 1}
    with torch.no_grad():
        model.classifier.weight.mul_(300)
        logits = model(**AutoTokenizer.from_pretrained(folder)(texts, padding=True, return_tensors="pt")).logits
        model.classifier.bias[1] -= float((logits[:, 1] - logits[:, 0]).median())
    model.save_pretrained(folder)
    return folder


def write_input(path: Path, texts: list[str]) -> Path:
    """``id`` and ``review`` columns, as CSV, TSV or JSONL by ``path``'s extension."""
    if path.suffix == ".jsonl":
        path.write_text("".join(json.dumps({"id": i, "review": text}) + "\n" for i, text in enumerate(texts)))
        return path
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle, delimiter="\t" if path.suffix == ".tsv" else ",")
        writer.writerow(["id", "review"])
        writer.writerows(enumerate(texts))
    return path


def read_output(path: Path) -> list[dict]:
    if path.suffix == ".jsonl":
        return [json.loads(line) for line in path.read_text().splitlines()]
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle, delimiter="\t" if path.suffix == ".tsv" else ","))


@pytest.mark.parametrize(("source", "target"), [(".csv", ".csv"), (".tsv", ".jsonl"), (".jsonl", ".tsv")])
def test_streamed_predictions_equal_the_whole_file_ones(classifier, texts, tmp_path, source, target):
    from transformers import AutoTokenizer

    from pyramid_bert import load_pyramid_model
    from pyramid_bert.compress.predict import CHUNK_BATCHES, predict_file, predict_texts

    batch_size = 3
    assert 2 * batch_size * CHUNK_BATCHES < ROWS  # three chunks, the last one shorter
    expected = predict_texts(load_pyramid_model(str(classifier)), AutoTokenizer.from_pretrained(classifier), texts,
                             batch_size=ROWS)  # fmt: skip
    output = tmp_path / f"p{target}"
    count = predict_file(classifier, write_input(tmp_path / f"in{source}", texts), output, text_columns=("review",),
                         batch_size=batch_size, progress=False)  # fmt: skip
    rows = read_output(output)
    assert count == ROWS and [str(row["id"]) for row in rows] == [str(i) for i in range(ROWS)]
    assert [row["review"] for row in rows] == texts
    assert [row["label"] for row in rows] == expected[0] and set(expected[0]) == {"bad", "good"}
    assert [float(row["score"]) for row in rows] == pytest.approx(expected[1], abs=1e-5)
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted([f"in{source}", f"p{target}"])


def test_rows_are_read_lazily_a_chunk_at_a_time(classifier, texts, tmp_path, monkeypatch):
    import pyramid_bert.compress.predict as predict

    read = {"rows": 0}
    calls = []
    csv_reader = csv.reader

    class CountingReader:
        """csv.reader, counting the rows it has handed out."""

        def __init__(self, *args, **kwargs) -> None:
            self.reader = csv_reader(*args, **kwargs)

        def __iter__(self):
            return self

        def __next__(self) -> list[str]:
            fields = next(self.reader)
            read["rows"] += 1
            return fields

        @property
        def line_num(self) -> int:
            return self.reader.line_num

    def fake_predict_texts(model, tokenizer, text_a, text_b=None, **kwargs):
        calls.append((len(text_a), read["rows"]))
        return ["bad"] * len(text_a), [0.5] * len(text_a)

    monkeypatch.setattr(csv, "reader", CountingReader)
    monkeypatch.setattr(predict, "predict_texts", fake_predict_texts)
    source = write_input(tmp_path / "in.csv", texts)
    assert predict.predict_file(classifier, source, tmp_path / "p.csv", text_columns=("review",), batch_size=2,
                                progress=False) == ROWS  # fmt: skip
    assert len(calls) > 1 and calls[0][1] < ROWS, calls  # predicting began before the whole file was read
    chunk = 2 * predict.CHUNK_BATCHES
    assert [size for size, _ in calls] == [chunk] * (ROWS // chunk) + [ROWS % chunk]
    assert calls[0][1] <= 1 + chunk + 1  # the header and the first chunk (and at most one row to see it ended)


def test_a_bad_row_after_the_first_chunks_leaves_no_output_and_no_temporary_file(classifier, texts, tmp_path, capsys):
    source = write_input(tmp_path / "in.csv", texts)
    source.write_text(source.read_text() + "99,too,many,fields\n")
    (tmp_path / "p.csv").write_text("mine\n")
    argv = ["predict", str(classifier), "--input", str(source), "--output", str(tmp_path / "p.csv"), "--force",
            "--text-column", "review", "--batch-size", "2", "--no-progress"]  # fmt: skip
    assert cli.main(argv) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and f"line {ROWS + 2}: 4 field(s)" in err[0], err
    assert (tmp_path / "p.csv").read_text() == "mine\n"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["in.csv", "p.csv"]


def test_max_length_beyond_the_models_limit_is_a_config_error(classifier, texts, tmp_path):
    from pyramid_bert.compress.predict import predict_file
    from pyramid_bert.errors import ConfigError

    source = write_input(tmp_path / "in.csv", texts)
    with pytest.raises(ConfigError, match=r"--max-length: must be an int in 2\.\.64"):
        predict_file(classifier, source, tmp_path / "p.csv", text_columns=("review",), max_length=65, progress=False)
    assert not (tmp_path / "p.csv").exists()
