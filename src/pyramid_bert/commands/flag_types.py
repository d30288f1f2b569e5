"""Validated numeric flag types: every number a command takes is declared with one of these as its ``type=``.

Each kind of number is declared once here. argparse calls the type on the flag's text while parsing, before any
data is read or any model loaded; an :class:`argparse.ArgumentTypeError` becomes one line such as
``pyramid-bert finetune: error: argument --epochs: must be a finite number > 0, got 'inf'`` and exit code 2.
Library functions keep their own checks (they are called directly too); these only make the CLI fail early.

Caps against typos (a flag's help names its cap): :data:`MAX_SEQUENCE_LENGTH` for input lengths N,
:data:`MAX_BATCH_SIZE` for batch sizes, :data:`MAX_SEED` for seeds (numpy's seeds are 32-bit).
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass

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
