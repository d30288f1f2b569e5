"""Seeded stratified hold-out of one split from another."""

from __future__ import annotations

import numpy as np
from sklearn.model_selection import train_test_split

from pyramid_bert.errors import ConfigError


def stratified_holdout(labels: np.ndarray, holdout_size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Split example indices into (kept, held out), ``holdout_size`` held out, class proportions kept.

    Args:
        labels: int ``[n]`` class of each example.
        holdout_size: number of examples to hold out, in ``[1, n - 1]``.
        seed: the split is a function of ``labels``, ``holdout_size`` and ``seed``.

    Returns:
        Two sorted int64 index arrays that partition ``range(n)``.
    """

    n = len(labels)
    if not 1 <= holdout_size < n:
        raise ConfigError(f"hold-out size {holdout_size} is invalid for {n} examples: use an int in [1, {n - 1}]")
    kept, held_out = train_test_split(
        np.arange(n), test_size=holdout_size, random_state=seed, shuffle=True, stratify=labels
    )
    return np.sort(kept).astype(np.int64), np.sort(held_out).astype(np.int64)
