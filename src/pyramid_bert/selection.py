"""Token selection: k-Center-greedy-batch-m (the paper's Algorithm 1) and the baselines.

Pure tensor functions; nothing here knows about models or data. Conventions shared by every method:

- ``x`` is ``[B, N, D]``; ``mask`` is a bool ``[B, N]`` with True for real tokens (None: all real);
- the result is a LongTensor ``[B, k]`` of token positions; position 0 (CLS) always comes first;
- padding is never chosen while a real token is left; a row with fewer than k real tokens is completed
  with padding positions, lowest index first (``mask.gather(1, idx)`` tells the caller which slots they are);
- :func:`kcenter_greedy` returns indices in selection order (the paper reads that order as importance);
  callers sort them (:func:`gather_tokens`) so kept tokens stay in their original order.

Each fast path has a slow, obviously correct ``*_reference`` beside it; the tests compare the two.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch

from pyramid_bert import kcenter_kernel
from pyramid_bert.errors import ConfigError
from pyramid_bert.spec import DISTANCES

# Squared distances this small relative to the norms are rounding noise of the Gram-matrix identity
# |a|^2 + |b|^2 - 2ab; snapping them to 0 makes exact duplicates exactly 0, as in the direct formula.
_GRAM_RELATIVE_TOLERANCE = {torch.float64: 1e-12, torch.float32: 1e-6}

# Whether kcenter_greedy may use the compiled CPU rounds; see compiled_rounds().
_compiled_rounds_enabled = True


@contextmanager
def compiled_rounds(enabled: bool) -> Iterator[None]:
    """Within the block, let :func:`kcenter_greedy` use (True) or skip (False) the compiled CPU rounds.

    For benchmarks that compare the two paths inside whole models; results are identical either way.
    """
    global _compiled_rounds_enabled
    previous, _compiled_rounds_enabled = _compiled_rounds_enabled, enabled
    try:
        yield
    finally:
        _compiled_rounds_enabled = previous


def resolve_m(m: int | float | None, k: int) -> int:
    """Centers added per round for a core-set of size ``k``.

    ``m``: an int >= 1 is absolute; a float in (0, 1) means ``ceil(m * k)``; None means ``k - 1`` (one round,
    the paper's CS-k-1). The result is at least 1.
    """
    if m is None:
        return max(1, k - 1)
    if isinstance(m, bool):
        raise ConfigError(f"m must be an int >= 1, a float in (0, 1), or None (k - 1); got {m!r}")
    if isinstance(m, int):
        if m < 1:
            raise ConfigError(f"m must be an int >= 1, a float in (0, 1), or None (k - 1); got {m}")
        return m
    if isinstance(m, float):
        if not 0.0 < m < 1.0:
            raise ConfigError(f"m must be an int >= 1, a float in (0, 1), or None (k - 1); got {m}")
        return max(1, math.ceil(m * k))
    raise ConfigError(f"m must be an int >= 1, a float in (0, 1), or None (k - 1); got {type(m).__name__}")


def check_selection_inputs(x: torch.Tensor, k: int, mask: torch.Tensor | None) -> torch.Tensor:
    """Validate ``x [B, N, D]``, ``k`` and ``mask``; return the mask as bool ``[B, N]`` with CLS real."""
    if x.dim() != 3:
        raise ConfigError(f"x must be [batch, tokens, dim], got shape {tuple(x.shape)}")
    batch, tokens, _ = x.shape
    check_k(k, tokens)
    return _bool_mask(mask, batch, tokens, x.device)


def check_k(k: int, tokens: int) -> None:
    """ConfigError unless ``k`` is an int in ``[1, tokens]`` (a symbolic int under ``torch.compile`` counts as one)."""
    if isinstance(k, bool) or not isinstance(k, (int, torch.SymInt)) or not 1 <= k <= tokens:
        raise ConfigError(f"k must be an int in [1, N] = [1, {tokens}], got {k!r}")


def _bool_mask(mask: torch.Tensor | None, batch: int, tokens: int, device: torch.device) -> torch.Tensor:
    if mask is None:
        return torch.ones(batch, tokens, dtype=torch.bool, device=device)
    if tuple(mask.shape) != (batch, tokens):
        raise ConfigError(f"mask must have shape [B, N] = [{batch}, {tokens}], got {tuple(mask.shape)}")
    mask = mask.to(device=device, dtype=torch.bool).clone()
    mask[:, 0] = True  # CLS is always kept, by every method
    return mask


def _check_finite(values: torch.Tensor, what: str) -> None:
    """ConfigError if ``values`` hold NaN or inf. Under ``torch.compile`` the check is an asynchronous assertion
    (a RuntimeError with the same message), so that no value is read on the host inside the graph."""
    message = f"{what} contain NaN or inf; token selection needs finite hidden states"
    if torch.compiler.is_compiling():
        torch._assert_async(torch.isfinite(values).all(), message)
    elif not bool(torch.isfinite(values).all()):
        raise ConfigError(message)


def check_distance(distance: str) -> str:
    """``distance`` if it is one of :data:`DISTANCES`; ConfigError naming the valid ones otherwise."""
    if distance not in DISTANCES:
        raise ConfigError(f"distance must be one of {', '.join(DISTANCES)}; got {distance!r}")
    return distance


def distance_space(x: torch.Tensor, mask: torch.Tensor, distance: str) -> torch.Tensor:
    """``x [B, N, D]`` mapped so that squared Euclidean distance there orders pairs as ``distance`` does.

    Euclidean: ``x`` itself (detached). Cosine: unit vectors. Standardised: each dimension divided by its
    standard deviation over the real tokens (``mask [B, N]``) of its example (floored at 1e-6 of the largest; at 1
    when that is not a normal number, e.g. an example with one real token). Padding rows never change the result
    for real tokens. Float32 or float64, detached.
    """
    work = x.detach()
    if work.dtype not in (torch.float32, torch.float64):
        work = work.float()
    if check_distance(distance) == "euclidean":
        return work
    if distance == "cosine":
        return work / work.norm(dim=-1, keepdim=True).clamp_min(torch.finfo(work.dtype).tiny ** 0.5)
    weights = mask.to(work.dtype)[..., None]  # [B, N, 1]
    count = weights.sum(dim=1, keepdim=True).clamp_min(1.0)
    mean = (work * weights).sum(dim=1, keepdim=True) / count
    std = (((work - mean) ** 2 * weights).sum(dim=1, keepdim=True) / count).sqrt()  # [B, 1, D]
    floor = std.amax(dim=-1, keepdim=True) * 1e-6
    # every std 0 (one real token, or all alike): their distances are 0 at any scale; dividing by a floor near the
    # dtype's smallest number would overflow (inf), and onnxruntime flushes a subnormal divisor to 0
    floor = torch.where(floor >= torch.finfo(work.dtype).tiny, floor, torch.ones_like(floor))
    return work / std.clamp_min(floor)


def reference_distance(a: torch.Tensor, b: torch.Tensor, distance: str, scale: torch.Tensor | None = None) -> float:
    """The distance between two float64 vectors ``[D]`` as its definition reads (slow, for references).

    ``scale [D]``: the per-dimension standard deviations of the standardised distance.
    """
    if distance == "cosine":
        return 1.0 - float(torch.dot(a, b) / (a.norm() * b.norm()).clamp_min(1e-300))
    if distance == "standardized":
        return float((((a - b) / scale) ** 2).sum())
    return float(((a - b) ** 2).sum())


def reference_scale(points: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """Per-dimension standard deviation ``[D]`` over the real rows of ``points [N, D]`` (float64, population)."""
    rows = points[real]
    std = rows.std(dim=0, unbiased=False)
    return std.clamp_min(max(float(std.max()), 1e-300) * 1e-6)


# --------------------------------------------------------------------------------------------------------
# k-Center-greedy-batch-m
# --------------------------------------------------------------------------------------------------------


def gram_matrix(x: torch.Tensor) -> torch.Tensor:
    """``x [B, N, D]`` -> ``x x^T [B, N, N]`` in float32 (or float64), detached; checks for NaN / inf."""
    work = x.detach()
    if work.dtype not in (torch.float32, torch.float64):
        work = work.float()
    gram = torch.bmm(work, work.transpose(1, 2))
    _check_finite(torch.diagonal(gram, dim1=1, dim2=2), "hidden states reaching coreset selection")
    return gram


def pairwise_sq_distances(x: torch.Tensor) -> torch.Tensor:
    """Squared Euclidean distances ``[B, N, N]`` from one batched Gram product, in float32 or float64.

    ``|a|^2 + |b|^2 - 2 a.b``, clamped at 0; values within rounding noise of 0 are snapped to exactly 0.
    """
    gram = gram_matrix(x)
    sq_norms = torch.diagonal(gram, dim1=1, dim2=2)
    return sq_distances_from_dots(gram, sq_norms[:, :, None] + sq_norms[:, None, :])


def sq_distances_from_dots(dots: torch.Tensor, norm_sum: torch.Tensor) -> torch.Tensor:
    """Squared distances ``|a|^2 + |b|^2 - 2 a.b`` from dot products ``dots`` and ``norm_sum = |a|^2 + |b|^2``
    (same shape): clamped at 0, and values within rounding noise of 0 snapped to exactly 0 (so that exact
    duplicates are at distance 0, as in the direct formula). The one rule every k-center path shares."""
    dist = (norm_sum - 2.0 * dots).clamp_min_(0.0)
    return dist.masked_fill_(dist <= _GRAM_RELATIVE_TOLERANCE[dots.dtype] * norm_sum, 0.0)


def kcenter_greedy(
    x: torch.Tensor,
    k: int,
    m: int | float | None = 1,
    mask: torch.Tensor | None = None,
    distance: str = "euclidean",
) -> torch.Tensor:
    """k-Center-greedy-batch-m core-set of ``k`` tokens per example, batched.

    Args:
        x: ``[B, N, D]`` token embeddings (no gradient flows through the selection).
        k: core-set size, ``1 <= k <= N``.
        m: centers per round (see :func:`resolve_m`).
        mask: bool ``[B, N]``, True for real tokens; None means all real.
        distance: one of :data:`DISTANCES` (the paper's is Euclidean); see :func:`distance_space`.

    Returns:
        LongTensor ``[B, k]`` in selection order: CLS (0) first; each round adds the ``m`` unselected real
        tokens farthest from their nearest selected center (ties: lower index first); the last round adds only
        what reaches k; padding comes only after every real token, lowest index first.

    A single round (``m`` >= k - 1) needs only the distances to CLS (one matrix-vector product per example).
    Otherwise one batched Gram product gives all distances; the rounds then only read rows of it. On CPU the rounds run
    as one compiled loop (:mod:`pyramid_bert.kcenter_kernel`, when numba is installed); elsewhere, as a loop of
    batched torch ops with no host synchronisation (:func:`kcenter_greedy_torch`). Under ``torch.compile`` the
    rounds are one custom operator of the graph (``torch.ops.pyramid_bert.kcenter_rounds``), the same code inside.
    """
    x, mask, per_round = _prepare(x, k, m, mask, distance)
    if per_round >= k - 1:  # a single round (CS-k-1): only the distances to CLS are needed
        return _kcenter_one_round(x, mask, k)
    gram = gram_matrix(x)
    if torch.compiler.is_compiling():
        return torch.ops.pyramid_bert.kcenter_rounds(gram, mask, k, per_round)
    return _rounds_on_gram(gram, mask, k, per_round)


def _rounds_on_gram(gram: torch.Tensor, mask: torch.Tensor, k: int, per_round: int) -> torch.Tensor:
    """The greedy rounds from the Gram matrix ``[B, N, N]``: numba on CPU (when allowed), torch ops elsewhere."""
    if _use_compiled_rounds(gram):
        return _kcenter_rounds_numba(gram, mask, k, per_round)
    sq_norms = torch.diagonal(gram, dim1=1, dim2=2)
    dist = sq_distances_from_dots(gram, sq_norms[:, :, None] + sq_norms[:, None, :])
    return _kcenter_rounds_torch(dist, mask, k, per_round)


@torch.library.custom_op("pyramid_bert::kcenter_rounds", mutates_args=())
def _kcenter_rounds_op(gram: torch.Tensor, mask: torch.Tensor, k: int, per_round: int) -> torch.Tensor:
    """The rounds as one operator of ``torch.compile`` graphs: :func:`_rounds_on_gram` ``-> [B, k]``.

    Inside a graph the rounds are one opaque node: no graph break, no value read on the host while tracing,
    ``k`` may be symbolic (keep ratios under dynamic shapes), and it runs the numba loop on CPU (the torch rounds
    on other devices). A loop traced into the graph instead (``while_loop``) costs more per round on CPU and
    trips over two bugs of dynamo in torch 2.13 (attribute writes after it are lost; symbolic sizes in its
    closure fail to lift), see ``benchmarks/compile_speed.md``.
    """
    return _rounds_on_gram(gram, mask, k, per_round)


@_kcenter_rounds_op.register_fake
def _kcenter_rounds_shape(gram: torch.Tensor, mask: torch.Tensor, k: int, per_round: int) -> torch.Tensor:
    return mask.new_empty((mask.shape[0], k), dtype=torch.long)


def _prepare(
    x: torch.Tensor, k: int, m: int | float | None, mask: torch.Tensor | None, distance: str
) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Checked inputs of a k-center call: ``(x in the distance's space [B, N, D], bool mask [B, N], m per round)``."""
    mask = check_selection_inputs(x, k, mask)
    per_round = resolve_m(m, k)
    return distance_space(x, mask, distance), mask, per_round


def _use_compiled_rounds(x: torch.Tensor) -> bool:
    """Whether the numba rounds run: on CPU, when numba is installed and allowed, and never inside a
    ``torch.compile`` graph (there the torch rounds are traced instead)."""
    cpu = x.device.type == "cpu" and kcenter_kernel.AVAILABLE
    return cpu and _compiled_rounds_enabled and not torch.compiler.is_compiling()


@torch.compiler.disable
def _kcenter_rounds_numba(gram: torch.Tensor, mask: torch.Tensor, k: int, per_round: int) -> torch.Tensor:
    """The greedy rounds in the compiled CPU loop; ``gram [B, N, N]`` (distance rows are formed as centers are
    chosen) -> ``[B, k]``. Kept out of ``torch.compile`` graphs: it is NumPy and numba code."""
    tolerance = _GRAM_RELATIVE_TOLERANCE[gram.dtype]
    return torch.from_numpy(kcenter_kernel.kcenter_rounds(gram.numpy(), mask.numpy(), k, per_round, tolerance))


@torch.compiler.disable
def _kcenter_rows_numba(x: torch.Tensor, mask: torch.Tensor, k: int, per_round: int) -> torch.Tensor:
    """The greedy rounds in the compiled CPU loop on the points ``x [B, N, D]`` -> ``[B, k]``."""
    tolerance = _GRAM_RELATIVE_TOLERANCE[x.dtype]
    return torch.from_numpy(kcenter_kernel.kcenter_rounds_from_points(x.numpy(), mask.numpy(), k, per_round, tolerance))


def _kcenter_one_round(x: torch.Tensor, mask: torch.Tensor, k: int) -> torch.Tensor:
    """CLS, then the ``k - 1`` real tokens farthest from CLS (ties: lower index), then padding: ``[B, k]``.

    The distances to CLS come from one ``[B, N, D] x [B, D, 1]`` product and the norms, with the rounding rules of
    :func:`pairwise_sq_distances`; no ``[B, N, N]`` matrix is formed.
    """
    work = x.detach()
    if work.dtype not in (torch.float32, torch.float64):
        work = work.float()
    sq_norms = (work * work).sum(dim=-1)  # [B, N]
    _check_finite(sq_norms, "hidden states reaching coreset selection")
    dots = torch.bmm(work, work[:, :1].transpose(1, 2)).squeeze(-1)  # [B, N]
    score = sq_distances_from_dots(dots, sq_norms + sq_norms[:, :1]).masked_fill_(~mask, -1.0)
    score[:, 0] = -math.inf
    farthest = torch.sort(score, dim=1, descending=True, stable=True).indices[:, : k - 1]
    cls = torch.zeros(score.shape[0], 1, dtype=torch.long, device=score.device)
    return torch.cat([cls, farthest], dim=1)


def kcenter_greedy_torch(
    x: torch.Tensor,
    k: int,
    m: int | float | None = 1,
    mask: torch.Tensor | None = None,
    distance: str = "euclidean",
) -> torch.Tensor:
    """:func:`kcenter_greedy` with its rounds as batched torch ops on any device (the CUDA path)."""
    x, mask, per_round = _prepare(x, k, m, mask, distance)
    return _kcenter_rounds_torch(pairwise_sq_distances(x), mask, k, per_round)


def kcenter_greedy_rows(
    x: torch.Tensor,
    k: int,
    m: int | float | None = 1,
    mask: torch.Tensor | None = None,
    distance: str = "euclidean",
) -> torch.Tensor:
    """:func:`kcenter_greedy` without the ``[B, N, N]`` distance matrix: ``[B, k]``, the same selection order.

    Each round forms only the distance rows of its new centers (``[B, m, N]``, one batched product with the
    tokens), so memory is ``O(B N (D + m))`` and work ``O(B k N D)`` instead of ``O(B N^2 D)``: the choice for
    long inputs (LRA's input layer, N ~ 1000) where few centers are kept. One round (``m >= k - 1``) reads only
    the distances to CLS. On CPU the rounds run compiled (one matrix-vector product per center), elsewhere as
    batched torch ops. Rounding follows :func:`pairwise_sq_distances` (ties within float rounding may go either way
    against the Gram paths in float32; in float64 all paths agree with the reference).
    """
    x, mask, per_round = _prepare(x, k, m, mask, distance)
    if per_round >= k - 1:
        return _kcenter_one_round(x, mask, k)
    sq_norms = (x * x).sum(dim=-1)  # [B, N]
    _check_finite(sq_norms, "hidden states reaching coreset selection")
    if _use_compiled_rounds(x):
        return _kcenter_rows_numba(x, mask, k, per_round)

    def rows(centers: torch.Tensor) -> torch.Tensor:  # [B, c] -> squared distances [B, c, N]
        points = x.gather(1, centers[:, :, None].expand(-1, -1, x.shape[-1]))  # [B, c, D]
        norm_sum = sq_norms.gather(1, centers)[:, :, None] + sq_norms[:, None, :]
        return sq_distances_from_dots(torch.bmm(points, x.transpose(1, 2)), norm_sum)

    return _kcenter_rounds(rows, mask, k, per_round)


def _kcenter_rounds_torch(dist: torch.Tensor, mask: torch.Tensor, k: int, per_round: int) -> torch.Tensor:
    """The greedy rounds on ``dist [B, N, N]`` and ``mask [B, N]`` -> selection order ``[B, k]``."""
    tokens = dist.shape[1]
    return _kcenter_rounds(
        lambda centers: dist.gather(1, centers[:, :, None].expand(-1, -1, tokens)), mask, k, per_round
    )


def _kcenter_rounds(
    rows: Callable[[torch.Tensor], torch.Tensor], mask: torch.Tensor, k: int, per_round: int
) -> torch.Tensor:
    """The greedy rounds as batched torch ops: ``rows(centers [B, c]) -> [B, c, N]`` gives the squared distances
    of the chosen centers to every token; ``mask [B, N]``. Returns the selection order ``[B, k]``."""
    batch, tokens = mask.shape
    # score: distance to the nearest selected center for unselected real tokens (>= 0),
    # -1 for padding (chosen only after every real token), -inf once selected.
    cls = torch.zeros(batch, 1, dtype=torch.long, device=mask.device)
    score = rows(cls)[:, 0, :].clone()
    score.masked_fill_(~mask, -1.0)
    score[:, 0] = -math.inf
    chosen = [cls]
    count = 1
    while count < k:
        take = min(per_round, k - count)
        if take == 1:
            new = score.argmax(dim=1, keepdim=True)  # first maximum: lower index wins ties
        else:
            new = torch.sort(score, dim=1, descending=True, stable=True).indices[:, :take]
        chosen.append(new)
        count += take
        if count == k:
            break
        score.scatter_(1, new, -math.inf)
        torch.minimum(score, rows(new).amin(dim=1), out=score)
    return torch.cat(chosen, dim=1)


def kcenter_greedy_reference(
    x: torch.Tensor,
    k: int,
    m: int | float | None = 1,
    mask: torch.Tensor | None = None,
    distance: str = "euclidean",
) -> torch.Tensor:
    """Slow, obviously correct k-Center-greedy-batch-m: one example at a time, float64, each distance computed
    from its definition (:func:`reference_distance`)."""
    mask = check_selection_inputs(x, k, mask)
    per_round = resolve_m(m, k)
    check_distance(distance)
    result = []
    for points, real in zip(x.detach().double().cpu(), mask.cpu(), strict=True):
        tokens = points.shape[0]
        scale = reference_scale(points, real)

        def dist(i: int, j: int, points=points, scale=scale) -> float:
            return reference_distance(points[i], points[j], distance, scale)

        selected = [0]
        nearest = [dist(j, 0) for j in range(tokens)]
        while len(selected) < k:
            take = min(per_round, k - len(selected))
            unselected = [j for j in range(tokens) if j not in selected]
            real_left = sorted((j for j in unselected if real[j]), key=lambda j: (-nearest[j], j))
            padding_left = [j for j in unselected if not real[j]]
            new = (real_left + padding_left)[:take]
            selected.extend(new)
            for center in new:
                for j in range(tokens):
                    nearest[j] = min(nearest[j], dist(j, center))
        result.append(selected)
    return torch.tensor(result, dtype=torch.long, device=x.device)


# --------------------------------------------------------------------------------------------------------
# Baselines
# --------------------------------------------------------------------------------------------------------


def first_k(mask: torch.Tensor, k: int) -> torch.Tensor:
    """First-k-select: the first ``k`` real tokens in order (CLS first), then padding. ``mask [B, N]`` -> ``[B, k]``."""
    batch, tokens = mask.shape
    check_k(k, tokens)
    mask = _bool_mask(mask, batch, tokens, mask.device)
    return torch.sort((~mask).to(torch.uint8), dim=1, stable=True).indices[:, :k]


def random_select(mask: torch.Tensor, k: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Random-select: CLS, then real tokens in a random order, then padding. ``mask [B, N]`` -> ``[B, k]``.

    ``generator`` (a ``torch.Generator`` on the mask's device) makes the choice reproducible.
    """
    batch, tokens = mask.shape
    check_k(k, tokens)
    return random_order(mask, k, torch.rand(batch, tokens, generator=generator, device=mask.device))


def random_order(mask: torch.Tensor, k: int, draws: torch.Tensor) -> torch.Tensor:
    """:func:`random_select` given its uniform draws ``draws [B, N]`` in [0, 1) (drawn ahead, e.g. outside a
    ``torch.compile`` graph): CLS, then real tokens by decreasing draw, then padding. -> ``[B, k]``."""
    batch, tokens = mask.shape
    check_k(k, tokens)
    mask = _bool_mask(mask, batch, tokens, mask.device)
    score = draws.masked_fill(~mask, -1.0)
    score[:, 0] = 2.0
    return torch.sort(score, dim=1, descending=True, stable=True).indices[:, :k]


def attention_significance(probs: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """PoWER-BERT significance: attention probability each key receives, summed over heads and real queries.

    ``probs [B, H, Nq, Nk]`` -> ``[B, Nk]``.
    """
    if probs.dim() != 4:
        raise ConfigError(f"probs must be [batch, heads, queries, keys], got shape {tuple(probs.shape)}")
    probs = probs.detach().float()
    if mask is not None:
        probs = probs * mask[:, None, :, None].to(probs.dtype)
    return probs.sum(dim=(1, 2))


def attention_select(significance: torch.Tensor, k: int, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Attention-select: CLS, then the real tokens of highest significance (ties: lower index), then padding.

    ``significance [B, N]`` (see :func:`attention_significance`) -> ``[B, k]``.
    """
    batch, tokens = significance.shape
    check_k(k, tokens)
    mask = _bool_mask(mask, batch, tokens, significance.device)
    _check_finite(significance, "attention significance scores")
    score = significance.float().masked_fill(~mask, -math.inf)
    score[:, 0] = math.inf
    return torch.sort(score, dim=1, descending=True, stable=True).indices[:, :k]


def average_pool(x: torch.Tensor, mask: torch.Tensor | None, window: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Average-pool: strided mean pooling (window = stride) over real tokens, CLS kept apart.

    ``x [B, N, D]``, ``mask [B, N]`` -> ``(pooled [B, 1 + ceil((N - 1) / window), D], pooled_mask)``. A window
    averages only its real tokens; a window with none is padding (zeros, mask False). Window 1 is the identity.
    """
    if isinstance(window, bool) or not isinstance(window, int) or window < 1:
        raise ConfigError(f"window must be an int >= 1, got {window!r}")
    batch, tokens, dim = x.shape
    mask = _bool_mask(mask, batch, tokens, x.device)
    if window == 1:
        return x, mask
    rest, rest_mask = x[:, 1:], mask[:, 1:]
    groups = math.ceil((tokens - 1) / window)
    pad = groups * window - (tokens - 1)
    # padded even when pad is 0: a branch on it would fix the exported graph (torch.export) to the example's case
    rest = torch.nn.functional.pad(rest, (0, 0, 0, pad))
    weights = torch.nn.functional.pad(rest_mask.to(x.dtype), (0, pad))
    sums = (rest * weights[..., None]).view(batch, groups, window, dim).sum(dim=2)
    counts = weights.view(batch, groups, window).sum(dim=2)
    pooled = sums / counts.clamp_min(1.0)[..., None]
    pooled_x = torch.cat([x[:, :1], pooled], dim=1)
    pooled_mask = torch.cat([mask[:, :1], counts > 0], dim=1)
    return pooled_x, pooled_mask


def average_pool_reference(
    x: torch.Tensor, mask: torch.Tensor | None, window: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Slow reference of :func:`average_pool`: explicit loops over examples and windows (window 1: identity)."""
    batch, tokens, dim = x.shape
    mask = _bool_mask(mask, batch, tokens, x.device)
    if window == 1:
        return x, mask
    outputs, masks = [], []
    for b in range(batch):
        rows, flags = [x[b, 0]], [True]
        for start in range(1, tokens, window):
            members = [j for j in range(start, min(start + window, tokens)) if mask[b, j]]
            if members:
                rows.append(torch.stack([x[b, j] for j in members]).mean(dim=0))
            else:
                rows.append(torch.zeros(dim, dtype=x.dtype, device=x.device))
            flags.append(bool(members))
        outputs.append(torch.stack(rows))
        masks.append(torch.tensor(flags, device=x.device))
    return torch.stack(outputs), torch.stack(masks)


# --------------------------------------------------------------------------------------------------------
# Gathering
# --------------------------------------------------------------------------------------------------------


def gather_tokens(
    x: torch.Tensor, mask: torch.Tensor, indices: torch.Tensor, counts: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Keep the tokens at ``indices`` in their original order.

    ``x [B, N, D]``, ``mask [B, N]``, ``indices [B, k]`` (selection order) -> ``(x [B, k, D], mask [B, k],
    sorted indices [B, k])``. ``counts [B]`` (optional): row b keeps only the first ``counts[b]`` indices of its
    selection order; the other slots are still gathered but marked padding in the returned mask.
    Gradients flow to the kept embeddings (not through the choice of indices).
    """
    ordered, permutation = torch.sort(indices, dim=1)
    batch, tokens, dim = x.shape
    rows = (ordered + torch.arange(batch, device=x.device)[:, None] * tokens).reshape(-1)
    kept = x.reshape(batch * tokens, dim).index_select(0, rows).view(batch, -1, dim)  # faster than gather on CPU
    kept_mask = mask.gather(1, ordered)
    if counts is not None:
        ranked = torch.arange(indices.shape[1], device=x.device)[None, :] < counts[:, None]  # by selection rank
        kept_mask = kept_mask & ranked.gather(1, permutation)
    return kept, kept_mask, ordered


def ratio_counts(real_lengths: torch.Tensor, current: torch.Tensor, ratio: float) -> torch.Tensor:
    """Tokens each example keeps at a layer of keep ratio ``ratio``: ``ceil(ratio * n_b)``, in [1, current_b].

    ``real_lengths [B]``: real tokens of each example at the encoder's input; ``current [B]``: real tokens it has
    now. Same rounding as :func:`pyramid_bert.schedule.ratio_keep`.
    """
    wanted = torch.ceil(real_lengths.to(torch.float64) * ratio - 1e-9).to(torch.long)
    return torch.minimum(wanted.clamp_min(1), current)
