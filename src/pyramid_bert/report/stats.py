"""Uncertainty over seeds: means with Student-t confidence intervals, and paired differences.

Every trial of a configuration is one seed; seeds are the independent replicates. A mean over n seeds
gets the interval ``mean ± t(1 - alpha/2, n - 1) * s / sqrt(n)`` (s: sample standard deviation). Two
methods compared on the same seeds (same data order, same head initialisation) give paired differences
d_i = a_i - b_i; their mean gets the same t interval and a two-sided paired t test. When every difference is the
same (no spread) the t test is undefined; the exact sign-flip (permutation) test gives p = 2 / 2^n instead (0.25
for 3 seeds: never significant), and the interval collapses to the value, which says nothing about its uncertainty.

A table that makes several comparisons corrects them with Holm's step-down method (:func:`holm`): each difference
keeps its raw interval, and is called significant when its Holm-adjusted p value is below alpha; the family size is
stated beside the table. A single comparison (family of 1) is significant when its interval excludes 0 (p < alpha).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

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
    """Mean of paired differences a - b over ``n`` common seeds, its interval and two-sided p value; with
    ``family`` > 1 also the Holm-adjusted p value of the comparison among that many (see :func:`holm`)."""

    mean: float
    low: float | None
    high: float | None
    n: int
    p_value: float | None
    confidence: float = CONFIDENCE
    #: True when every difference was the same: the interval has no width and p comes from the sign-flip test.
    no_spread: bool = False
    p_adjusted: float | None = None
    family: int = 1

    @property
    def p(self) -> float | None:
        """The p value significance is read from: Holm-adjusted within a family, raw otherwise."""
        return self.p_adjusted if self.p_adjusted is not None else self.p_value

    @property
    def significant(self) -> bool:
        """True when the (Holm-adjusted) two-sided p value is below 1 - confidence (needs n >= 2)."""
        return self.p is not None and self.p < 1 - self.confidence


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
    same (no spread) it is the exact sign-flip test's, ``2 / 2^n`` (1 for a difference of 0).
    """
    seeds = sorted(set(a) & set(b))
    if not seeds:
        return None
    differences = [float(a[seed]) - float(b[seed]) for seed in seeds]
    summary = mean_ci(differences, confidence=confidence)
    if summary.n < 2:
        return PairedDifference(summary.mean, None, None, 1, None, confidence)
    if summary.std <= 1e-12 * max(1.0, abs(summary.mean)):  # every seed the same difference (up to rounding)
        p_value = 1.0 if summary.mean == 0 else min(1.0, 2.0 / 2**summary.n)
        return PairedDifference(summary.mean, summary.low, summary.high, summary.n, p_value, confidence, True)
    p_value = float(stats.ttest_rel([a[s] for s in seeds], [b[s] for s in seeds]).pvalue)
    return PairedDifference(summary.mean, summary.low, summary.high, summary.n, p_value, confidence)


def holm(differences: Sequence[PairedDifference | None]) -> list[PairedDifference | None]:
    """``differences`` with Holm-adjusted p values over the family of those that have a p value (n >= 2).

    Holm's step-down method: with the m raw p values sorted, ``p_(i)`` becomes ``max_{j <= i} min(1, (m - j + 1)
    p_(j))``. It controls the chance of any false "significant" in the family at alpha, without assuming the
    comparisons independent. Entries without a p value (None, one seed) are returned as they are.
    """
    tested = sorted((d.p_value, index) for index, d in enumerate(differences) if d is not None and d.p_value is not None)
    family, adjusted, running = len(tested), list(differences), 0.0
    for rank, (p_value, index) in enumerate(tested):
        running = max(running, min(1.0, (family - rank) * p_value))
        adjusted[index] = replace(differences[index], p_adjusted=running, family=family)
    return adjusted


def format_difference(difference: PairedDifference | None, *, scale: float = 1.0, missing: str = "") -> str:
    """``+1.2 [+0.3, +2.1] *`` (``*``: significant, Holm-adjusted within a family), ``+1.2 (1 seed)``,
    ``+1.2 (same on all 3 seeds)``, or ``missing`` for None; values multiplied by ``scale`` (100 for fractions)."""
    if difference is None:
        return missing
    mean, mark = _signed(scale * difference.mean), " *" if difference.significant else ""
    if difference.low is None or difference.high is None:
        return f"{mean} (1 seed)"
    if difference.no_spread:
        return f"{mean} (same on all {difference.n} seeds){mark}"
    return f"{mean} [{scale * difference.low:+.1f}, {scale * difference.high:+.1f}]{mark}"


def _signed(value: float) -> str:
    """A mean to one decimal with its sign; one that rounds to zero is ``+0.0``, not ``-0.0`` (an interval's end keeps
    its ``-0.0``: it says the end lies just below zero)."""
    text = f"{value:+.1f}"
    return "+0.0" if text == "-0.0" else text


def verdict(difference: PairedDifference | None, *, other: str, scale: float = 100.0) -> str:
    """The comparison in words, e.g. "worse than dense by 1.2 (p = 0.01)" or "not significant (p = 0.40)"."""
    if difference is None:
        return f"no common seeds with {other}"
    if difference.n < 2:
        return f"one seed: no test against {other}"
    p_text = _p_text(difference)
    if not difference.significant:
        return f"no significant difference to {other} ({p_text})"
    direction = "better" if difference.mean > 0 else "worse"
    return f"significantly {direction} than {other} by {abs(difference.mean) * scale:.1f} ({p_text})"


def _p_text(difference: PairedDifference) -> str:
    """``p = 0.012`` (the test named when it is the sign-flip one), with the Holm-adjusted value in a family."""
    raw = "p < 0.001" if difference.p_value < 0.001 else f"p = {difference.p_value:.3f}"
    if difference.no_spread:
        raw += ", exact sign-flip test: every seed gave the same difference"
    if difference.p_adjusted is None or difference.family < 2:
        return raw
    return f"{raw}; Holm-adjusted over {difference.family}: {difference.p_adjusted:.3f}"
