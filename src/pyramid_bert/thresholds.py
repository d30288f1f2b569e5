"""Adaptive keep counts from a score threshold (in the manner of LTP, Learned Token Pruning, Kim et al. 2022).

A layer of threshold ``t`` keeps CLS and every real token whose *relative attention score* is at least ``t``, so
the number kept adapts to each example. The score of key k is the attention it receives, summed over heads and
(real) queries, divided by the number of heads: ``s_k = n * mean_{h,q} A[h, q, k]``, i.e. the attention received
relative to uniform attention ``1/n``. Over an example's n real keys the scores sum to n (their mean is 1), so a
threshold transfers across lengths: ``t = 1`` keeps the tokens that receive more than average attention, ``t = 0``
keeps everything. Since they sum to at most n, at most ``n / t`` tokens reach ``t``: :func:`threshold_width_bound`.

Training (LTP's soft mask): ``sigmoid((s_k - t) / T)`` weighs each token instead of dropping it
(:func:`soft_keep_weights`); as T -> 0 the weights become the hard keep mask.

Pure tensor functions; conventions as in :mod:`pyramid_bert.selection` (``scores [B, n]``, ``mask [B, n]`` True for
real tokens). Each fast function has a slow ``*_reference`` beside it; the tests compare them.
"""

from __future__ import annotations

import math
from fractions import Fraction

import torch

#: Slack of :func:`threshold_width_bound` over ``n / t``: float sums of n scores may exceed n by rounding.
_BOUND_SLACK = Fraction(1001, 1000)


def relative_scores(significance: torch.Tensor, heads: int) -> torch.Tensor:
    """Attention received relative to uniform attention: ``significance [B, n]`` (summed over ``heads`` heads and
    the real queries, :func:`pyramid_bert.selection.attention_significance`) -> ``[B, n]`` with mean 1 over real
    keys."""
    return significance / heads


def threshold_keep(scores: torch.Tensor, mask: torch.Tensor, threshold: float) -> torch.Tensor:
    """Which tokens a layer of ``threshold`` keeps: ``[B, n]`` bool, CLS always, padding never, a real token when
    its score is at least ``threshold``."""
    keep = mask & (scores >= threshold)
    keep[:, 0] = True
    return keep


def threshold_counts(scores: torch.Tensor, mask: torch.Tensor, threshold: float) -> torch.Tensor:
    """Tokens each example keeps ``[B]`` (long): see :func:`threshold_keep`."""
    return threshold_keep(scores, mask, threshold).sum(dim=1)


def threshold_counts_reference(scores: torch.Tensor, mask: torch.Tensor, threshold: float) -> torch.Tensor:
    """Slow :func:`threshold_counts`: one token at a time."""
    counts = []
    for b in range(scores.shape[0]):
        kept = 1  # CLS
        for i in range(1, scores.shape[1]):
            if bool(mask[b, i]) and float(scores[b, i]) >= threshold:
                kept += 1
        counts.append(kept)
    return torch.tensor(counts, dtype=torch.long)


def threshold_width_bound(tokens: int, threshold: float) -> int:
    """The most tokens a layer of ``threshold`` can keep of ``tokens`` (a shape; symbolic under ``torch.compile``,
    so integer arithmetic only): ``min(n, floor(n * 1.001 / t) + 1)`` (CLS plus the tokens whose scores, summing to
    at most n, reach t); ``n`` for ``t <= 1``."""
    if threshold <= 1:
        return tokens
    ratio = Fraction(threshold).limit_denominator(10**6) / _BOUND_SLACK
    return min(tokens, tokens * ratio.denominator // ratio.numerator + 1)


def soft_keep_weights(scores: torch.Tensor, mask: torch.Tensor, threshold: float, temperature: float) -> torch.Tensor:
    """LTP's soft mask ``[B, n]``: ``sigmoid((s - t) / T)`` for real tokens, 1 for CLS, 0 for padding (float32)."""
    weights = torch.sigmoid((scores.float() - threshold) / temperature) * mask.to(torch.float32)
    weights[:, 0] = 1.0
    return weights


def soft_keep_weights_reference(
    scores: torch.Tensor, mask: torch.Tensor, threshold: float, temperature: float
) -> torch.Tensor:
    """Slow :func:`soft_keep_weights`: one token at a time."""
    weights = torch.zeros(scores.shape, dtype=torch.float32)
    for b in range(scores.shape[0]):
        for i in range(scores.shape[1]):
            if i == 0:
                weights[b, i] = 1.0
            elif bool(mask[b, i]):
                weights[b, i] = 1.0 / (1.0 + math.exp(-(float(scores[b, i]) - threshold) / temperature))
    return weights


def soft_key_bias(weights: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Additive attention bias ``[B, n]`` of soft keep weights: ``log(w)`` (a key of weight w counts w times; a
    weight of 0, padding included, gets the dtype's minimum, i.e. is masked out as hard pruning would)."""
    floor = torch.finfo(dtype).min
    return torch.log(weights.float()).clamp_min(floor).to(dtype)
