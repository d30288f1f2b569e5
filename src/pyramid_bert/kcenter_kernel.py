"""A compiled CPU loop for the rounds of k-Center-greedy-batch-m (numba, optional).

On CPU the rounds of the greedy loop are tiny (O(N) work each) and a Python loop of torch ops spends almost
all of its time in per-op dispatch: with m = 1 and k = 80 that is 80 rounds x ~5 ops per layer, comparable to
the layer itself at batch 1. Here the whole loop over examples and rounds runs as one compiled function on
the precomputed Gram matrix (or on the points, forming each center's distances as it is chosen), with exactly the rules of :func:`pyramid_bert.selection.kcenter_greedy`.

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
    source: np.ndarray,
    from_points: bool,
    real: np.ndarray,
    k: int,
    per_round: int,
    two: float,
    tolerance: float,
    out: np.ndarray,
) -> None:
    """Fill ``out [B, k]`` with the selection order, given ``source`` and ``real [B, N]``.

    ``source`` is the Gram matrices ``[B, N, N]`` (``from_points`` False) or the points ``[B, N, D]`` themselves
    (True: a center's dot products with every token are formed when it is chosen, one matrix-vector product, and
    no ``N x N`` matrix exists). A center's row of squared distances is formed only when the center is chosen, with
    the arithmetic of :func:`pyramid_bert.selection.pairwise_sq_distances` (``|a|^2 + |b|^2 - 2ab``, clamped,
    near-zero snapped to 0); ``two`` and ``tolerance`` come in the source's dtype so that every operation rounds
    as there. Scores: distance to the nearest selected center for unselected real tokens (>= 0), -1 for padding,
    -inf once selected. A round takes the ``take`` highest scores, lower index first on ties.
    """
    batch, tokens = real.shape
    score = np.empty(tokens, dtype=source.dtype)
    row = np.empty(tokens, dtype=source.dtype)
    dots = np.empty(tokens, dtype=source.dtype)
    norms = np.empty(tokens, dtype=source.dtype)
    for b in range(batch):
        s = source[b]
        for j in range(tokens):
            norms[j] = np.dot(s[j], s[j]) if from_points else s[j, j]
        _distance_row(_center_dots(s, from_points, 0, dots), norms, 0, two, tolerance, row)
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
                _distance_row(_center_dots(s, from_points, best, dots), norms, best, two, tolerance, row)
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
                    _distance_row(_center_dots(s, from_points, order[i], dots), norms, order[i], two, tolerance, row)
                    for j in range(tokens):
                        if row[j] < score[j]:
                            score[j] = row[j]


def _center_dots(s: np.ndarray, from_points: bool, center: int, dots: np.ndarray) -> np.ndarray:
    """The dot products ``[N]`` of token ``center`` with every token: a Gram row, or ``points @ points[center]``."""
    if from_points:
        dots[:] = np.dot(s, s[center])
        return dots
    return s[center]


def _distance_row(
    dots: np.ndarray, norms: np.ndarray, center: int, two: float, tolerance: float, row: np.ndarray
) -> None:
    """``row[j]`` = squared distance from token ``center`` to token j, from its dot products ``dots [N]``."""
    for j in range(dots.shape[0]):
        norm_sum = norms[center] + norms[j]
        value = norm_sum - two * dots[j]
        if value < 0:
            value = 0
        if value <= tolerance * norm_sum:
            value = 0
        row[j] = value


if AVAILABLE:
    _distance_row = numba.njit(cache=True, nogil=True, inline="always")(_distance_row)
    _center_dots = numba.njit(cache=True, nogil=True)(_center_dots)
    _kcenter_rounds = numba.njit(cache=True, nogil=True)(_kcenter_rounds)


def kcenter_rounds(gram: np.ndarray, real: np.ndarray, k: int, per_round: int, tolerance: float) -> np.ndarray:
    """Selection order ``[B, k]`` (int64) from ``gram [B, N, N]`` (float32/64) and ``real [B, N]`` (bool)."""
    return _run(gram, False, real, k, per_round, tolerance)


def kcenter_rounds_from_points(
    points: np.ndarray, real: np.ndarray, k: int, per_round: int, tolerance: float
) -> np.ndarray:
    """Selection order ``[B, k]`` (int64) from ``points [B, N, D]`` (float32/64) and ``real [B, N]``, forming
    only each chosen center's distances (no ``N x N`` matrix)."""
    return _run(points, True, real, k, per_round, tolerance)


def _run(source: np.ndarray, from_points: bool, real: np.ndarray, k: int, per_round: int, tolerance: float):
    out = np.empty((real.shape[0], k), dtype=np.int64)
    scalar = source.dtype.type
    _kcenter_rounds(
        np.ascontiguousarray(source), from_points, np.ascontiguousarray(real), k, per_round, scalar(2.0),
        scalar(tolerance), out,
    )
    return out
