"""Task metrics agree with scikit-learn / scipy and with hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats
from sklearn import metrics as skm

from pyramid_bert.errors import ConfigError, DataError
from pyramid_bert.training.metrics import METRIC_NAMES, compute_metric, compute_metrics, predictions_from_logits

# Degenerate random cases (one class only, constant inputs) make sklearn / scipy warn; the values still agree.
pytestmark = pytest.mark.filterwarnings("ignore:A single label was found", "ignore:An input array is constant")


def test_hand_computed_small_cases():
    labels = [1, 0, 1, 1]
    predictions = [1, 0, 0, 1]
    assert compute_metric("accuracy", predictions, labels) == pytest.approx(0.75)
    # tp = 2, fp = 0, fn = 1 -> precision 1, recall 2/3, F1 = 0.8
    assert compute_metric("f1", predictions, labels) == pytest.approx(0.8)
    # MCC = (tp*tn - fp*fn) / sqrt((tp+fp)(tp+fn)(tn+fp)(tn+fn)) = (2*1 - 0*1) / sqrt(2*3*1*2) = 2 / sqrt(12)
    assert compute_metric("matthews", predictions, labels) == pytest.approx(2 / 12**0.5)
    assert compute_metric("spearman", [0.1, 0.4, 0.2, 9.0], [1.0, 3.0, 2.0, 4.0]) == pytest.approx(1.0)
    assert compute_metric("pearson", [1.0, 2.0, 3.0], [2.0, 4.0, 6.0]) == pytest.approx(1.0)
    assert compute_metric("spearman", [3.0, 2.0, 1.0], [1.0, 2.0, 3.0]) == pytest.approx(-1.0)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 2), st.integers(0, 2)), min_size=2, max_size=60))
def test_classification_metrics_match_sklearn(pairs):
    predictions = np.array([p for p, _ in pairs])
    labels = np.array([y for _, y in pairs])
    assert compute_metric("accuracy", predictions, labels) == pytest.approx(skm.accuracy_score(labels, predictions))
    assert compute_metric("matthews", predictions, labels) == pytest.approx(skm.matthews_corrcoef(labels, predictions))
    binary = set(np.union1d(predictions, labels).tolist()) <= {0, 1}
    expected_f1 = skm.f1_score(labels, predictions, average="binary" if binary else "macro", zero_division=0)
    assert compute_metric("f1", predictions, labels) == pytest.approx(expected_f1)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.floats(-5, 5), st.floats(-5, 5)), min_size=3, max_size=60))
def test_correlations_match_scipy(pairs):
    predictions = np.array([p for p, _ in pairs])
    labels = np.array([y for _, y in pairs])
    expected_spearman = stats.spearmanr(predictions, labels).statistic
    got = compute_metric("spearman", predictions, labels)
    assert (np.isnan(got) and np.isnan(expected_spearman)) or got == pytest.approx(expected_spearman)
    if np.std(predictions) > 1e-6 and np.std(labels) > 1e-6:
        assert compute_metric("pearson", predictions, labels) == pytest.approx(
            stats.pearsonr(predictions, labels).statistic
        )


def test_f1_of_a_multiclass_task_is_macro_averaged():
    labels, predictions = [0, 1, 2, 2], [0, 2, 2, 2]
    assert compute_metric("f1", predictions, labels) == pytest.approx(
        skm.f1_score(labels, predictions, average="macro")
    )


def test_companion_metrics_sit_beside_the_task_metric():
    scores = compute_metrics("f1", [1, 0, 0, 1], [1, 0, 1, 1])
    assert set(scores) == {"f1", "accuracy"} and scores["accuracy"] == pytest.approx(0.75)
    assert set(compute_metrics("spearman", [0.1, 0.5, 0.3], [1.0, 2.0, 3.0])) == {"spearman", "pearson"}


def test_predictions_from_logits():
    logits = np.array([[0.1, 2.0], [3.0, -1.0]])
    assert predictions_from_logits(logits, is_regression=False).tolist() == [1, 0]
    assert predictions_from_logits(np.array([[0.5], [1.5]]), is_regression=True).tolist() == [0.5, 1.5]


def test_bad_metric_input_gives_a_clear_error():
    with pytest.raises(ConfigError, match="valid names: " + ", ".join(METRIC_NAMES)):
        compute_metric("auc", [1], [1])
    with pytest.raises(DataError, match="equal length"):
        compute_metric("accuracy", [1, 0], [1])
    with pytest.raises(DataError, match="no examples"):
        compute_metric("accuracy", [], [])
