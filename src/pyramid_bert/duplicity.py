"""Token sizes: what a kept token stands for (the paper's Remark 1), proportional attention and merging.

The paper's Remark 1 reads core-set selection as an approximation: replacing each dropped token by its nearest
kept center gives "pyramid* BERT", whose attention over the kept tokens equals attention in which each kept token
weighs as many times as the tokens it stands for. Made practical:

- every token carries a *size* ``[B, n]`` (1 for each real input token, 0 for padding); when a layer keeps k of
  its n tokens, each dropped real token is assigned to its nearest kept token (:func:`assign_to_centers`) and
  the sizes of each cluster add up (:func:`cluster_sizes`), so sizes always sum to the real input tokens;
- *proportional attention* adds ``log(size)`` of each key to the attention logits (:func:`size_bias`): with
  all sizes 1 it is standard attention; a key of size s weighs exactly as s copies of it would;
- *merging* replaces each kept token by the size-weighted mean of its cluster (:func:`merge_clusters`); a
  cluster of one (nothing assigned) is the token itself, so merging singletons equals dropping. CLS keeps its
  own embedding (it is the classifier's input), while its size still counts what was assigned to it.
  A cluster of one member is returned exactly (no rounding through ``size * x / size``).

Conventions as in :mod:`pyramid_bert.selection`: ``x [B, n, D]``, ``mask [B, n]`` True for real tokens,
``ordered [B, k]`` kept positions in increasing order (CLS first) and ``kept_mask [B, k]`` which of those slots
are real. Each fast function has a slow ``*_reference`` beside it; the tests compare them.
"""

from __future__ import annotations

import math

import torch

from pyramid_bert.selection import check_distance, distance_space, reference_distance, reference_scale


def initial_sizes(mask: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Sizes at the encoder's input: 1 per real token, 0 per padding slot. ``mask [B, n]`` -> ``[B, n]``."""
    return mask.to(dtype)


def assign_to_centers(
    x: torch.Tensor, mask: torch.Tensor, ordered: torch.Tensor, kept_mask: torch.Tensor, distance: str = "euclidean"
) -> torch.Tensor:
    """The kept slot ``[B, n]`` (in ``0..k-1``) each token is assigned to: its own slot for a kept token, the
    nearest real kept token (by ``distance``; ties: lower slot) for a dropped one. Padding tokens get slot 0 (their
    size is 0, so where they go does not matter)."""
    batch, tokens, _ = x.shape
    space = distance_space(x, mask, distance)  # [B, n, D]
    centers = space.gather(1, ordered[:, :, None].expand(-1, -1, space.shape[-1]))  # [B, k, D]
    sq = (space * space).sum(-1)  # [B, n]
    dist = sq[:, :, None] + sq.gather(1, ordered)[:, None, :] - 2.0 * torch.bmm(space, centers.transpose(1, 2))
    dist = dist.masked_fill(~kept_mask[:, None, :], math.inf)  # [B, n, k]
    slots = dist.argmin(dim=2)  # first minimum: lower slot wins ties
    own = torch.arange(ordered.shape[1], device=x.device).expand_as(ordered)
    slots = slots.scatter(1, ordered, torch.where(kept_mask, own, slots.gather(1, ordered)))
    return slots.masked_fill(~mask, 0)


def cluster_sizes(sizes: torch.Tensor, mask: torch.Tensor, slots: torch.Tensor, k: int) -> torch.Tensor:
    """Sizes of the kept slots ``[B, k]``: the sum of the sizes ``[B, n]`` of the real tokens assigned to each."""
    weights = sizes * mask.to(sizes.dtype)
    return torch.zeros(sizes.shape[0], k, dtype=sizes.dtype, device=sizes.device).scatter_add_(1, slots, weights)


def merge_clusters(
    x: torch.Tensor, sizes: torch.Tensor, mask: torch.Tensor, slots: torch.Tensor, kept: torch.Tensor
) -> torch.Tensor:
    """Each kept slot becomes the size-weighted mean of its cluster; CLS (slot 0) and empty slots stay ``kept``.

    ``x [B, n, D]`` the layer's tokens, ``kept [B, k, D]`` the gathered kept tokens -> ``[B, k, D]``. Gradients flow
    to every member of a cluster.
    """
    batch, _, dim = x.shape
    k = kept.shape[1]
    weights = (sizes * mask.to(sizes.dtype)).to(x.dtype)  # [B, n]
    sums = torch.zeros(batch, k, dim, dtype=x.dtype, device=x.device)
    sums = sums.scatter_add(1, slots[:, :, None].expand(-1, -1, dim), x * weights[:, :, None])
    totals = cluster_sizes(weights, mask, slots, k)  # [B, k]
    merged = sums / totals.clamp_min(torch.finfo(x.dtype).tiny)[:, :, None]
    members = cluster_sizes(torch.ones_like(weights), mask, slots, k)
    keep_own = members <= 1  # a token alone (or an empty slot) stays exactly itself
    keep_own[:, 0] = True  # CLS is the classifier's input: never averaged
    return torch.where(keep_own[:, :, None], kept, merged)


def size_bias(sizes: torch.Tensor, mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Additive attention mask ``[B, 1, 1, n]``: ``log(size)`` for real keys, the dtype's minimum for padding."""
    bias = torch.log(sizes.clamp_min(1.0)).to(dtype)
    return bias.masked_fill(~mask, torch.finfo(dtype).min)[:, None, None, :]


# ----------------------------------------------------------------------------------------------- references


def assign_to_centers_reference(
    x: torch.Tensor, mask: torch.Tensor, ordered: torch.Tensor, kept_mask: torch.Tensor, distance: str = "euclidean"
) -> torch.Tensor:
    """Slow :func:`assign_to_centers`: one token at a time, float64, distances from their definition."""
    check_distance(distance)
    result = torch.zeros(mask.shape, dtype=torch.long)
    for b in range(x.shape[0]):
        points, real = x[b].detach().double().cpu(), mask[b].cpu()
        scale = reference_scale(points, real)
        valid = [c for c in range(ordered.shape[1]) if kept_mask[b, c]]
        for i in range(points.shape[0]):
            if not real[i]:
                continue
            own = [c for c in valid if int(ordered[b, c]) == i]
            if own:
                result[b, i] = own[0]
                continue
            distances = [reference_distance(points[i], points[int(ordered[b, c])], distance, scale) for c in valid]
            result[b, i] = valid[min(range(len(valid)), key=lambda j: (distances[j], j))]
    return result.to(x.device)


def merge_clusters_reference(
    x: torch.Tensor, sizes: torch.Tensor, mask: torch.Tensor, slots: torch.Tensor, kept: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Slow :func:`merge_clusters` and :func:`cluster_sizes` together: explicit loops over slots and members."""
    merged = kept.detach().clone().double()
    totals = torch.zeros(kept.shape[:2], dtype=torch.float64)
    for b in range(x.shape[0]):
        for c in range(kept.shape[1]):
            members = [i for i in range(x.shape[1]) if mask[b, i] and int(slots[b, i]) == c]
            total = sum(float(sizes[b, i]) for i in members)
            totals[b, c] = total
            if c > 0 and total > 0:
                merged[b, c] = sum(float(sizes[b, i]) * x[b, i].double() for i in members) / total
    return merged, totals
