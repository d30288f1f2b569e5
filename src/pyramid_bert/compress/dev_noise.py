"""How sure a small dev split can be: paired bootstrap intervals of one model's dev metric minus another's.

Both models predict the same dev examples, so resampling the examples (with replacement) and recomputing both
metrics on each resample gives the distribution of the *difference* with the examples' shared difficulty
cancelled (``scipy.stats.bootstrap`` with ``paired=True``, percentile interval). With 120 dev examples one example
is 0.8 points of accuracy and a 95% interval is several points wide: :func:`resolution` says how wide, so that
``compress`` can say when dev cannot resolve the drop a user asks for.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

from pyramid_bert.training.metrics import compute_metric

POINTS = 100.0
RESAMPLES = 2000
CONFIDENCE = 0.95


@dataclass(frozen=True)
class DevDifference:
    """``a - b`` of the dev metric in points (x100): the observed difference and its paired bootstrap interval."""

    mean: float
    low: float
    high: float
    examples: int

    @property
    def significant(self) -> bool:
        """True when the interval excludes 0."""
        return self.low > 0 or self.high < 0

    def to_dict(self) -> dict[str, float]:
        return {"mean": self.mean, "low": self.low, "high": self.high, "examples": self.examples}


def dev_difference(
    a: Sequence[float], b: Sequence[float], labels: Sequence[float], metric: str, *, seed: int = 0
) -> DevDifference:
    """The dev ``metric`` of predictions ``a`` minus that of ``b`` (same examples, same order), in points, with its
    95% paired bootstrap interval (``RESAMPLES`` resamples of the examples, seeded)."""
    a, b, y = np.asarray(a), np.asarray(b), np.asarray(labels)
    if not len(a) == len(b) == len(y) or len(y) < 2:
        raise ValueError(f"dev_difference: needs two prediction lists and labels of one length >= 2, got {len(a)}, {len(b)}, {len(y)}")

    def difference(index: np.ndarray) -> float:
        index = index.astype(int)
        return POINTS * (_metric(a[index], y[index], metric) - _metric(b[index], y[index], metric))

    observed = difference(np.arange(len(y)))
    if np.all(a == b):
        return DevDifference(observed, observed, observed, len(y))
    result = stats.bootstrap(
        (np.arange(len(y)),), difference, vectorized=False, paired=True, n_resamples=RESAMPLES,
        confidence_level=CONFIDENCE, method="percentile", random_state=np.random.default_rng(seed),
    )  # fmt: skip
    interval = result.confidence_interval
    return DevDifference(observed, float(interval.low), float(interval.high), len(y))


def resolution(examples: int) -> float:
    """Points one dev example is worth for accuracy-like metrics (100 / examples)."""
    return POINTS / max(1, examples)


def _metric(predictions: np.ndarray, labels: np.ndarray, metric: str) -> float:
    """``metric`` as :func:`pyramid_bert.training.metrics.compute_metric` gives it; accuracy and binary F1 (of
    class 1) in numpy, without sklearn's per-call overhead on every resample."""
    if metric == "accuracy":
        return float(np.mean(predictions == labels))
    if metric == "f1" and set(np.union1d(np.unique(labels), np.unique(predictions)).tolist()) <= {0, 1}:
        true_positive = float(np.sum((predictions == 1) & (labels == 1)))
        predicted, actual = float(np.sum(predictions == 1)), float(np.sum(labels == 1))
        return 0.0 if predicted + actual == 0 else 2 * true_positive / (predicted + actual)
    return compute_metric(metric, predictions, labels)
