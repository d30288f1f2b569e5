"""De-duplication policy and seeded, stratified, disjoint splits."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from pyramid_bert.data.splits import deduplicate, holdout, split_corpus


def test_duplicates_differing_in_case_and_spacing_are_removed_keeping_the_first():
    texts, labels, report = deduplicate(["A  film.", "a film.", "Other"], ["pos", "pos", "neg"], regression=False)
    assert texts == ["A  film.", "Other"]
    assert labels == ["pos", "neg"]
    assert report == {"input": 3, "duplicates": 1, "conflicting": 0, "kept": 2}


def test_texts_with_conflicting_labels_are_dropped():
    texts, labels, report = deduplicate(["x", "x", "y"], [0, 1, 1], regression=False)
    assert texts == ["y"] and labels == [1]
    assert report["conflicting"] == 1


def test_regression_duplicates_average_their_scores():
    texts, labels, _ = deduplicate(["x", "X", "y"], [1.0, 2.0, -1.0], regression=True)
    assert texts == ["x", "y"]
    assert labels == [1.5, -1.0]


def labels_fixture(n_per_class=(300, 100, 50)) -> list[int]:
    rng = np.random.default_rng(1)
    labels = [c for c, n in enumerate(n_per_class) for _ in range(n)]
    return rng.permutation(labels).tolist()


def test_splits_partition_the_corpus():
    labels = labels_fixture()
    splits = split_corpus(labels, seed=0, regression=False)
    joined = np.concatenate(list(splits.values()))
    assert sorted(joined.tolist()) == list(range(len(labels)))
    assert {k: len(v) for k, v in splits.items()} == {"train": 360, "dev": 45, "test": 45}


def test_splits_are_stratified():
    labels = np.asarray(labels_fixture())
    splits = split_corpus(labels.tolist(), seed=3, regression=False)
    for indices in splits.values():
        counts = Counter(labels[indices].tolist())
        fractions = np.array([counts[c] for c in range(3)]) / len(indices)
        assert np.allclose(fractions, [300 / 450, 100 / 450, 50 / 450], atol=0.03)


def test_seed_changes_dev_but_never_test():
    labels = labels_fixture()
    first = split_corpus(labels, seed=0, regression=False)
    again = split_corpus(labels, seed=0, regression=False)
    other = split_corpus(labels, seed=1, regression=False)
    assert all(np.array_equal(first[k], again[k]) for k in first)
    assert np.array_equal(first["test"], other["test"])
    assert not np.array_equal(first["dev"], other["dev"])


def test_regression_splits_are_stratified_by_score_decile():
    scores = np.linspace(-4, 4, 1000)
    splits = split_corpus(scores.tolist(), seed=0, regression=True)
    for indices in splits.values():
        deciles = np.histogram(scores[indices], bins=np.quantile(scores, np.linspace(0, 1, 11)))[0]
        assert deciles.min() >= 0.8 * deciles.mean()


def test_holdout_falls_back_to_unstratified_for_singleton_classes():
    kept, held = holdout([0, 0, 0, 1], 1, seed=0, regression=False)
    assert len(held) == 1 and sorted([*kept, *held]) == [0, 1, 2, 3]


@pytest.mark.parametrize("size", [0, 2])
def test_holdout_sizes(size):
    kept, held = holdout([0, 1] * 5, size, seed=0, regression=False)
    assert len(held) == size and len(kept) == 10 - size
