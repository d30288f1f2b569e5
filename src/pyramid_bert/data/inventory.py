"""What ``pyramid-bert data`` does, as text: the list of every model, corpus, GLUE and LRA task
(:func:`list_data`), fetching by name or group (:func:`fetch_data`), a look at one of them (:func:`show_data`) and
a split of a text task written as a file (:func:`export_data`). Each returns what the command prints.
"""

from __future__ import annotations

import importlib.util
import json
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from pyramid_bert import data  # data.load_task, looked up at call time (tests replace it)
from pyramid_bert.data import fetch  # fetch.fetch_source, likewise
from pyramid_bert.data.catalog import (
    GLUE_OFFICIAL_SIZES,
    GLUE_TASKS,
    MODEL_NAMES,
    SOURCES,
    TASK_NAMES,
    TEXT_SPLIT_SIZES,
    TEXT_TASKS,
)
from pyramid_bert.data.export import export_split
from pyramid_bert.data.glue import glue_files, resolve_glue_dir
from pyramid_bert.data.lra import LraSource, fetch_lra_source, load_lra_task, lra_sources
from pyramid_bert.errors import ConfigError, DataError
from pyramid_bert.io import check_output_file

#: Names that fetch several items at once.
GROUPS = ("all", "models", "text", "glue", "lra")
LIST_HEADER = ["NAME", "KIND", "SIZE", "SPLITS (train/dev/test)", "METRIC", "N", "CACHED"]
LIST_NOTES = (
    "GLUE: test = the official dev set; dev* = a seeded hold-out from train (10%, at most 5000).\n"
    "Text corpora: de-duplicated; test = fixed 10%, dev = seeded 10%, stratified by label."
)
#: The model config keys ``show`` prints.
MODEL_KEYS = ("model_type", "num_hidden_layers", "hidden_size", "num_attention_heads", "intermediate_size",
              "vocab_size", "max_position_embeddings")  # fmt: skip


# ------------------------------------------------------------------------------------------------ names
def all_names() -> list[str]:
    """Every name ``fetch`` and ``show`` take: models, text and GLUE tasks, LRA tasks."""
    return [*MODEL_NAMES, *TASK_NAMES, *(entry.name for entry in lra_sources())]


def group_members(group: str) -> list[str]:
    """The names of a group of :data:`GROUPS` (``all``: models, text tasks and LRA; GLUE only on request)."""
    lra = [entry.name for entry in lra_sources()]
    return {
        "models": list(MODEL_NAMES),
        "text": list(TEXT_TASKS),
        "glue": list(GLUE_TASKS),
        "lra": lra,
        "all": [*MODEL_NAMES, *TEXT_TASKS, *lra],
    }[group]


def check_name(name: str) -> None:
    """DataError listing the valid names unless ``name`` is one of :func:`all_names`."""
    valid = all_names()
    if name not in valid:
        raise DataError(f"unknown data set {name!r} (parameter 'name'); valid names: {', '.join(valid)}")


# ------------------------------------------------------------------------------------------------- list
def glue_status(task: str, glue_dir: str | None) -> str:
    """Where GLUE ``task`` would be read from: "glue-dir", "datasets" or "no"."""
    folder = resolve_glue_dir(glue_dir)
    if folder is not None:
        return "glue-dir" if all(p.is_file() for p in glue_files(task, folder).values()) else "no (missing files)"
    return "datasets" if importlib.util.find_spec("datasets") is not None else "no"


def list_rows(glue_dir: str | None) -> list[list[str]]:
    """Rows of ``data list`` (columns :data:`LIST_HEADER`): name, kind, size, splits, metric, N, cached."""
    rows = []
    for name in MODEL_NAMES:
        source = SOURCES[name]
        rows.append([name, "model", f"BERT 6x384 ({source.requirement})", "-", "-", "512", yes_no(fetch.is_cached(source))])
    for name, spec in TEXT_TASKS.items():
        train, dev, test = TEXT_SPLIT_SIZES[name]
        kind = "text" + (" regression" if spec.is_regression else f" {spec.num_labels}-class")
        rows.append([name, kind, str(train + dev + test), f"{train}/{dev}/{test}", spec.metric, str(spec.max_length),
                     yes_no(fetch.is_cached(SOURCES[name]))])  # fmt: skip
    for name, spec in GLUE_TASKS.items():
        train, official_dev = GLUE_OFFICIAL_SIZES[name]
        rows.append([name, "glue pair" if spec.is_pair else "glue", str(train + official_dev),
                     f"{train}-dev/dev*/{official_dev}", spec.metric, str(spec.max_length), glue_status(name, glue_dir)])  # fmt: skip
    rows.extend(_lra_row(entry) for entry in lra_sources())
    return rows


def _lra_row(entry: LraSource) -> list[str]:
    splits = "/".join("?" if n is None else str(n) for n in entry.splits.values())
    return [entry.name, f"lra {entry.kind}", str(entry.size), splits, entry.metric, str(entry.seq_len), yes_no(entry.cached)]


def yes_no(flag: bool) -> str:
    return "yes" if flag else "no"


def format_table(header: list[str], rows: list[list[str]]) -> str:
    """Left-aligned columns two spaces apart, no trailing spaces."""
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    lines = [
        "  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in [header, *rows]
    ]
    return "\n".join(lines)


def list_data(glue_dir: str | None = None) -> str:
    """The table of ``data list`` and the notes on how splits are made."""
    return f"{format_table(LIST_HEADER, list_rows(glue_dir))}\n\n{LIST_NOTES}"


# ------------------------------------------------------------------------------------------------ fetch
def fetch_one(name: str, *, force: bool = False, glue_dir: str | None = None, seed: int = 0) -> str:
    """Fetch (or, for GLUE, read and check) one named item; returns a one-line summary."""
    if name in SOURCES:
        return f"{name}: {fetch.fetch_source(SOURCES[name], force=force)}"
    if name in GLUE_TASKS:
        task = data.load_task(name, glue_dir=glue_dir, seed=seed)
        return f"{name}: " + ", ".join(f"{split} {len(rows)}" for split, rows in task.splits.items())
    fetch_lra_source(name, progress=True)
    return f"{name}: cached"


def fetch_data(
    name: str, *, force: bool = False, glue_dir: str | None = None, seed: int = 0, progress: bool = True
) -> str:
    """Fetch ``name`` or every member of the group ``name`` (:data:`GROUPS`), checking every name first; a progress
    bar on stderr; returns one summary line per item."""
    names = group_members(name) if name in GROUPS else [name]
    for each in names:
        check_name(each)
    summaries = []
    with tqdm(names, desc="fetch", unit="source", disable=not progress) as bar:
        for each in bar:
            bar.set_postfix_str(each)
            summaries.append(fetch_one(each, force=force, glue_dir=glue_dir, seed=seed))
    return "\n".join(summaries)


# ------------------------------------------------------------------------------------------------- show
def show_data(name: str, *, examples: int = 3, glue_dir: str | None = None, seed: int = 0) -> str:
    """A model's config and checksums, or a task's counts per split and label with ``examples`` examples each."""
    check_name(name)
    if name in MODEL_NAMES:
        return show_model(name)
    if name in TASK_NAMES:
        return show_text_task(name, examples=examples, glue_dir=glue_dir, seed=seed)
    return show_lra_task(name, examples=examples, seed=seed)


def show_model(name: str) -> str:
    """Where the model is cached, its shape and whether its files match their checksums (fetched if needed)."""
    folder = Path(fetch.fetch_source(SOURCES[name]))
    config = json.loads((folder / "config.json").read_text())
    lines = [f"{name}: {SOURCES[name].requirement} -> {folder}", *(f"  {key}: {config.get(key)}" for key in MODEL_KEYS)]
    problems = fetch.checksum_problems(folder, SOURCES[name])
    lines.append("  checksums: " + ("ok" if not problems else "; ".join(problems)))
    return "\n".join(lines)


def show_text_task(name: str, *, examples: int, glue_dir: str | None, seed: int) -> str:
    """Metric, N, labels, de-duplication, and per split its size, label counts and ``examples`` examples."""
    task = data.load_task(name, glue_dir=glue_dir, seed=seed)
    labels = "regression" if task.is_regression else f"{task.num_labels} labels {task.label_names}"
    lines = [f"{name}: metric {task.metric}, N = {task.max_length}, {labels}"]
    if "deduplication" in task.notes:
        lines.append(f"  de-duplication: {task.notes['deduplication']}")
    for split, rows in task.splits.items():
        lines.append(f"  {split}: {len(rows)} examples; " + describe_labels(task, rows.labels))
        for i in range(min(examples, len(rows))):
            pair = "" if rows.text_b is None else f" || {clip(rows.text_b[i])}"
            label = rows.labels[i] if task.is_regression else task.label_names[int(rows.labels[i])]
            lines.append(f"    [{label}] {clip(rows.text_a[i])}{pair}")
    return "\n".join(lines)


def describe_labels(task: Any, labels: list) -> str:
    """Score statistics (regression), or the count of each label name."""
    if task.is_regression:
        values = np.asarray(labels, dtype=float)
        return f"score mean {values.mean():.3f}, std {values.std():.3f}, min {values.min():.3f}, max {values.max():.3f}"
    counts = Counter(int(v) for v in labels)
    return ", ".join(f"{label} {counts.get(i, 0)}" for i, label in enumerate(task.label_names))


def show_lra_task(name: str, *, examples: int, seed: int) -> str:
    """Metric, N, vocabulary, and per split its label counts and the first tokens of ``examples`` sequences."""
    task = load_lra_task(name, seed=seed)
    lines = [f"{name}: metric {task.metric}, N = {task.seq_len}, vocab {task.vocab_size}, {task.num_labels} labels"]
    for split, counts in task.label_counts().items():
        tokens = task.tokens(split)
        lines.append(f"  {split}: {len(tokens)} examples; " + ", ".join(f"{k} {v}" for k, v in counts.items()))
        lines.extend(f"    {' '.join(map(str, row[:24].tolist()))} ..." for row in tokens[: max(examples, 0)])
    return "\n".join(lines)


def clip(text: str, width: int = 100) -> str:
    """``text`` on one line, cut to ``width`` characters with "..."."""
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 3] + "..."


# ----------------------------------------------------------------------------------------------- export
def export_data(
    name: str, *, out: str | Path, split: str = "train", rows: int | None = None, seed: int = 0,
    glue_dir: str | None = None, force: bool = False,
) -> str:  # fmt: skip
    """Write ``split`` of text task ``name`` (a seeded sample of ``rows``) to ``out`` (.csv, .tsv or .jsonl; an
    existing file only with ``force``); returns the line saying what was written."""
    if name not in TASK_NAMES:
        raise ConfigError(f"data export: unknown task {name!r}; valid tasks: {', '.join(TASK_NAMES)}")
    check_output_file(out, "--out", force=force)
    task = data.load_task(name, glue_dir=glue_dir, seed=seed)
    count = export_split(task, split, out, rows=rows, seed=seed)
    return f"{out}: {count} examples of {name} {split} (columns text, label)"
