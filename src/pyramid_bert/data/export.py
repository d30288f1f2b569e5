"""Write a split of a built-in task as a data file (CSV, TSV or JSONL) with label names: :func:`export_split`.

Columns: ``text`` (``text_b`` too for sentence pairs) and ``label`` (the label name; the score for regression),
the layout ``--train FILE`` reads by default. Written to a temporary file and renamed.
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from pyramid_bert.errors import ConfigError

if TYPE_CHECKING:
    from pyramid_bert.data.tasks import TaskData

EXPORT_FORMATS = (".csv", ".tsv", ".jsonl")


def export_split(task: TaskData, split: str, out: str | Path, *, rows: int | None = None, seed: int = 0) -> int:
    """Write ``task.splits[split]`` (a seeded sample of ``rows`` examples, in split order) to ``out``; returns the count."""

    path = Path(out)
    if path.suffix.lower() not in EXPORT_FORMATS:
        raise ConfigError(f"--out: {path}: unknown format {path.suffix or '(none)'!r}; valid: {', '.join(EXPORT_FORMATS)}")
    if split not in task.splits:
        raise ConfigError(f"--split: task {task.name} has no split {split!r}; valid: {', '.join(task.splits)}")
    data = task.splits[split]
    indices = np.arange(len(data))
    if rows is not None and rows < len(data):
        indices = np.sort(np.random.default_rng(seed).choice(len(data), size=rows, replace=False))
    records = []
    for i in indices.tolist():
        record = {"text": data.text_a[i]}
        if data.text_b is not None:
            record["text_b"] = data.text_b[i]
        record["label"] = data.labels[i] if task.is_regression else task.label_names[data.labels[i]]
        records.append(record)
    _write(path, records)
    return len(records)


def _write(path: Path, records: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "w", newline="", encoding="utf-8") as handle:
        if path.suffix.lower() == ".jsonl":
            handle.writelines(json.dumps(record, ensure_ascii=False) + "\n" for record in records)
        else:
            writer = csv.DictWriter(handle, fieldnames=list(records[0]), delimiter="\t" if path.suffix == ".tsv" else ",")
            writer.writeheader()
            writer.writerows(records)
    os.replace(tmp, path)
