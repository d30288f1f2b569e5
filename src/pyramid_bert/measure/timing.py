"""Honest wall-clock timing: warm-up first, then round-robin interleaved repeats, in one process.

Speedup as the paper defines it (Appendix C) is ``T(dense) / T(pyramid)``. To compare two callables fairly
they run in the same process, on the same inputs and thread count, and their repeats are interleaved
(``a b a b ...`` rather than ``a a a b b b``) so that a slow phase of the machine (another job, thermal
throttling) hits both alike. Speedup statistics are computed from *paired* samples: the ratio of the i-th
repeat of the base to the i-th repeat of the other.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from pyramid_bert.errors import ConfigError


def _quantile(samples: list[float], q: float) -> float:
    return float(np.quantile(np.asarray(samples, dtype=float), q))


@dataclass
class TimingStats:
    """Wall-clock seconds of repeated calls of one callable; ``samples`` in call order."""

    samples: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return float(statistics.median(self.samples))

    @property
    def q25(self) -> float:
        return _quantile(self.samples, 0.25)

    @property
    def q75(self) -> float:
        return _quantile(self.samples, 0.75)

    def to_dict(self) -> dict[str, float | list[float]]:
        return {"median": self.median, "q25": self.q25, "q75": self.q75, "samples": list(self.samples)}


@dataclass(frozen=True)
class SpeedupStats:
    """Median and inter-quartile range of the paired ratios ``T(base) / T(other)`` (> 1: other is faster)."""

    median: float
    q25: float
    q75: float

    def to_dict(self) -> dict[str, float]:
        return {"median": self.median, "q25": self.q25, "q75": self.q75}

    @classmethod
    def of(cls, ratios: Sequence[float]) -> SpeedupStats:
        """The median and quartiles of paired ratios ``T(base) / T(other)`` (at least one)."""
        ratios = [float(ratio) for ratio in ratios]
        return cls(median=float(statistics.median(ratios)), q25=_quantile(ratios, 0.25), q75=_quantile(ratios, 0.75))


def time_interleaved(
    fns: dict[str, Callable[[], object]], *, warmup: int = 2, repeats: int = 7
) -> dict[str, TimingStats]:
    """Time each callable ``repeats`` times, round-robin, after ``warmup`` untimed round-robin calls.

    Args:
        fns: name -> zero-argument callable (its return value is ignored).
        warmup: untimed rounds first (lazy init, allocator and cache warm-up).
        repeats: timed rounds; in each round every callable runs once, in the order of ``fns``
            rotated by the round number so no callable always runs first.

    Returns:
        name -> :class:`TimingStats` with ``repeats`` samples, sample ``i`` from round ``i``.
    """
    if not fns:
        raise ConfigError("fns: give at least one callable to time")
    if warmup < 0:
        raise ConfigError(f"warmup: must be >= 0, got {warmup}")
    if repeats < 1:
        raise ConfigError(f"repeats: must be >= 1, got {repeats}")
    names = list(fns)
    for _ in range(warmup):
        for name in names:
            fns[name]()
    samples: dict[str, list[float]] = {name: [] for name in names}
    for round_index in range(repeats):
        shift = round_index % len(names)
        for name in names[shift:] + names[:shift]:
            start = time.perf_counter()
            fns[name]()
            samples[name].append(time.perf_counter() - start)
    return {name: TimingStats(samples[name]) for name in names}


def speedup_stats(base: TimingStats, other: TimingStats) -> SpeedupStats:
    """Speedup of ``other`` over ``base`` from paired samples: ratios ``base[i] / other[i]``.

    Both must come from the same :func:`time_interleaved` call (equal sample counts, paired by round).
    """
    if len(base.samples) != len(other.samples) or not base.samples:
        raise ConfigError(
            f"speedup_stats: base and other need the same, non-zero number of paired samples "
            f"(got {len(base.samples)} and {len(other.samples)})"
        )
    return SpeedupStats.of([b / o for b, o in zip(base.samples, other.samples, strict=True)])


@dataclass(frozen=True)
class RatioRange:
    """The paired ratios ``T(base) / T(other)`` of one interleaved timing, their median, and their range as an
    interval: the lowest and the highest of n independent ratios cover the median of the ratios' distribution
    with probability ``1 - 2^(1 - n)`` (a distribution-free interval: 93.8% for n = 5, 96.9% for n = 6)."""

    ratios: tuple[float, ...]

    @property
    def median(self) -> float:
        return float(statistics.median(self.ratios))

    @property
    def low(self) -> float:
        return min(self.ratios)

    @property
    def high(self) -> float:
        return max(self.ratios)

    @property
    def coverage(self) -> float:
        """The confidence of ``[low, high]`` as an interval for the median ratio."""
        return 1.0 - 2.0 ** (1 - len(self.ratios))

    def to_dict(self) -> dict[str, float | int | list[float]]:
        return {"median": self.median, "low": self.low, "high": self.high, "coverage": self.coverage,
                "n": len(self.ratios), "ratios": list(self.ratios)}  # fmt: skip


def ratio_range(base: TimingStats, other: TimingStats) -> RatioRange:
    """The paired ratios ``base[i] / other[i]`` of one :func:`time_interleaved` call, as a :class:`RatioRange`."""
    speedup_stats(base, other)  # the same checks: equal, non-zero sample counts
    return RatioRange(tuple(b / o for b, o in zip(base.samples, other.samples, strict=True)))
