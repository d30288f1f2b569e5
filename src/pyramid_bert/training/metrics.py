"""Task metrics, computed by scikit-learn and scipy (never by hand).

Names (``TaskData.metric`` in :mod:`pyramid_bert.data`):

- ``accuracy``: fraction of exact label matches (``sklearn.metrics.accuracy_score``).
- ``f1``: F1 of the positive class 1 for binary labels (GLUE MRPC / QQP convention), macro-averaged F1 when
  there are more than two classes (``sklearn.metrics.f1_score``).
- ``matthews``: Matthews correlation coefficient (``sklearn.metrics.matthews_corrcoef``; GLUE CoLA).
- ``spearman`` / ``pearson``: rank / linear correlation of real-valued predictions (``scipy.stats``; STS-B).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import stats
from sklearn import metrics as skm

from pyramid_bert.errors import ConfigError, DataError

METRIC_NAMES: tuple[str, ...] = ("accuracy", "f1", "matthews", "spearman", "pearson")
REGRESSION_METRICS: frozenset[str] = frozenset({"spearman", "pearson"})

# Metrics reported beside a task's own metric (the GLUE leaderboard shows both for these).
COMPANION_METRICS: dict[str, tuple[str, ...]] = {
    "accuracy": (),
    "f1": ("accuracy",),
    "matthews": ("accuracy",),
    "spearman": ("pearson",),
    "pearson": ("spearman",),
}


def compute_metric(
    name: str, predictions: Sequence[int] | Sequence[float] | np.ndarray, labels: Sequence | np.ndarray
) -> float:
    """The metric ``name`` of ``predictions`` against ``labels`` (both 1-D, same length).

    Classification metrics take predicted class ids (``argmax`` of the logits); correlation metrics take
    the predicted real values. Returns a float (accuracy and F1 in [0, 1]; correlations in [-1, 1]).
    """
    if name not in METRIC_NAMES:
        raise ConfigError(f"metric: unknown name {name!r}; valid names: {', '.join(METRIC_NAMES)}")
    predicted = np.asarray(predictions)
    expected = np.asarray(labels)
    if predicted.ndim != 1 or expected.ndim != 1 or len(predicted) != len(expected):
        raise DataError(
            f"metric {name}: predictions and labels must be 1-D of equal length, "
            f"got shapes {predicted.shape} and {expected.shape}"
        )
    if len(expected) == 0:
        raise DataError(f"metric {name}: no examples to score")
    if name == "accuracy":
        return float(skm.accuracy_score(expected, predicted))
    if name == "f1":
        classes = np.union1d(np.unique(expected), np.unique(predicted))
        if set(classes.tolist()) <= {0, 1}:
            return float(skm.f1_score(expected, predicted, average="binary", pos_label=1, zero_division=0))
        return float(skm.f1_score(expected, predicted, average="macro", zero_division=0))
    if name == "matthews":
        return float(skm.matthews_corrcoef(expected, predicted))
    if name == "spearman":
        return float(stats.spearmanr(predicted.astype(float), expected.astype(float)).statistic)
    return float(stats.pearsonr(predicted.astype(float), expected.astype(float)).statistic)


def compute_metrics(name: str, predictions: Sequence | np.ndarray, labels: Sequence | np.ndarray) -> dict[str, float]:
    """The task metric ``name`` and its usual companions (e.g. accuracy beside F1), keyed by metric name."""
    scores = {name: compute_metric(name, predictions, labels)}
    for companion in COMPANION_METRICS.get(name, ()):
        scores[companion] = compute_metric(companion, predictions, labels)
    return scores


def predictions_from_logits(logits: np.ndarray, *, is_regression: bool) -> np.ndarray:
    """Logits ``[num_examples, num_labels]`` -> predictions ``[num_examples]``.

    Regression heads (``num_labels == 1``) give their single value; classification heads give the argmax.
    """
    logits = np.asarray(logits)
    if is_regression:
        return logits.reshape(len(logits), -1)[:, 0].astype(float)
    return logits.argmax(axis=-1)


def class_shares(predictions: Sequence | np.ndarray, labels: Sequence | np.ndarray, *, is_regression: bool) -> dict:
    """How much of ``predictions`` (and of ``labels``) is its most common class.

    Returns ``{"prediction_majority_share", "label_majority_share", "prediction_counts"}``: fractions in
    (0, 1] and the predicted-class histogram (class id as text -> count); all None for regression. A model
    whose predictions are nearly all one class is a constant predictor, whatever its accuracy says.
    """
    if is_regression or len(predictions) == 0:
        return {"prediction_majority_share": None, "label_majority_share": None, "prediction_counts": None}
    predicted_classes, counts = np.unique(np.asarray(predictions).astype(int), return_counts=True)
    _, label_counts = np.unique(np.asarray(labels).astype(int), return_counts=True)
    return {
        "prediction_majority_share": float(counts.max() / counts.sum()),
        "label_majority_share": float(label_counts.max() / label_counts.sum()),
        "prediction_counts": {str(int(c)): int(n) for c, n in zip(predicted_classes, counts, strict=True)},
    }
