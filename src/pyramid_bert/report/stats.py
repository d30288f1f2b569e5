"""Uncertainty over seeds: means with Student-t confidence intervals, and paired differences.

Every trial of a configuration is one seed; seeds are the independent replicates. A mean over n seeds
gets the interval ``mean ± t(1 - alpha/2, n - 1) * s / sqrt(n)`` (s: sample standard deviation). Two
methods compared on the same seeds (same data order, same head initialisation) give paired differences
d_i = a_i - b_i; their mean gets the same t interval, and the difference is called significant when the
interval excludes 0 (equivalently, a two-sided paired t test with p < alpha). No correction for multiple
comparisons is applied: each comparison is read on its own.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

from pyramid_bert.errors import ConfigError

CONFIDENCE = 0.95


@dataclass(frozen=True)
class MeanCI:
    """A mean over ``n`` values and its confidence interval (``low``/``high`` None when n < 2)."""

    mean: float
    low: float | None
    high: float | None
    n: int
    std: float | None
    confidence: float = CONFIDENCE

    @property
    def half_width(self) -> float | None:
        return None if self.high is None else self.high - self.mean


@dataclass(frozen=True)
class PairedDifference:
    """Mean of paired differences a - b over ``n`` common seeds, its interval and two-sided p value."""

    mean: float
    low: float | None
    high: float | None
    n: int
    p_value: float | None
    confidence: float = CONFIDENCE

    @property
    def significant(self) -> bool:
        """True when the interval excludes 0 (needs n >= 2)."""
        return self.low is not None and self.high is not None and (self.low > 0 or self.high < 0)


def mean_ci(values: Sequence[float], *, confidence: float = CONFIDENCE) -> MeanCI:
    """Mean of ``values`` and its Student-t confidence interval (no interval for a single value)."""
    data = np.asarray(list(values), dtype=float)
    if data.size == 0:
        raise ConfigError("mean_ci: needs at least one value")
    if not 0 < confidence < 1:
        raise ConfigError(f"confidence: must be in (0, 1), got {confidence}")
    mean = float(data.mean())
    if data.size < 2:
        return MeanCI(mean, None, None, 1, None, confidence)
    std = float(data.std(ddof=1))
    half = float(stats.t.ppf(0.5 + confidence / 2, data.size - 1)) * std / math.sqrt(data.size)
    return MeanCI(mean, mean - half, mean + half, int(data.size), std, confidence)


def paired_difference(
    a: Mapping[int, float], b: Mapping[int, float], *, confidence: float = CONFIDENCE
) -> PairedDifference | None:
    """``a - b`` paired on the seeds both have; None when they share no seed.

    The p value is the two-sided paired t test (``scipy.stats.ttest_rel``); when every difference is the
    same (zero spread) the interval collapses to that value and p is 0 (or 1 for a difference of 0).
    """
    seeds = sorted(set(a) & set(b))
    if not seeds:
        return None
    differences = [float(a[seed]) - float(b[seed]) for seed in seeds]
    summary = mean_ci(differences, confidence=confidence)
    if summary.n < 2:
        return PairedDifference(summary.mean, None, None, 1, None, confidence)
    if summary.std == 0:
        p_value = 1.0 if summary.mean == 0 else 0.0
    else:
        p_value = float(stats.ttest_rel([a[s] for s in seeds], [b[s] for s in seeds]).pvalue)
    return PairedDifference(summary.mean, summary.low, summary.high, summary.n, p_value, confidence)


def format_difference(difference: PairedDifference | None, *, scale: float = 1.0, missing: str = "") -> str:
    """``+1.2 [+0.3, +2.1] *`` (``*``: the interval excludes 0), ``+1.2 (1 seed)``, or ``missing`` for None;
    values multiplied by ``scale`` (100 for metrics stored as fractions)."""
    if difference is None:
        return missing
    if difference.low is None or difference.high is None:
        return f"{scale * difference.mean:+.1f} (1 seed)"
    mark = " *" if difference.significant else ""
    return f"{scale * difference.mean:+.1f} [{scale * difference.low:+.1f}, {scale * difference.high:+.1f}]{mark}"


def verdict(difference: PairedDifference | None, *, other: str, scale: float = 100.0) -> str:
    """The comparison in words, e.g. "worse than dense by 1.2 (p = 0.01)" or "not significant (p = 0.40)"."""
    if difference is None:
        return f"no common seeds with {other}"
    if difference.n < 2:
        return f"one seed: no test against {other}"
    p_text = "p < 0.001" if difference.p_value < 0.001 else f"p = {difference.p_value:.3f}"
    if not difference.significant:
        return f"no significant difference to {other} ({p_text})"
    direction = "better" if difference.mean > 0 else "worse"
    return f"significantly {direction} than {other} by {abs(difference.mean) * scale:.1f} ({p_text})"
