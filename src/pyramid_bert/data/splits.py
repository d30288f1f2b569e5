"""De-duplication and seeded, stratified hold-out splits.

Policy (the same for every text corpus):

* **De-duplication.** Two examples are duplicates when their texts are equal after lower-casing and
  collapsing white space. The first occurrence is kept. For classification, a text that occurs with two
  different labels is dropped entirely (its label is unknowable); for regression its scores are averaged.
* **Splits.** ``test`` is 10% of the unique examples, drawn with a fixed seed (:data:`TEST_SPLIT_SEED`), so
  the reported numbers of every run use the same test set; ``dev`` is another 10% of the whole, drawn from
  the rest with the caller's ``seed``; ``train`` is what remains. Draws are stratified by label
  (regression: by decile of the score) whenever every stratum has at least two members.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
from sklearn.model_selection import train_test_split

TEST_SPLIT_SEED = 20220301
TEST_FRACTION = 0.1
DEV_FRACTION = 0.1
REGRESSION_STRATA = 10


def dedup_key(text: str) -> str:
    """The identity of a text for de-duplication: lower-cased, white space collapsed."""
    return " ".join(text.split()).lower()


def deduplicate(texts: list[str], labels: list, *, regression: bool) -> tuple[list[str], list, dict[str, int]]:
    """Remove duplicate texts (see the module docstring); returns texts, labels and a small report
    ``{"input": n, "duplicates": d, "conflicting": c, "kept": k}``."""
    groups: dict[str, list[int]] = {}
    for index, text in enumerate(texts):
        groups.setdefault(dedup_key(text), []).append(index)
    kept_texts, kept_labels, conflicting = [], [], 0
    for indices in groups.values():
        group_labels = [labels[i] for i in indices]
        if regression:
            label = float(np.mean(group_labels))
        elif len(set(group_labels)) > 1:
            conflicting += 1
            continue
        else:
            label = group_labels[0]
        kept_texts.append(texts[indices[0]])
        kept_labels.append(label)
    report = {
        "input": len(texts),
        "duplicates": len(texts) - len(groups),
        "conflicting": conflicting,
        "kept": len(kept_texts),
    }
    return kept_texts, kept_labels, report


def _strata(labels: list, regression: bool) -> np.ndarray | None:
    """Stratum of each example (score deciles for regression), or None when stratifying is impossible."""
    if regression:
        values = np.asarray(labels, dtype=float)
        edges = np.quantile(values, np.linspace(0, 1, REGRESSION_STRATA + 1)[1:-1])
        strata = np.searchsorted(edges, values, side="right")
    else:
        strata = np.asarray(labels)
    counts = Counter(strata.tolist())
    return strata if min(counts.values(), default=0) >= 2 else None


def holdout(labels: list, size: int, *, seed: int, regression: bool) -> tuple[np.ndarray, np.ndarray]:
    """Split ``range(len(labels))`` into (kept, held out) index arrays with ``size`` held out.

    Stratified by label (or score decile) when possible; deterministic in ``seed``. Both arrays sorted.
    """

    indices = np.arange(len(labels))
    if size <= 0:
        return indices, indices[:0]
    strata = _strata(labels, regression)
    if strata is not None and size < len(np.unique(strata)):
        strata = None
    if strata is not None and len(labels) - size < len(np.unique(strata)):
        strata = None
    kept, held = train_test_split(indices, test_size=size, random_state=seed, shuffle=True, stratify=strata)
    return np.sort(kept), np.sort(held)


def split_corpus(labels: list, *, seed: int, regression: bool) -> dict[str, np.ndarray]:
    """Indices of the ``train``/``dev``/``test`` splits of a de-duplicated corpus (see module docstring)."""
    total = len(labels)
    test_size = max(1, round(TEST_FRACTION * total))
    dev_size = max(1, round(DEV_FRACTION * total))
    rest, test = holdout(labels, test_size, seed=TEST_SPLIT_SEED, regression=regression)
    kept, dev = holdout([labels[i] for i in rest], dev_size, seed=seed, regression=regression)
    return {"train": rest[kept], "dev": rest[dev], "test": test}
