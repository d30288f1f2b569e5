"""Energy-aware token merging: PiToMe (Tran et al., "Accelerating Transformers with Spectrum-Preserving Token
Merging", NeurIPS 2024) as the selection method "energy".

A layer that keeps k of an example's n real tokens removes them in merge steps. One step removing r tokens:

- the *energy* of each mergeable token (real, not CLS) is ``E_i = (1/m) sum_j f(cos(x_i, x_j))`` over the m mergeable
  tokens j (itself included), with ``f(c) = c`` for ``c > margin`` and ``alpha * (exp(c - margin) - 1)`` otherwise
  (the paper's Eq. 4, ``alpha = 1``): high energy means many close neighbours, i.e. a redundant token;
- the 2r mergeable tokens of highest energy (ties: lower position first) are split alternately by rank, ranks
  0, 2, 4, ... into A and 1, 3, 5, ... into B; each A token merges into its most cosine-similar B token (ties: the B
  token of lower rank). The other tokens, the low-energy ones, are protected: kept as they are;
- a merged token is the size-weighted mean of the input tokens it stands for (sizes as in
  :mod:`pyramid_bert.duplicity`: 1 per input token at the encoder's input, accumulated over layers).

One step removes at most ``floor((n - 1) / 2)`` tokens; a layer that must remove more (e.g. keep ratio 0.25) repeats
steps, energies recomputed over the remaining tokens, each removing ``min(r_left, floor((n_cur - 1) / 2))``, until the
example has its k tokens. A layer that keeps only CLS (k = 1) merges down to one other token and then drops it, its
size counted in CLS's (CLS is never merged and never absorbs an embedding, as in :mod:`pyramid_bert.duplicity`).

Cosine similarity is taken between the hidden states the layer selects from (PiToMe's BERT code uses the attention
keys; the other methods here use the hidden states). PiToMe's code excludes CLS from the energies, as here.

:func:`energy_merge` returns the assignment of every input token to a kept slot, so the merged tokens and sizes
come from :func:`pyramid_bert.duplicity.merge_clusters` and :func:`~pyramid_bert.duplicity.cluster_sizes` (a
composition of size-weighted means is the size-weighted mean over all members). Conventions of
:mod:`pyramid_bert.selection`: ``x [B, n, D]``, ``mask [B, n]`` True for real tokens. The number of steps is a host
int planned before the encoder runs (:func:`merge_steps`, :func:`ratio_merge_steps`), so nothing is read on the
host inside a layer; rows that are done sooner take steps that remove nothing.
"""

from __future__ import annotations

import functools
import math

import torch

from pyramid_bert.schedule import ratio_keep
from pyramid_bert.spec import AUTO_MARGIN

#: Eq. 4's alpha: how strongly neighbours below the margin lower a token's energy (PiToMe's default).
ALPHA = 1.0
#: Similarities and kernel values are rounded to multiples of 1 / GRID in float64, so that energies are exact sums:
#: tokens with the same neighbourhood (duplicates) tie exactly whatever the summation order, and ties break by
#: position in the batched and the reference code alike (2^-30: far below any similarity that matters).
GRID = 2.0**30


def snap(values: torch.Tensor) -> torch.Tensor:
    """``values`` (float64) rounded to the nearest multiple of ``1 / GRID`` (ties to even, as Python's ``round``)."""
    return torch.round(values * GRID) / GRID


def layer_margin(margin: float | str, layer: int, num_layers: int) -> float:
    """The margin of layer ``layer`` (0-based) of ``num_layers``: ``margin`` itself, or for ``"auto"`` PiToMe's depth
    schedule ``0.9 - 0.9 * layer / num_layers`` (its ViT code; its BERT code uses ``0.9 - 0.25 * layer / layers``)."""
    if margin == AUTO_MARGIN:
        return 0.9 - 0.9 * layer / num_layers
    return float(margin)


def energy_kernel(similarity: torch.Tensor, margin: float, alpha: float = ALPHA) -> torch.Tensor:
    """Eq. 4 elementwise: ``c`` where ``c > margin``, ``alpha * (exp(c - margin) - 1)`` elsewhere."""
    return torch.where(similarity > margin, similarity, alpha * torch.expm1(similarity - margin))


def merge_steps(tokens: int, keep: int) -> int:
    """Merge steps that bring an example of ``tokens`` real tokens (CLS included) down to ``keep`` (>= 1).

    Each step takes the mergeable count m = n - 1 to ``max(keep - 1, ceil(m / 2))``; with ``keep = 1`` the steps
    end at one mergeable token, which is then dropped without a step.
    """
    mergeable, target = tokens - 1, max(keep - 1, 1)
    if mergeable <= target:
        return 0
    return (-(-mergeable // target) - 1).bit_length()  # the least s with ceil(m / 2^s) <= target


@functools.lru_cache(maxsize=256)
def ratio_merge_steps(ratios: tuple[float, ...], tokens: int) -> tuple[int, ...]:
    """Per layer of a keep-ratio schedule, the most merge steps any example of 1 to ``tokens`` real tokens needs
    (counts chained as :func:`pyramid_bert.selection.ratio_counts` chains them). A function of the schedule and the
    batch's width only: the same eagerly and under ``torch.compile``."""
    steps = [0] * len(ratios)
    for real in range(1, tokens + 1):
        current = real
        for layer, ratio in enumerate(ratios):
            keep = min(ratio_keep(ratio, real), current)
            steps[layer] = max(steps[layer], merge_steps(current, keep))
            current = keep
    return tuple(steps)


def energy_merge(
    x: torch.Tensor,
    mask: torch.Tensor,
    sizes: torch.Tensor | None,
    k: int,
    steps: int,
    margin: float,
    counts: torch.Tensor | None = None,
    alpha: float = ALPHA,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Energy-aware merging of ``x [B, n, D]`` down to ``k`` slots (see the module docstring).

    Args:
        mask: ``[B, n]`` real tokens (CLS, position 0, real in every row).
        sizes: ``[B, n]`` input tokens each token stands for (None: 1 each); merges are means weighted by them.
        k: the output width; row b keeps ``min(counts[b], n_b)`` tokens (``counts`` None: ``min(k, n_b)``).
        steps: merge steps to run (:func:`merge_steps`, :func:`ratio_merge_steps`; enough for every row).
        margin: Eq. 4's margin (:func:`layer_margin`).

    Returns:
        ``ordered [B, k]``: the kept positions in increasing order (CLS first), then other positions;
        ``kept_mask [B, k]``: which slots are kept tokens; ``slots [B, n]``: the kept slot each input token ends in
        (its own for a kept token; 0 for padding).
    """
    batch, tokens, _ = x.shape
    work = x.detach().to(torch.promote_types(x.dtype, torch.float32))
    weights = mask.to(work.dtype) if sizes is None else sizes.to(work.dtype) * mask
    keep = torch.full((batch,), k, device=x.device) if counts is None else counts
    keep = torch.minimum(keep, mask.sum(dim=1))
    left, alive = mask.sum(dim=1) - keep, mask.clone()
    dest = torch.arange(tokens, device=x.device).expand(batch, tokens)  # each token's current representative
    gram = torch.bmm(work, work.transpose(1, 2))  # [B, n, n]: the merged tokens' products follow from it
    for step in range(steps if tokens > 2 else 0):
        products = gram if step == 0 else _cluster_products(gram, weights, dest)
        dest, alive, left = _merge_step(_cosines(products), alive, dest, left, margin, alpha)
    drop = alive & (keep == 1)[:, None]  # keep only CLS: the last mergeable token goes, counted in CLS's size
    drop[:, 0] = False
    dest = dest.masked_fill(drop.gather(1, dest), 0)
    alive = alive & ~drop
    return _kept_slots(alive, dest, mask, k)


def _cluster_products(gram: torch.Tensor, weights: torch.Tensor, dest: torch.Tensor) -> torch.Tensor:
    """Dot products ``[B, n, n]`` of the merged tokens (at their representatives' positions; zero elsewhere): each
    merged token is ``sum_i share_i x_i`` over its members, so the products are ``S G S^T`` with ``G`` the input
    tokens' Gram matrix and ``S [B, n, n]`` the shares (a token alone has share exactly 1). Cheaper than averaging
    ``[B, n, D]`` states and multiplying them again whenever n is below the hidden size, or near it."""
    totals = torch.zeros_like(weights).scatter_add(1, dest, weights)
    share = weights / totals.gather(1, dest).clamp_min(torch.finfo(weights.dtype).tiny)  # [B, n]
    shares = torch.zeros_like(gram).scatter(1, dest[:, None, :], share[:, None, :])  # [b, p, i]: i's share in p
    return torch.bmm(torch.bmm(shares, gram), shares.transpose(1, 2))


def _cosines(products: torch.Tensor) -> torch.Tensor:
    """Cosine similarities ``[B, n, n]`` (float64, symmetric, self exactly 1, on the grid of :data:`GRID`) from dot
    products; a zero vector has cosine 0 with the others (norms clamped at 1e-12, as ``F.normalize``)."""
    norms = products.diagonal(dim1=1, dim2=2).clamp_min(0).sqrt().clamp_min(1e-12)
    similarity = (products / (norms[:, :, None] * norms[:, None, :])).double()
    similarity = snap((similarity + similarity.transpose(1, 2)) / 2)
    similarity.diagonal(dim1=1, dim2=2).fill_(1.0)
    return similarity


def _merge_step(
    similarity: torch.Tensor, alive: torch.Tensor, dest: torch.Tensor, left: torch.Tensor, margin: float, alpha: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One merge step given the current tokens' cosines ``[B, n, n]`` (``alive [B, n]``): ``(dest, alive, left)``."""
    batch, tokens, _ = similarity.shape
    mergeable = alive.clone()
    mergeable[:, 0] = False
    count = mergeable.sum(dim=1)
    removed = torch.minimum(left, count // 2)  # [B]
    energy = (snap(energy_kernel(similarity, margin, alpha)) * mergeable[:, None, :]).sum(dim=2)  # exact sums
    energy = (energy / count.clamp_min(1)[:, None]).masked_fill(~mergeable, -math.inf)
    ranked = torch.sort(energy, dim=1, descending=True, stable=True).indices
    sources, targets = ranked[:, 0::2], ranked[:, 1::2]  # A: ranks 0, 2, ...; B: ranks 1, 3, ...
    moving = torch.arange(sources.shape[1], device=alive.device) < removed[:, None]
    open_targets = torch.arange(targets.shape[1], device=alive.device) < removed[:, None]
    pairs = similarity.gather(1, sources[:, :, None].expand(-1, -1, tokens))
    pairs = pairs.gather(2, targets[:, None, :].expand(-1, sources.shape[1], -1))  # [B, |A|, |B|]
    best = pairs.masked_fill(~open_targets[:, None, :], -math.inf).argmax(dim=2)  # first maximum: lower B rank
    mapping = torch.arange(tokens, device=alive.device).expand(batch, tokens)
    mapping = mapping.scatter(1, sources, torch.where(moving, targets.gather(1, best), sources))
    alive = alive.scatter(1, sources, alive.gather(1, sources) & ~moving)
    return mapping.gather(1, dest), alive, left - removed


def _kept_slots(
    alive: torch.Tensor, dest: torch.Tensor, mask: torch.Tensor, k: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(ordered [B, k], kept_mask [B, k], slots [B, n])`` from the surviving tokens and each token's representative."""
    tokens = alive.shape[1]
    positions = torch.arange(tokens, device=alive.device)
    ordered = torch.sort(torch.where(alive, positions, positions + tokens), dim=1).indices[:, :k]
    rank = alive.long().cumsum(dim=1) - 1
    slots = rank.gather(1, dest).masked_fill(~mask, 0)
    return ordered, alive.gather(1, ordered), slots


# ----------------------------------------------------------------------------------------------- reference


def energy_merge_reference(
    x: torch.Tensor,
    mask: torch.Tensor,
    sizes: torch.Tensor | None,
    k: int,
    margin: float,
    counts: torch.Tensor | None = None,
    alpha: float = ALPHA,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Slow :func:`energy_merge`: one example at a time, float64, groups of input positions as Python lists, steps
    until the example has its tokens (no step count given)."""
    batch, tokens, _ = x.shape
    ordered = torch.zeros(batch, k, dtype=torch.long)
    kept_mask = torch.zeros(batch, k, dtype=torch.bool)
    slots = torch.zeros(batch, tokens, dtype=torch.long)
    for b in range(batch):
        real = [i for i in range(tokens) if mask[b, i]]
        keep = min(k if counts is None else int(counts[b]), len(real))
        weight = {i: 1.0 if sizes is None else float(sizes[b, i]) for i in real}
        groups = _reference_groups(x[b].detach().double().cpu(), weight, keep, margin, alpha)
        kept = sorted(groups)
        rest = [i for i in range(tokens) if i not in groups]
        ordered[b] = torch.tensor((kept + rest)[:k])
        kept_mask[b, : len(kept)] = True
        for slot, representative in enumerate(kept):
            for member in groups[representative]:
                slots[b, member] = slot
    return ordered.to(x.device), kept_mask.to(x.device), slots.to(x.device)


def _reference_groups(
    points: torch.Tensor, weight: dict[int, float], keep: int, margin: float, alpha: float
) -> dict[int, list[int]]:
    """One example's merging: kept position -> the input positions merged into it."""
    groups = {i: [i] for i in weight}
    while len(groups) > keep:
        mergeable = [i for i in groups if i != 0]
        if len(mergeable) == 1:  # keep = 1: the last token is dropped into CLS
            groups[0] += groups.pop(mergeable[0])
            continue
        removed = min(len(groups) - keep, len(mergeable) // 2)
        vectors = {i: _reference_mean(points, groups[i], weight) for i in mergeable}
        cosine = {
            (i, j): _reference_cosine(vectors[i], vectors[j]) if i != j else 1.0 for i in mergeable for j in mergeable
        }
        energy = {i: sum(_reference_kernel(cosine[i, j], margin, alpha) for j in mergeable) / len(mergeable)
                  for i in mergeable}  # fmt: skip
        ranked = sorted(mergeable, key=lambda i: (-energy[i], i))[: 2 * removed]
        sources, targets = ranked[0::2], ranked[1::2]
        for source in sources:
            best = targets[0]
            for target in targets[1:]:
                if cosine[source, target] > cosine[source, best]:
                    best = target
            groups[best] += groups.pop(source)
    return groups


def _reference_cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    """cos(a, b) from its definition (a zero vector: 0), on the grid of :data:`GRID`."""
    value = float(a @ b) / (max(float(a.norm()), 1e-12) * max(float(b.norm()), 1e-12))
    return round(value * GRID) / GRID


def _reference_kernel(c: float, margin: float, alpha: float) -> float:
    """Eq. 4 for one similarity, on the grid of :data:`GRID`."""
    return round((c if c > margin else alpha * math.expm1(c - margin)) * GRID) / GRID


def _reference_mean(points: torch.Tensor, members: list[int], weight: dict[int, float]) -> torch.Tensor:
    if len(members) == 1:
        return points[members[0]]
    members = sorted(members)  # summed in position order, as the batched scatter-add sums
    return sum((weight[i] * points[i] for i in members), torch.zeros_like(points[0])) / sum(weight[i] for i in members)
