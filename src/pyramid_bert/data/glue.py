"""GLUE loaders: from a local folder in the standard GLUE TSV layout, or through ``datasets``.

Folder layout (as written by the GLUE download script)::

    GLUE_DIR/CoLA/{train,dev}.tsv     (no header: source, label, original label, sentence)
    GLUE_DIR/SST-2/{train,dev}.tsv    GLUE_DIR/MRPC/{train,dev}.tsv    GLUE_DIR/STS-B/{train,dev}.tsv
    GLUE_DIR/QQP/{train,dev}.tsv      GLUE_DIR/QNLI/{train,dev}.tsv    GLUE_DIR/RTE/{train,dev}.tsv
    GLUE_DIR/WNLI/{train,dev}.tsv     GLUE_DIR/MNLI/{train,dev_matched,dev_mismatched}.tsv

GLUE's test labels are hidden, so the official dev set serves as our ``test`` split; :mod:`tasks` holds
out a seeded ``dev`` split from train. Label ids follow the ``datasets`` GLUE ClassLabel order, so both
routes give the same ids.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path

from pyramid_bert.data.files import wide_csv_fields
from pyramid_bert.errors import DataError

GLUE_DIR_ENV = "PYRAMID_BERT_GLUE_DIR"
MAX_MALFORMED_FRACTION = 0.01


@dataclass(frozen=True)
class GlueLayout:
    """Where one task's text and label live, in the TSV files and in the ``datasets`` version.

    Columns are header names, or int positions for headerless files (CoLA). ``raw_labels`` are the label
    strings in the TSV in label-id order (None for the regression task STS-B).
    """

    folder: str
    test_file: str
    text_a: str | int
    text_b: str | int | None
    label: str | int
    raw_labels: tuple[str, ...] | None
    hf_config: str
    hf_test_split: str
    hf_text_a: str
    hf_text_b: str | None
    has_header: bool = True
    train_file: str = "train.tsv"


GLUE_LAYOUTS: dict[str, GlueLayout] = {
    "cola": GlueLayout(
        "CoLA", "dev.tsv", 3, None, 1, ("0", "1"), "cola", "validation", "sentence", None, has_header=False
    ),
    "sst2": GlueLayout(
        "SST-2", "dev.tsv", "sentence", None, "label", ("0", "1"), "sst2", "validation", "sentence", None
    ),
    "mrpc": GlueLayout(
        "MRPC",
        "dev.tsv",
        "#1 String",
        "#2 String",
        "Quality",
        ("0", "1"),
        "mrpc",
        "validation",
        "sentence1",
        "sentence2",
    ),
    "stsb": GlueLayout(
        "STS-B", "dev.tsv", "sentence1", "sentence2", "score", None, "stsb", "validation", "sentence1", "sentence2"
    ),
    "qqp": GlueLayout(
        "QQP",
        "dev.tsv",
        "question1",
        "question2",
        "is_duplicate",
        ("0", "1"),
        "qqp",
        "validation",
        "question1",
        "question2",
    ),
    "mnli": GlueLayout(
        "MNLI",
        "dev_matched.tsv",
        "sentence1",
        "sentence2",
        "gold_label",
        ("entailment", "neutral", "contradiction"),
        "mnli",
        "validation_matched",
        "premise",
        "hypothesis",
    ),
    "mnli-mm": GlueLayout(
        "MNLI",
        "dev_mismatched.tsv",
        "sentence1",
        "sentence2",
        "gold_label",
        ("entailment", "neutral", "contradiction"),
        "mnli",
        "validation_mismatched",
        "premise",
        "hypothesis",
    ),
    "qnli": GlueLayout(
        "QNLI",
        "dev.tsv",
        "question",
        "sentence",
        "label",
        ("entailment", "not_entailment"),
        "qnli",
        "validation",
        "question",
        "sentence",
    ),
    "rte": GlueLayout(
        "RTE",
        "dev.tsv",
        "sentence1",
        "sentence2",
        "label",
        ("entailment", "not_entailment"),
        "rte",
        "validation",
        "sentence1",
        "sentence2",
    ),
    "wnli": GlueLayout(
        "WNLI", "dev.tsv", "sentence1", "sentence2", "label", ("0", "1"), "wnli", "validation", "sentence1", "sentence2"
    ),
}

GlueSplit = tuple[list[str], list[str] | None, list[int] | list[float]]


def resolve_glue_dir(glue_dir: str | os.PathLike[str] | None) -> Path | None:
    """``glue_dir`` if given, else ``$PYRAMID_BERT_GLUE_DIR`` if set, else None."""
    chosen = glue_dir if glue_dir is not None else os.environ.get(GLUE_DIR_ENV) or None
    return Path(chosen).expanduser() if chosen is not None else None


def glue_files(task: str, glue_dir: Path) -> dict[str, Path]:
    """The TSV file of each split (``train``, ``test``) of ``task`` inside ``glue_dir``."""
    layout = GLUE_LAYOUTS[task]
    return {"train": glue_dir / layout.folder / layout.train_file, "test": glue_dir / layout.folder / layout.test_file}


def _column_index(path: Path, header: list[str] | None, column: str | int) -> int:
    if isinstance(column, int):
        return column
    assert header is not None
    if column not in header:
        raise DataError(f"GLUE file {path} has no column {column!r} (columns: {', '.join(header)})")
    return header.index(column)


def read_glue_tsv(path: Path, task: str) -> GlueSplit:
    """Read one GLUE TSV of ``task``: (text_a, text_b or None, label ids or float scores).

    Rows with too few fields (a handful exist in some QQP copies) are skipped; more than 1% of them, a
    missing file, a missing column or a label outside the task's set raise DataError naming the file.
    """
    layout = GLUE_LAYOUTS[task]
    if not path.is_file():
        raise DataError(
            f"GLUE task {task!r}: missing file {path} (expected the standard GLUE TSV layout; "
            f"give --glue-dir or set {GLUE_DIR_ENV})"
        )
    with path.open(encoding="utf-8-sig", newline="") as stream, wide_csv_fields():
        rows = list(csv.reader(stream, delimiter="\t", quoting=csv.QUOTE_NONE))
    header = rows.pop(0) if layout.has_header and rows else None
    if layout.has_header and header is None:
        raise DataError(f"GLUE file {path} is empty (expected a header line)")
    columns = [_column_index(path, header, c) for c in (layout.text_a, layout.text_b, layout.label) if c is not None]
    needed = max(columns) + 1
    label_column = columns[-1]
    if header is not None and label_column == len(header) - 1:
        label_column = -1  # the label closes the row: robust to stray tabs inside a sentence (some STS-B rows)
    text_a, text_b, labels = [], [] if layout.text_b is not None else None, []
    malformed = 0
    for number, row in enumerate(rows, start=2 if header else 1):
        if len(row) < needed:
            malformed += 1
            continue
        raw = row[label_column].strip()
        if layout.raw_labels is None:
            try:
                labels.append(float(raw))
            except ValueError:
                raise DataError(f"GLUE file {path}, line {number}: label {raw!r} is not a number") from None
        elif raw in layout.raw_labels:
            labels.append(layout.raw_labels.index(raw))
        else:
            raise DataError(f"GLUE file {path}, line {number}: label {raw!r} is not one of {list(layout.raw_labels)}")
        text_a.append(row[columns[0]])
        if text_b is not None:
            text_b.append(row[columns[1]])
    if malformed > MAX_MALFORMED_FRACTION * max(1, len(rows)):
        raise DataError(
            f"GLUE file {path}: {malformed} of {len(rows)} rows have fewer than {needed} tab-separated columns"
        )
    if not labels:
        raise DataError(f"GLUE file {path} has no examples (empty split)")
    return text_a, text_b, labels


def load_glue_from_dir(task: str, glue_dir: Path) -> dict[str, GlueSplit]:
    """``{"train": ..., "test": ...}`` of ``task`` from the TSV folder (test = the official dev set)."""
    return {split: read_glue_tsv(path, task) for split, path in glue_files(task, glue_dir).items()}


def load_glue_from_datasets(task: str) -> dict[str, GlueSplit]:
    """``{"train": ..., "test": ...}`` of ``task`` via ``datasets.load_dataset("glue", ...)`` (needs the hub)."""
    try:
        import datasets  # optional dependency (extra "glue"): only GLUE without a local folder needs it
    except ImportError:
        raise DataError(
            f"GLUE task {task!r} needs a local GLUE folder (--glue-dir or ${GLUE_DIR_ENV}) or the "
            "'datasets' package with access to the Hugging Face hub (pip install datasets)"
        ) from None
    layout = GLUE_LAYOUTS[task]
    try:
        loaded = datasets.load_dataset("glue", layout.hf_config)
    except Exception as error:  # the hub is unreachable, or the cache is incomplete
        raise DataError(
            f"datasets.load_dataset('glue', {layout.hf_config!r}) failed: {error}. Without the hub, "
            f"give a local GLUE folder (--glue-dir or ${GLUE_DIR_ENV})"
        ) from error
    splits = {}
    for split, hf_split in (("train", "train"), ("test", layout.hf_test_split)):
        part = loaded[hf_split]
        labels = [float(v) for v in part["label"]] if layout.raw_labels is None else [int(v) for v in part["label"]]
        text_b = list(part[layout.hf_text_b]) if layout.hf_text_b else None
        splits[split] = (list(part[layout.hf_text_a]), text_b, labels)
    return splits


def load_glue(task: str, glue_dir: str | os.PathLike[str] | None = None) -> dict[str, GlueSplit]:
    """GLUE ``task`` from ``glue_dir`` / ``$PYRAMID_BERT_GLUE_DIR`` when given, else through ``datasets``."""
    folder = resolve_glue_dir(glue_dir)
    if folder is not None:
        if not folder.is_dir():
            raise DataError(f"GLUE folder {folder} does not exist (parameter 'glue_dir' / ${GLUE_DIR_ENV})")
        return load_glue_from_dir(task, folder)
    return load_glue_from_datasets(task)
