"""The data flags every task-taking command shares: ``--task NAME`` or ``--train FILE [--dev FILE] [--test FILE]``
with ``--text-column`` / ``--label-column`` / ``--max-length`` (see :mod:`pyramid_bert.data.user_task`)."""

from __future__ import annotations

import argparse
from typing import Any

from pyramid_bert.commands.flag_types import MAX_SEQUENCE_LENGTH, sequence_length_int
from pyramid_bert.errors import ConfigError

DATA_FLAGS_HELP = "CSV, TSV, JSONL or a datasets save_to_disk folder"


def text_columns(text: str) -> list[str]:
    """``--text-column``: a column name, or two comma-separated ones for sentence pairs."""
    names = [part.strip() for part in text.split(",") if part.strip()]
    if not names:
        raise argparse.ArgumentTypeError("expected a column name, or two comma-separated ones for sentence pairs")
    return names


def add_data_arguments(parser: argparse.ArgumentParser, *, with_labels: bool = True) -> None:
    """--train/--dev/--test (``with_labels``), --text-column, --label-column, --max-length."""
    group = parser.add_argument_group("your own data (instead of --task)")
    if with_labels:
        group.add_argument("--train", metavar="FILE", help=f"labelled training texts: {DATA_FLAGS_HELP}")
        group.add_argument("--dev", metavar="FILE", help="dev file (default: a seeded, stratified 10%% of --train)")
        group.add_argument("--test", metavar="FILE", help="test file (default: another 10%% of --train)")
    group.add_argument(
        "--text-column", type=text_columns, action="extend", metavar="NAME",
        help="text column (default text); give two (a,b or the flag twice) for sentence pairs",
    )  # fmt: skip
    if with_labels:
        group.add_argument(
            "--label-column", default="label",
            help="label column (default label): strings or ints are classes, floats mean regression (Spearman)",
        )  # fmt: skip
    default = ("the 95th percentile of the tokenized train lengths, capped at the model's limit" if with_labels
               else "the model's: its tokenizer's model_max_length, which compress sets to the N it chose")  # fmt: skip
    group.add_argument(
        "--max-length", type=sequence_length_int, metavar="N",
        help=f"input length N, 2..{MAX_SEQUENCE_LENGTH} and at most the model's limit (default: {default})",
    )  # fmt: skip


def data_files(args: argparse.Namespace, *, required: bool = True) -> Any:
    """The :class:`~pyramid_bert.data.user_task.DataFiles` of the flags, or None when ``--task`` is used.

    Exactly one of ``--task`` and ``--train`` when ``required``; ``--dev``/``--test`` need ``--train``.
    """
    from pyramid_bert.data.user_task import DataFiles

    task, train = getattr(args, "task", None), getattr(args, "train", None)
    if task and train:
        raise ConfigError("--task / --train: give a task name or your own data files, not both")
    if train is None:
        for name in ("dev", "test"):
            if getattr(args, name, None):
                raise ConfigError(f"--{name}: needs --train (the file that sets the labels)")
        if required and not task:
            raise ConfigError("--task / --train: give a task name (see `pyramid-bert data list`) or --train FILE")
        if task and getattr(args, "max_length", None) is not None:
            raise ConfigError("--max-length: only with data files; a named task has its own N")
        return None
    columns = tuple(args.text_column or ["text"])
    if len(columns) > 2:
        raise ConfigError(f"--text-column: one column, or two for sentence pairs; got {', '.join(columns)}")
    return DataFiles(train, args.dev, args.test, columns, args.label_column)


def load_files_task(files: Any, model_source: str, *, max_length: int | None, seed: int) -> Any:
    """Read ``files`` into a TaskData, N measured with the tokenizer of ``model_source`` (a folder or name)."""
    from pyramid_bert.data.user_task import load_for_model

    return load_for_model(files, model_source, max_length=max_length, seed=seed)


def describe_task(task: Any) -> list[tuple[str, str]]:
    """Table rows saying what was read: sizes, labels, N and how the splits were made."""
    sizes = ", ".join(f"{name} {len(split)}" for name, split in task.splits.items())
    labels = "regression (scores)" if task.is_regression else ", ".join(task.label_names)
    rows = [("data", f"{task.name}: {sizes}"), ("labels", f"{labels}  (metric {task.metric})")]
    notes = task.notes or {}
    rows.append(("max length N", f"{task.max_length}" + (f"  ({notes['max_length_rule']})" if "max_length_rule" in notes else "")))
    if notes.get("held_out"):
        rows.append(("held out", str(notes["held_out"])))
    return rows
