"""load_task on text corpora (fixtures stand in for the cache), tokenize_split and resolve_model."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from pyramid_bert.data import TASK_NAMES, TEXT_TASKS, load_task, resolve_model, tokenize_split
from pyramid_bert.data import tasks as tasks_module
from pyramid_bert.data.catalog import SOURCES
from pyramid_bert.data.tasks import Split, TaskData
from pyramid_bert.errors import ConfigError, DataError

TREC_LABELS = ["ABBR", "DESC", "ENTY", "HUM", "LOC", "NUM"]


@pytest.fixture
def corpus_folder(tmp_path, monkeypatch) -> Path:
    """A fake cache folder; load_task's fetch returns it instead of downloading."""
    folder = tmp_path / "cache"
    folder.mkdir()
    monkeypatch.setattr(tasks_module, "fetch_source", lambda source: folder)
    return folder


def write_trec(folder: Path, lines: list[str]) -> None:
    (folder / "question_labels.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")


def trec_lines(per_label: int = 20) -> list[str]:
    return [f"{label}:x Question {label} number {i} ?" for label in TREC_LABELS for i in range(per_label)]


def test_task_names_cover_text_and_glue():
    assert TASK_NAMES == ("rt-polarity", "trec", "sms-spam", "movie-sentiment-score", "pang-lee-reviews",
                          "bbc-news", "cola", "sst2", "mrpc", "stsb", "qqp", "mnli", "mnli-mm", "qnli", "rte", "wnli")


def test_corpus_task_is_deduplicated_split_and_labelled(corpus_folder):
    write_trec(corpus_folder, trec_lines() + trec_lines()[:30])  # 30 exact duplicates
    task = load_task("trec")
    assert (task.metric, task.max_length, task.num_labels, task.label_names) == ("accuracy", 64, 6, TREC_LABELS)
    assert task.notes["deduplication"]["duplicates"] == 30
    sizes = {name: len(split) for name, split in task.splits.items()}
    assert sizes == {"train": 96, "dev": 12, "test": 12}
    texts = [set(split.text_a) for split in task.splits.values()]
    assert sum(map(len, texts)) == len(set.union(*texts)) == 120
    for split in task.splits.values():
        assert split.text_b is None
        assert sorted(set(split.labels)) == list(range(6))


def test_label_outside_the_task_label_set_is_named(corpus_folder):
    write_trec(corpus_folder, [*trec_lines(), "COLOR:x What colour is it ?"])
    with pytest.raises(DataError, match=r"\['COLOR'\] outside the label set of task 'trec'"):
        load_task("trec")


def test_empty_corpus_is_an_error(corpus_folder):
    write_trec(corpus_folder, [])
    with pytest.raises(DataError, match="no examples"):
        load_task("trec")


def test_regression_corpus_keeps_float_scores(corpus_folder):
    rows = "".join(f"{i}\t{(i % 17) / 2 - 4}\tsnippet number {i}\n" for i in range(100))
    (corpus_folder / "movieReviewSnippets_GroundTruth.txt").write_text("id\tsentiment\ttext\n" + rows)
    task = load_task("movie-sentiment-score")
    assert task.is_regression and task.num_labels == 1 and task.metric == "spearman"
    assert all(isinstance(v, float) for v in task.splits["train"].labels)


@pytest.mark.parametrize("name", ["imdb", "", "RT-POLARITY"])
def test_unknown_task_lists_the_valid_names(name):
    with pytest.raises(DataError, match=r"unknown task .*valid tasks: rt-polarity, trec"):
        load_task(name)


def test_every_text_task_has_a_source_and_a_reader():
    for name, spec in TEXT_TASKS.items():
        assert spec.source in SOURCES and name in tasks_module.CORPUS_READERS


def tiny_tokenizer():
    from transformers import BertTokenizer

    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "good", "bad", "movie", "very"]
    return BertTokenizer(vocab={word: i for i, word in enumerate(words)})


def task_with(split: Split, *, regression: bool = False) -> TaskData:
    return TaskData("fixture", "spearman" if regression else "accuracy", regression, 1 if regression else 2,
                    [] if regression else ["neg", "pos"], 6, {"train": split})


def test_tokenize_single_sentences_pads_and_truncates_to_n():
    task = task_with(Split(["good movie", "very very very bad movie"], None, [1, 0]))
    batch = tokenize_split(tiny_tokenizer(), task, "train")
    assert batch["input_ids"].tolist() == [[2, 6, 8, 3, 0, 0], [2, 9, 9, 9, 7, 3]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1, 1, 0, 0], [1] * 6]
    assert batch["labels"].dtype == torch.long and batch["labels"].tolist() == [1, 0]


def test_tokenize_pairs_as_pairs_with_segment_ids():
    task = task_with(Split(["good movie"], ["bad"], [2.5]), regression=True)
    batch = tokenize_split(tiny_tokenizer(), task, "train", max_length=8)
    assert batch["input_ids"].tolist() == [[2, 6, 8, 3, 7, 3, 0, 0]]
    assert batch["token_type_ids"].tolist() == [[0, 0, 0, 0, 1, 1, 0, 0]]
    assert batch["labels"].dtype == torch.float32 and batch["labels"].tolist() == [2.5]


def test_tokenize_unknown_split_names_the_valid_ones():
    with pytest.raises(ConfigError, match="valid splits: train"):
        tokenize_split(tiny_tokenizer(), task_with(Split(["a"], None, [0])), "validation")


def test_resolve_model_passes_paths_and_hub_names_through(tmp_path):
    assert resolve_model(str(tmp_path)) == str(tmp_path)
    assert resolve_model("bert-base-uncased") == "bert-base-uncased"


def test_resolve_model_fetches_catalog_models(monkeypatch, tmp_path):
    from pyramid_bert.data import models

    monkeypatch.setattr(models, "fetch_source", lambda source: tmp_path / source.name)
    assert resolve_model("minilm-l6") == str(tmp_path / "minilm-l6")
