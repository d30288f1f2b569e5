"""A compiled CPU loop for the rounds of k-Center-greedy-batch-m (numba, optional).

On CPU the rounds of the greedy loop are tiny (O(N) work each) and a Python loop of torch ops spends almost
all of its time in per-op dispatch: with m = 1 and k = 80 that is 80 rounds x ~5 ops per layer, comparable to
the layer itself at batch 1. Here the whole loop over examples and rounds runs as one compiled function on
the precomputed squared-distance matrix, with exactly the rules of :func:`pyramid_bert.selection.kcenter_greedy`.

Without numba installed, :data:`AVAILABLE` is False and callers use the torch loop.
"""

from __future__ import annotations

import numpy as np

try:
    import numba
except ImportError:  # pragma: no cover - exercised only where numba is absent
    numba = None

AVAILABLE = numba is not None


def _kcenter_rounds(
    gram: np.ndarray, real: np.ndarray, k: int, per_round: int, two: float, tolerance: float, out: np.ndarray
) -> None:
    """Fill ``out [B, k]`` with the selection order, given the Gram matrices ``gram [B, N, N]`` and ``real [B, N]``.

    A center's row of squared distances is formed only when the center is chosen, with the arithmetic of
    :func:`pyramid_bert.selection.pairwise_sq_distances` (``|a|^2 + |b|^2 - 2ab``, clamped, near-zero snapped
    to 0); ``two`` and ``tolerance`` come in the Gram's dtype so that every operation rounds as there.
    Scores: distance to the nearest selected center for unselected real tokens (>= 0), -1 for padding,
    -inf once selected. A round takes the ``take`` highest scores, lower index first on ties.
    """
    batch, tokens = real.shape
    score = np.empty(tokens, dtype=gram.dtype)
    row = np.empty(tokens, dtype=gram.dtype)
    norms = np.empty(tokens, dtype=gram.dtype)
    for b in range(batch):
        g = gram[b]
        for j in range(tokens):
            norms[j] = g[j, j]
        _distance_row(g, norms, 0, two, tolerance, row)
        for j in range(tokens):
            score[j] = row[j] if real[b, j] else -1.0
        score[0] = -np.inf
        out[b, 0] = 0
        count = 1
        while count < k:
            take = min(per_round, k - count)
            if take == 1:
                best = 0
                best_score = -np.inf
                for j in range(tokens):
                    if score[j] > best_score:  # strict: the first maximum wins ties
                        best_score = score[j]
                        best = j
                out[b, count] = best
                count += 1
                if count == k:
                    break
                score[best] = -np.inf
                _distance_row(g, norms, best, two, tolerance, row)
                for j in range(tokens):
                    if row[j] < score[j]:
                        score[j] = row[j]
            else:
                order = np.argsort(-score, kind="mergesort")  # stable: lower index first on ties
                for i in range(take):
                    out[b, count + i] = order[i]
                count += take
                if count == k:
                    break
                for i in range(take):
                    score[order[i]] = -np.inf
                for i in range(take):
                    _distance_row(g, norms, order[i], two, tolerance, row)
                    for j in range(tokens):
                        if row[j] < score[j]:
                            score[j] = row[j]


def _distance_row(g: np.ndarray, norms: np.ndarray, center: int, two: float, tolerance: float, row: np.ndarray) -> None:
    """``row[j]`` = squared distance from token ``center`` to token j, from one row of the Gram matrix."""
    for j in range(g.shape[0]):
        norm_sum = norms[center] + norms[j]
        value = norm_sum - two * g[center, j]
        if value < 0:
            value = 0
        if value <= tolerance * norm_sum:
            value = 0
        row[j] = value


if AVAILABLE:
    _distance_row = numba.njit(cache=True, nogil=True, inline="always")(_distance_row)
    _kcenter_rounds = numba.njit(cache=True, nogil=True)(_kcenter_rounds)


def kcenter_rounds(gram: np.ndarray, real: np.ndarray, k: int, per_round: int, tolerance: float) -> np.ndarray:
    """Selection order ``[B, k]`` (int64) from ``gram [B, N, N]`` (float32/64) and ``real [B, N]`` (bool)."""
    out = np.empty((real.shape[0], k), dtype=np.int64)
    scalar = gram.dtype.type
    _kcenter_rounds(
        np.ascontiguousarray(gram), np.ascontiguousarray(real), k, per_round, scalar(2.0), scalar(tolerance), out
    )
    return out
