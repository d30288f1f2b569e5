"""The flags commands share, declared once: validated number types, the data flags, ``--force``, the re-run line.

Numbers: every number a command takes is declared with one of the types here as its ``type=``; argparse calls it on
the flag's text while parsing, before any data is read or any model loaded, and an
:class:`argparse.ArgumentTypeError` becomes one line such as ``pyramid-bert finetune: error: argument --epochs: must
be a finite number > 0, got 'inf'`` and exit code 2. Library functions keep their own checks (they are called
directly too); these only make the command line fail early. Caps against typos (a flag's help names its cap):
:data:`MAX_SEQUENCE_LENGTH` for input lengths N, :data:`MAX_BATCH_SIZE` for batch sizes, :data:`MAX_SEED` for seeds.

Compile: ``--compile`` (:func:`add_compile_argument`) on ``bench``, ``evaluate`` and ``predict``.

Data: ``--task NAME`` or ``--train FILE [--dev FILE] [--test FILE]`` with ``--text-column`` / ``--label-column`` /
``--max-length`` (see :mod:`pyramid_bert.data.user_task`). Outputs: ``--force`` lifts the rule of
:func:`pyramid_bert.io.check_output_file` / :func:`pyramid_bert.io.check_output_dir`.
"""

from __future__ import annotations

import argparse
import math
import shlex
from dataclasses import dataclass
from typing import Any

from pyramid_bert.errors import ConfigError

# ------------------------------------------------------------------------------------------- numbers
#: The longest input length N any flag takes (BERT-family models take 512; long-context ones up to 8192).
MAX_SEQUENCE_LENGTH = 8192
#: The largest batch size any flag takes.
MAX_BATCH_SIZE = 65536
#: The largest seed (numpy's random generators take 32-bit seeds).
MAX_SEED = 2**32 - 1


@dataclass(frozen=True)
class Bounds:
    """A range of numbers: ``low``/``high`` (None: unbounded), each end inclusive or not."""

    low: float | None = None
    high: float | None = None
    low_inclusive: bool = True
    high_inclusive: bool = True

    def __contains__(self, value: float) -> bool:
        if self.low is not None and (value < self.low or (value == self.low and not self.low_inclusive)):
            return False
        return self.high is None or not (value > self.high or (value == self.high and not self.high_inclusive))

    def describe(self, integer: bool) -> str:
        """``>= 1``, ``> 0``, ``<= 1``, ``in 1..8192`` (ints) or ``in [0, 1)`` (floats)."""
        if self.low is not None and self.high is not None:
            if integer:
                return f"in {self.low}..{self.high}"
            return f"in {'[' if self.low_inclusive else '('}{self.low:g}, {self.high:g}{']' if self.high_inclusive else ')'}"
        if self.low is not None:
            return f"{'>=' if self.low_inclusive else '>'} {self.low:g}"
        if self.high is not None:
            return f"{'<=' if self.high_inclusive else '<'} {self.high:g}"
        return ""


@dataclass(frozen=True)
class NumberType:
    """An argparse ``type=``: the flag's text as an int or a finite float within ``bounds``."""

    integer: bool
    bounds: Bounds

    @property
    def expected(self) -> str:
        """What the flag takes, in words: ``an int >= 1``, ``a finite number in (0, 1]``."""
        noun = "an int" if self.integer else "a finite number"
        rule = self.bounds.describe(self.integer)
        return f"{noun} {rule}" if rule else noun

    def __call__(self, text: str) -> int | float:
        try:
            value = int(text) if self.integer else float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {self.expected}, got {text!r}") from None
        if not math.isfinite(value) or value not in self.bounds:
            raise argparse.ArgumentTypeError(f"must be {self.expected}, got {text!r}")
        return value


@dataclass(frozen=True)
class NumberListType:
    """An argparse ``type=``: comma-separated numbers (at least one), each checked by ``item``."""

    item: NumberType

    def __call__(self, text: str) -> list[int | float]:
        parts = [part.strip() for part in text.split(",") if part.strip()]
        if not parts:
            raise argparse.ArgumentTypeError(
                f"expected comma-separated numbers, each {self.item.expected}; got {text!r}"
            )
        values = []
        for part in parts:
            try:
                values.append(self.item(part))
            except argparse.ArgumentTypeError:
                message = f"{part!r} in {text!r}: each value must be {self.item.expected} (comma-separated)"
                raise argparse.ArgumentTypeError(message) from None
        return values


def int_range(low: int, high: int | None = None) -> NumberType:
    """Ints in ``low..high`` (``high`` None: no upper bound)."""
    return NumberType(integer=True, bounds=Bounds(low, high))


def finite_float(
    low: float | None = None,
    high: float | None = None,
    *,
    low_inclusive: bool = True,
    high_inclusive: bool = True,
) -> NumberType:
    """Finite floats (never nan or inf) between ``low`` and ``high``, each end inclusive unless told otherwise."""
    return NumberType(integer=False, bounds=Bounds(low, high, low_inclusive, high_inclusive))


def number_list(item: NumberType) -> NumberListType:
    """Comma-separated numbers, e.g. ``32,1``, each one an ``item``."""
    return NumberListType(item)


#: Counts of things (epochs excepted): repeats, examples, layers, workers, threads, ...
positive_int = int_range(1)
#: Counts that may be zero: warm-up rounds, examples to print.
nonneg_int = int_range(0)
#: Seeds of random generators.
seed_int = int_range(0, MAX_SEED)
#: Batch sizes.
batch_size_int = int_range(1, MAX_BATCH_SIZE)
#: Input lengths N (a CLS and at least one more token).
sequence_length_int = int_range(2, MAX_SEQUENCE_LENGTH)
#: Epochs, learning rates, temperatures, speedups, resources per trial: finite and > 0.
positive_float = finite_float(0.0, low_inclusive=False)
#: Finite and >= 0 (GPUs per trial, accepted metric drops).
nonneg_float = finite_float(0.0)
#: Probabilities and shares in [0, 1) (dropout, attention-space reduction).
unit_interval_open_float = finite_float(0.0, 1.0, high_inclusive=False)
#: Ratios in (0, 1] (pruning ratios, keep ratios).
ratio_float = finite_float(0.0, 1.0, low_inclusive=False)
#: Weights in [0, 1].
weight_float = finite_float(0.0, 1.0)
#: Cosine dissimilarities (1 - cosine similarity) in (0, 2].
cosine_distance_float = finite_float(0.0, 2.0, low_inclusive=False)
#: Quantiles strictly inside (0, 1).
quantile_float = finite_float(0.0, 1.0, low_inclusive=False, high_inclusive=False)
#: Comma-separated batch sizes, e.g. ``32,1``.
batch_size_list = number_list(batch_size_int)
#: Comma-separated counts, e.g. kept lengths per layer ``80,50,32``.
positive_int_list = number_list(positive_int)
#: Comma-separated ratios in (0, 1], e.g. keep ratios per layer.
ratio_list = number_list(ratio_float)
#: Comma-separated finite numbers >= 0, e.g. keep thresholds per layer.
nonneg_float_list = number_list(nonneg_float)


# ---------------------------------------------------------------------------------------------- data
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


# ----------------------------------------------------------------------------------------- precision
def add_precision_argument(parser: argparse.ArgumentParser | argparse._ArgumentGroup, help_extra: str = "") -> None:
    """``--precision fp32|int8``: the precision the model runs at (:mod:`pyramid_bert.precision`; int8: CPU only)."""
    from pyramid_bert.precision import PRECISIONS

    parser.add_argument(
        "--precision", choices=PRECISIONS, default=None,
        help="fp32 or int8 (dynamic int8 quantization of every Linear layer, CPU only; default: the precision the "
        "model folder's config names, else fp32)" + help_extra,
    )  # fmt: skip


# ------------------------------------------------------------------------------------------- compile
def add_compile_argument(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """``--compile``: run the model(s) under ``torch.compile`` (:func:`pyramid_bert.compiling.compile_model`)."""
    parser.add_argument(
        "--compile", action="store_true",
        help="run the models under torch.compile (dynamic shapes, no graph break in the pyramid forward); bench "
        "times them compiled beside eager. The first batches compile: a minute or more on a small CPU",
    )  # fmt: skip


# ------------------------------------------------------------------------------------- outputs, re-runs
def add_force_argument(parser: argparse.ArgumentParser | argparse._ArgumentGroup, what: str) -> None:
    """``--force``: replace ``what`` (e.g. "--json-out") even when it exists, or, for a folder, write into one that
    this command did not make; without it such an output is refused before any work."""
    parser.add_argument(
        "--force", action="store_true",
        help=f"replace {what} when it exists (a folder: even when this command did not make it); default: refuse",
    )  # fmt: skip


def rerun_line(args: argparse.Namespace) -> str:
    """The command that made this run, as a user would type it again (``pyramid-bert`` and the parsed words, kept
    by :func:`pyramid_bert.cli.main`; the sub-command alone when a command was called without it)."""
    words = getattr(args, "argv", None) or [getattr(args, "command", None) or ""]
    return shlex.join(["pyramid-bert", *words])
