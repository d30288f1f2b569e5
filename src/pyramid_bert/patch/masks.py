"""Attention masks of a pyramid encoder: the key-padding mask ``[B, n]`` it carries from layer to layer, read from
the model's own mask, and the per-layer mask it hands each layer, in the format the model's attention expects.

Conventions: ``key_mask [B, n]`` is True for real tokens; a mask's *kind* is ``"bool"`` (SDPA: True = attend),
``"float"`` (eager: additive, 0 or the dtype's minimum) or None (the model gave no mask: nothing is padded).
"""

from __future__ import annotations

import torch


def key_padding_mask(
    attention_mask: torch.Tensor | None, batch: int, tokens: int, device: torch.device
) -> tuple[torch.Tensor, str | None]:
    """Key-padding mask ``[B, N]`` (True = real) from the model's mask, and that mask's kind.

    The model hands the encoder None (nothing padded), a 2-D ``[B, N]`` mask (DeBERTa), a bool ``[B, 1, N, N]``
    (SDPA) or an additive float ``[B, 1, N, N]`` (eager); the query row of CLS says which keys are real.
    """
    if attention_mask is None:
        return torch.ones(batch, tokens, dtype=torch.bool, device=device), None
    if attention_mask.dim() == 2:
        return attention_mask.to(torch.bool), "bool"
    row = attention_mask[:, 0, 0, :]
    if attention_mask.dtype == torch.bool:
        return row, "bool"
    return row == 0, "float"


def layer_attention_mask(key_mask: torch.Tensor, kind: str | None, dtype: torch.dtype) -> torch.Tensor:
    """``[B, n]`` -> ``[B, 1, 1, n]`` in the model's mask format (``kind`` None counts as bool)."""
    if kind != "float":
        return key_mask[:, None, None, :]
    additive = torch.zeros(key_mask.shape, dtype=dtype, device=key_mask.device)
    return additive.masked_fill_(~key_mask, torch.finfo(dtype).min)[:, None, None, :]


def as_additive(mask: torch.Tensor | None, dtype: torch.dtype) -> torch.Tensor | None:
    """A bool mask (True = attend) or an additive float mask as an additive float mask of ``dtype``."""
    if mask is None or mask.dtype != torch.bool:
        return mask
    return torch.zeros(mask.shape, dtype=dtype, device=mask.device).masked_fill_(~mask, torch.finfo(dtype).min)
