"""Sequence-length schedules (the paper's Eq. 5 and Table 9) and the FLOPs / attention-space cost model.

Pure Python, no tensors and no I/O: a schedule is a list of ints, one kept length per encoder layer
(layers 1..L); the input layer (j = 0) always has the full length N.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from pyramid_bert.errors import ConfigError

POSITIONS = ("middle", "end")

#: The 30 (prune_upto, p) pairs of the paper's Table 9, in the table's order. The pair (3, 0.25) appears
#: twice in the paper's table and therefore twice here; use :func:`unique_grid` for a sweep.
PAPER_GRID: tuple[tuple[int, float], ...] = (
    (2, 0.15), (3, 0.15), (4, 0.15), (3, 0.10), (4, 0.10), (3, 0.20), (4, 0.20), (3, 0.17), (3, 0.18),
    (3, 0.19), (3, 0.22), (3, 0.25), (1, 0.25), (2, 0.25), (3, 0.25), (5, 0.25), (9, 0.25), (11, 0.25),
    (1, 0.50), (2, 0.50), (3, 0.50), (5, 0.50), (9, 0.50), (11, 0.50), (1, 0.75), (2, 0.75), (3, 0.75),
    (7, 0.75), (9, 0.75), (11, 0.75),
)  # fmt: skip

# Guards floor() against binary rounding, e.g. 100 * 0.29 == 28.999999999999996.
_FLOOR_TOLERANCE = 1e-9


def unique_grid(grid: Sequence[tuple[int, float]] = PAPER_GRID) -> list[tuple[int, float]]:
    """The grid without repeated pairs, first occurrence kept, order preserved."""
    return list(dict.fromkeys(grid))


def sequence_lengths(n: int, num_layers: int, p: float, prune_upto: int) -> list[int]:
    """Eq. 5 with floor: ``l_j = floor(n * p ** (min(j, prune_upto) / prune_upto))`` for j = 1..num_layers.

    The paper prints a ceiling, but every row of its Table 9 is the floor. Lengths never drop below 1.
    ``prune_upto`` may exceed ``num_layers`` (the decay is then cut off by the last layer), so the paper's
    12-layer grid also applies to shallower models.

    Example: ``sequence_lengths(128, 12, 0.25, 3) == [80, 50, 32, 32, ..., 32]``.
    """
    _check_positive_int("n", n)
    _check_positive_int("num_layers", num_layers)
    _check_positive_int("prune_upto", prune_upto)
    if not (isinstance(p, (int, float)) and 0.0 < p <= 1.0):
        raise ConfigError(f"p must be a pruning ratio in (0, 1], got {p!r}")
    lengths = []
    for j in range(1, num_layers + 1):
        exact = n * p ** (min(j, prune_upto) / prune_upto)
        lengths.append(max(1, math.floor(exact + _FLOOR_TOLERANCE)))
    return lengths


def sequence_ratios(num_layers: int, p: float, prune_upto: int) -> list[float]:
    """Eq. 5 as keep ratios: ``r_j = p ** (min(j, prune_upto) / prune_upto)`` for j = 1..num_layers (no floor).

    A keep-ratio schedule keeps ``ceil(r_j * n)`` tokens at layer j, where n is each example's own number of real
    tokens (see :func:`ratio_lengths`), so a short sentence is pruned as hard as a long one.

    Example: ``sequence_ratios(6, 0.25, 2) == [0.5, 0.25, 0.25, 0.25, 0.25, 0.25]``.
    """
    _check_positive_int("num_layers", num_layers)
    _check_positive_int("prune_upto", prune_upto)
    if not (isinstance(p, (int, float)) and not isinstance(p, bool) and 0.0 < p <= 1.0):
        raise ConfigError(f"p must be a pruning ratio in (0, 1], got {p!r}")
    return [float(p ** (min(j, prune_upto) / prune_upto)) for j in range(1, num_layers + 1)]


def validate_ratios(ratios: Sequence[float], num_layers: int) -> list[float]:
    """Check a keep-ratio schedule: one float in (0, 1] per layer, non-increasing."""
    ratios = list(ratios)
    if len(ratios) != num_layers:
        raise ConfigError(
            f"keep_ratios must have one entry per encoder layer: got {len(ratios)} for a model with {num_layers} layers"
        )
    for j, ratio in enumerate(ratios):
        if isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or not 0.0 < ratio <= 1.0:
            raise ConfigError(f"keep_ratios[{j}] must be a number in (0, 1], got {ratio!r}")
        if j and ratio > ratios[j - 1]:
            raise ConfigError(
                f"keep_ratios must not increase: keep_ratios[{j}] = {ratio} > keep_ratios[{j - 1}] = {ratios[j - 1]}"
            )
    return [float(ratio) for ratio in ratios]


def ratio_keep(ratio: float, real_tokens: int) -> int:
    """Tokens a layer of ratio ``ratio`` keeps of an example with ``real_tokens`` real tokens: ``ceil(r * n)``.

    At least 1 (CLS), at most ``real_tokens``; a tolerance guards ceil() against binary rounding
    (``0.3 * 10 == 3.0000000000000004`` keeps 3, not 4).
    """
    return min(real_tokens, max(1, math.ceil(ratio * real_tokens - _FLOOR_TOLERANCE)))


def ratio_lengths(n: int, ratios: Sequence[float]) -> list[int]:
    """The per-layer widths of a keep-ratio schedule for an input of ``n`` real tokens (non-increasing)."""
    _check_positive_int("n", n)
    lengths, previous = [], n
    for ratio in ratios:
        previous = min(previous, ratio_keep(ratio, n))
        lengths.append(previous)
    return lengths


def pool_lengths(n: int, pool_windows: Sequence[int]) -> list[int]:
    """Kept lengths after strided mean pooling with ``window == stride``, one window per layer (1 = none).

    CLS is kept apart, so a layer with window w maps a length l to ``1 + ceil((l - 1) / w)``.
    """
    _check_positive_int("n", n)
    lengths, current = [], n
    for layer, window in enumerate(pool_windows, start=1):
        if not isinstance(window, int) or window < 1:
            raise ConfigError(f"pool_windows[{layer - 1}] must be an int >= 1 (1 = no pooling), got {window!r}")
        current = 1 + math.ceil((current - 1) / window)
        lengths.append(current)
    return lengths


def constant_lengths(k: int, num_layers: int) -> list[int]:
    """``[k] * num_layers``: the schedule of Input-first-k (one truncation of the input to k tokens)."""
    _check_positive_int("k", k)
    _check_positive_int("num_layers", num_layers)
    return [k] * num_layers


def validate_lengths(lengths: Sequence[int], num_layers: int, n: int | None = None) -> list[int]:
    """Check a schedule: one positive, non-increasing int per layer (and <= n when n is given)."""
    lengths = list(lengths)
    if len(lengths) != num_layers:
        raise ConfigError(
            f"lengths must have one entry per encoder layer: got {len(lengths)} for a model with {num_layers} layers"
        )
    for j, length in enumerate(lengths):
        if isinstance(length, bool) or not isinstance(length, int) or length < 1:
            raise ConfigError(f"lengths[{j}] must be an int >= 1, got {length!r}")
        if n is not None and length > n:
            raise ConfigError(f"lengths[{j}] = {length} exceeds the input length n = {n}")
        if j and length > lengths[j - 1]:
            raise ConfigError(
                f"lengths must not increase: lengths[{j}] = {length} > lengths[{j - 1}] = {lengths[j - 1]}"
            )
    return lengths


def layer_token_counts(
    n: int, lengths: Sequence[int], *, position: str = "middle", truncate_input: bool = False
) -> list[tuple[int, int]]:
    """Per encoder layer, (tokens seen by attention, tokens seen by the FFN).

    - ``middle``: layer j attends over l_(j-1) tokens and its FFN runs on l_j (selection between them);
    - ``end``: layer j runs entirely on l_(j-1) tokens and hands l_j to the next layer;
    - ``truncate_input`` (Input-first-k): the input itself is cut to l_1, so layer 1 attends over l_1.
    """
    if position not in POSITIONS:
        raise ConfigError(f"position must be one of {POSITIONS}, got {position!r}")
    counts, previous = [], (lengths[0] if truncate_input and lengths else n)
    for length in lengths:
        counts.append((previous, length) if position == "middle" else (previous, previous))
        previous = length
    return counts


def layer_flops(
    attention_tokens: int, ffn_tokens: int, hidden: int, intermediate: int, *, ffn_matrices: int = 2,
    relative_positions: int = 0,
) -> int:  # fmt: skip
    """Multiply-add FLOPs (x2) of one encoder layer (BERT's by default; the other families by the two keywords).

    Attention sublayer on ``a`` tokens: Q, K, V and output projections ``4 * 2 a H^2``, scores and weighted sum
    ``2 * 2 a^2 H``, and, for relative-position attention (DeBERTa's c2p and p2c), each token's query or key
    scored against ``relative_positions`` position vectors: ``2 a R H``; FFN on ``b`` tokens: ``ffn_matrices``
    ``H x I`` products, ``2 * ffn_matrices * b H I`` (2 for BERT's up and down projections, 3 for a gated FFN such
    as ModernBERT's). Norms, biases, softmax and per-batch constants (DeBERTa's projections of its relative
    embeddings) are ignored.
    """
    a, b = attention_tokens, ffn_tokens
    attention = 8 * a * hidden * hidden + 4 * a * a * hidden + 2 * a * relative_positions * hidden
    return attention + 2 * ffn_matrices * b * hidden * intermediate


def encoder_flops(
    n: int,
    lengths: Sequence[int] | None,
    *,
    hidden: int,
    intermediate: int,
    num_layers: int,
    position: str = "middle",
    truncate_input: bool = False,
    ffn_matrices: int = 2,
    relative_positions: int = 0,
) -> int:
    """FLOPs of the whole encoder; ``lengths=None`` means the dense model (n tokens everywhere). ``ffn_matrices``,
    ``relative_positions``: see :func:`layer_flops` (``pyramid_bert.patch.families.flops_geometry`` gives a
    model's)."""
    if lengths is None:
        lengths = [n] * num_layers
    lengths = validate_lengths(lengths, num_layers)
    counts = layer_token_counts(n, lengths, position=position, truncate_input=truncate_input)
    family = dict(ffn_matrices=ffn_matrices, relative_positions=relative_positions)
    return sum(layer_flops(a, b, hidden, intermediate, **family) for a, b in counts)


def predicted_speedup(
    n: int,
    lengths: Sequence[int],
    *,
    hidden: int,
    intermediate: int,
    num_layers: int,
    position: str = "middle",
    truncate_input: bool = False,
    ffn_matrices: int = 2,
    relative_positions: int = 0,
) -> float:
    """FLOPs(dense) / FLOPs(pyramid) of the encoder: the speedup the cost model predicts."""
    kwargs = dict(hidden=hidden, intermediate=intermediate, num_layers=num_layers, position=position,
                  ffn_matrices=ffn_matrices, relative_positions=relative_positions)  # fmt: skip
    dense = encoder_flops(n, None, **kwargs)
    return dense / encoder_flops(n, lengths, truncate_input=truncate_input, **kwargs)


def batch_layer_lengths(
    width: int, longest: int, *, lengths: Sequence[int] | None = None, ratios: Sequence[float] | None = None
) -> list[int] | None:
    """Tensor widths after each layer for one batch: ``width`` tokens in (padding included), the longest example
    having ``longest`` real tokens. Fixed ``lengths`` keep ``min(l_j, tokens left)``; keep ``ratios`` keep
    ``ceil(r_j * longest)`` (the widest example of the batch sets the width); neither: dense (None).
    """
    if lengths is not None and ratios is not None:
        raise ConfigError("give lengths or ratios, not both")
    if ratios is not None:
        return [min(width, length) for length in ratio_lengths(longest, ratios)]
    if lengths is None:
        return None
    widths, previous = [], width
    for length in lengths:
        previous = min(previous, length)
        widths.append(previous)
    return widths


def batches_flops(
    batches: Sequence[tuple[int, int, int]],
    *,
    lengths: Sequence[int] | None = None,
    ratios: Sequence[float] | None = None,
    hidden: int,
    intermediate: int,
    num_layers: int,
    position: str = "middle",
    truncate_input: bool = False,
    ffn_matrices: int = 2,
    relative_positions: int = 0,
) -> int:
    """Encoder FLOPs of a whole split, batch by batch: ``batches`` holds ``(batch_size, width, longest)`` per batch
    (``width``: the tensor's token count, padding included; ``longest``: real tokens of its longest example).
    ``lengths`` / ``ratios`` as in :func:`batch_layer_lengths`; neither gives the dense model's FLOPs.
    """
    total = 0
    for size, width, longest in batches:
        layer_lengths = batch_layer_lengths(width, longest, lengths=lengths, ratios=ratios)
        flops = encoder_flops(
            width, layer_lengths, hidden=hidden, intermediate=intermediate, num_layers=num_layers,
            position=position, truncate_input=truncate_input, ffn_matrices=ffn_matrices,
            relative_positions=relative_positions,
        )  # fmt: skip
        total += size * flops
    return total


def attention_space_reduction(
    n: int,
    lengths: Sequence[int],
    *,
    exact: bool = False,
    position: str = "middle",
    truncate_input: bool = False,
) -> float:
    """The share of attention-matrix entries saved over the L encoder layers, against the dense model.

    - ``exact=False`` (the paper's formula, Appendix C): ``1 - sum_j l_j^2 / (L * n^2)``, as if layer j's
      attention ran over the l_j tokens it keeps.
    - ``exact=True``: over the tokens each layer's attention really sees (:func:`layer_token_counts`):
      ``1 - sum_j a_j^2 / (L * n^2)`` with a_1 = n and a_j = l_(j-1). This holds for both positions: with
      selection in the "middle" layer j attends before it selects, and at the "end" it selects after its
      FFN, so in both cases the cut first shrinks the next layer's attention. Input-first-k
      (``truncate_input``) cuts before layer 1, so a_1 = l_1 and both formulas agree.

    Example: ``lengths = [32] * 12`` (prune_upto 1, p 0.25), n = 128: the paper's 93.75%, exact 85.94%.
    """
    _check_positive_int("n", n)
    if not lengths:
        raise ConfigError("lengths must not be empty")
    if exact:
        attended = [a for a, _ in layer_token_counts(n, lengths, position=position, truncate_input=truncate_input)]
    else:
        attended = list(lengths)
    return 1.0 - sum(a * a for a in attended) / (len(attended) * n * n)


def _check_positive_int(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{name} must be an int >= 1, got {value!r}")
