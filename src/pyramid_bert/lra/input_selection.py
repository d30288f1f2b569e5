"""Token selection once, at the input layer: keep ``k`` of the ``N`` embedded tokens before the first encoder.

Methods (the LRA columns of the paper's Table 4): ``"dense"`` (no pruning), ``"first_k"``, ``"random"`` and
``"coreset"`` (k-center greedy on the embedding output; ``m=1`` is the paper's Coreset-select-opt on LRA,
``m=None`` its CS-k-1; both without forming the ``N x N`` distance matrix: one round reads only the distances to
CLS, smaller ``m`` forms the distance rows of each round's centers, :func:`pyramid_bert.selection.kcenter_greedy_rows`).
Position 0 (CLS) is always kept; kept tokens stay in their original order and the
attention mask shrinks with them. Built on :mod:`pyramid_bert.selection`.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from pyramid_bert.errors import ConfigError
from pyramid_bert.selection import first_k, gather_tokens, kcenter_greedy_rows, random_select, resolve_m

INPUT_METHODS = ("dense", "first_k", "random", "coreset")


def keep_for_space_reduction(n: int, reduction: float, *, multiple: int = 1) -> int:
    """Tokens to keep so that attention space ``k^2 / n^2`` shrinks by at least ``reduction``.

    ``k = floor(n * sqrt(1 - reduction))``, then rounded down to a multiple of ``multiple`` (Big Bird's block
    size), at least ``multiple`` and at least 1. Example: ``n=785, reduction=0.7`` -> 429 (70.1 %).
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ConfigError(f"n must be an int >= 1, got {n!r}")
    if not 0.0 <= reduction < 1.0:
        raise ConfigError(f"reduction must be in [0, 1), got {reduction!r}")
    if isinstance(multiple, bool) or not isinstance(multiple, int) or multiple < 1:
        raise ConfigError(f"multiple must be an int >= 1, got {multiple!r}")
    keep = math.floor(n * math.sqrt(1.0 - reduction) + 1e-9)
    return max(1, min(n, max(multiple, keep // multiple * multiple)))


def select_input_tokens(
    hidden: torch.Tensor,
    mask: torch.Tensor,
    keep: int,
    method: str,
    *,
    m: int | float | None = 1,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Keep ``keep`` tokens of every example.

    Args:
        hidden: ``[B, N, D]`` embedding output (position 0 is CLS).
        mask: bool ``[B, N]``, True for real tokens.
        keep: ``k``, ``1 <= k <= N``.
        method: one of :data:`INPUT_METHODS` other than "dense".
        m: centers per k-center round (coreset only; see :func:`pyramid_bert.selection.resolve_m`).
        generator: random source of ``"random"`` (its device is where the draw happens).

    Returns:
        ``(hidden [B, k, D], mask [B, k], positions [B, k])``, positions ascending, CLS first.
    """
    if method == "first_k":
        indices = first_k(mask, keep)
    elif method == "random":
        # a CPU generator draws on the CPU; the indices then move to the tokens' device
        on_generator_device = mask if generator is None else mask.to(generator.device)
        indices = random_select(on_generator_device, keep, generator=generator)
    elif method == "coreset":
        indices = kcenter_greedy_rows(hidden, keep, m=m, mask=mask)  # never the [B, N, N] distances
    else:
        raise ConfigError(f"method must be one of {', '.join(INPUT_METHODS[1:])} to select tokens, got {method!r}")
    return gather_tokens(hidden, mask, indices.to(hidden.device))


def pad_to_multiple(hidden: torch.Tensor, mask: torch.Tensor, multiple: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Append masked zero tokens until the length is a multiple of ``multiple``.

    ``hidden [B, k, D]``, ``mask [B, k]`` -> ``([B, k', D], [B, k'])`` with ``k' = ceil(k / multiple) * multiple``;
    the new slots have mask False, so attention never reads them (Big Bird's block-sparse attention needs
    lengths that are multiples of its block size).
    """
    pad = -hidden.shape[1] % multiple
    if pad == 0:
        return hidden, mask
    hidden = nn.functional.pad(hidden, (0, 0, 0, pad))
    mask = nn.functional.pad(mask, (0, pad), value=False)
    return hidden, mask


class InputTokenSelector(nn.Module):
    """Keeps ``keep`` of the embedded tokens with ``method`` (no parameters).

    ``forward(hidden [B, N, D], mask bool [B, N]) -> (hidden [B, k, D], mask [B, k])``; "dense" (or
    ``keep`` None or ``keep >= N``) returns its inputs unchanged.

    Random selection draws from a generator seeded with ``seed``: in training it advances from batch to batch;
    in evaluation it restarts from ``seed`` on every call, so predictions are reproducible.
    """

    def __init__(self, method: str = "dense", keep: int | None = None, *, m: int | float | None = 1, seed: int = 0):
        super().__init__()
        if method not in INPUT_METHODS:
            raise ConfigError(f"method must be one of {', '.join(INPUT_METHODS)}, got {method!r}")
        if method != "dense" and (isinstance(keep, bool) or not isinstance(keep, int) or keep < 1):
            raise ConfigError(f"keep must be an int >= 1 for method {method!r}, got {keep!r}")
        if method == "coreset":
            resolve_m(m, keep or 1)  # validates m
        self.method = method
        self.keep = keep
        self.m = m
        self.seed = seed
        self._train_generator = torch.Generator().manual_seed(seed)

    def extra_repr(self) -> str:
        return f"method={self.method!r}, keep={self.keep}, m={self.m}, seed={self.seed}"

    def forward(self, hidden: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.method == "dense" or self.keep is None or self.keep >= hidden.shape[1]:
            return hidden, mask
        generator = None
        if self.method == "random":
            generator = self._train_generator if self.training else torch.Generator().manual_seed(self.seed)
        kept, kept_mask, _ = select_input_tokens(hidden, mask, self.keep, self.method, m=self.m, generator=generator)
        return kept, kept_mask
