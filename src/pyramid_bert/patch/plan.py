"""The plan of one pyramid forward: what each layer keeps of a batch, decided once before the encoder runs.

A selecting layer needs two things that depend on the batch: its output width (a shape, so a host-side int) and,
with a keep-ratio schedule, how many tokens each example keeps. :func:`plan_batch` computes both for every layer
from the key-padding mask alone, so no layer reads a tensor value on the host:

- fixed lengths: layer j keeps ``min(l_j, n)`` tokens of its ``n``; the widths follow from the input's shape;
- keep ratios: example b keeps ``ceil(r_j * n_b)`` tokens (never more than it had), ``n_b`` its real input tokens;
  the batch is as wide as its widest example needs. Without a mask (nothing padded) every ``n_b`` is the input's
  width and the widths follow from the shape; with a mask they take one host read for the whole batch (eager), or,
  under ``torch.compile``, the widths are bounded from the shape (``ceil(r_j * N)``, equal to the eager widths
  whenever the batch is padded to its longest example) and the slots beyond an example's count are padding;
- Average-pool: ``1 + ceil((n - 1) / w_j)`` tokens; Input-first-k truncates the input once and layers keep all;
- keep thresholds: the counts depend on the layer's attention, so each selecting layer decides them itself
  (:func:`pyramid_bert.patch.hf.reduce_tokens`); the plan only says which layers select (threshold > 0) and gives
  each the bound on its width (:func:`pyramid_bert.thresholds.threshold_width_bound`).
- energy merging (:mod:`pyramid_bert.energy`) also needs its number of merge steps per layer, a host int: from the
  widths, or with per-example counts the most any example length up to the batch's width needs (no read either way).

The same one host read (eager, a mask given) also says whether any token is padding: layers of an unpadded batch
get no attention mask (faster attention kernels). Under ``torch.compile`` nothing is read: a given mask is used.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import torch

from pyramid_bert.energy import merge_steps, ratio_merge_steps
from pyramid_bert.schedule import ratio_keep
from pyramid_bert.selection import ratio_counts
from pyramid_bert.spec import PyramidSettings
from pyramid_bert.thresholds import threshold_width_bound


@dataclass(frozen=True)
class LayerPlan:
    """What one layer does to the batch: ``width`` tokens leave it (an int; symbolic under ``torch.compile``);
    ``keeps_all``: it keeps every token (no selection); ``counts [B]``: tokens each example keeps (keep ratios with a
    mask), or None when every example keeps ``width``; ``merge_steps``: energy's merge steps (0 for other methods)."""

    width: int
    keeps_all: bool
    counts: torch.Tensor | None = None
    merge_steps: int = 0


@dataclass(frozen=True)
class BatchPlan:
    """The plan of one forward: one :class:`LayerPlan` per layer, and whether any key of the input is padding."""

    layers: list[LayerPlan]
    padded: bool


def plan_batch(settings: PyramidSettings, key_mask: torch.Tensor, masked: bool, num_layers: int) -> BatchPlan:
    """The plan of a batch whose key-padding mask (after Input-first-k's truncation) is ``key_mask [B, N]``.

    ``masked``: whether the model gave an attention mask (False: every token is real, and nothing is read).
    """
    plan = _plan_widths(settings, key_mask, masked, num_layers)
    if settings.method != "energy":
        return plan
    if settings.keep_ratios is not None and masked:
        steps = ratio_merge_steps(tuple(settings.keep_ratios), key_mask.shape[1])
    else:
        widths = [layer.width for layer in plan.layers]
        steps = [
            merge_steps(previous, width)
            for previous, width in zip([key_mask.shape[1], *widths[:-1]], widths, strict=True)
        ]
    layers = [
        dataclasses.replace(layer, merge_steps=0 if layer.keeps_all else count)
        for layer, count in zip(plan.layers, steps, strict=True)
    ]
    return BatchPlan(layers, plan.padded)


def _plan_widths(settings: PyramidSettings, key_mask: torch.Tensor, masked: bool, num_layers: int) -> BatchPlan:
    """:func:`plan_batch` but energy's merge steps."""
    tokens = key_mask.shape[1]
    compiling = torch.compiler.is_compiling()
    if settings.keep_thresholds is not None:
        return _plan_thresholds(settings.keep_thresholds, key_mask, masked, compiling)
    if settings.keep_ratios is not None and masked:
        return _plan_ratios_masked(settings.keep_ratios, key_mask, compiling)
    padded = masked and (compiling or not bool(key_mask.all()))
    if settings.keep_ratios is not None:
        widths = _chained([ratio_keep(ratio, tokens) for ratio in settings.keep_ratios], tokens)
    elif settings.method == "average_pool":
        widths = _pooled_widths(settings.pool_windows, tokens)
    elif settings.method == "input_first_k":
        widths = [tokens] * num_layers
    else:
        widths = _chained(settings.lengths, tokens)
    previous = [tokens, *widths[:-1]]
    return BatchPlan([LayerPlan(w, w == p) for w, p in zip(widths, previous, strict=True)], padded)


def _chained(kept: list[int], tokens: int) -> list[int]:
    """Widths when layer j keeps ``kept[j]`` tokens but never more than it receives."""
    widths, previous = [], tokens
    for count in kept:
        previous = min(previous, count)
        widths.append(previous)
    return widths


def _pooled_widths(windows: list[int], tokens: int) -> list[int]:
    """Average-pool's widths: CLS plus one token per window of the others."""
    widths, previous = [], tokens
    for window in windows:
        previous = 1 + math.ceil((previous - 1) / window) if window > 1 else previous
        widths.append(previous)
    return widths


def _plan_ratios_masked(ratios: list[float], key_mask: torch.Tensor, compiling: bool) -> BatchPlan:
    """Keep ratios on a masked batch: per-example counts chained on the device; widths from one host read (eager)
    or bounded from the shape (compiling)."""
    tokens = key_mask.shape[1]
    real = key_mask.sum(dim=1)
    counts, current = [], real
    for ratio in ratios:
        current = ratio_counts(real, current, ratio)
        counts.append(current)
    if compiling:
        widths = _chained([ratio_keep(ratio, tokens) for ratio in ratios], tokens)
        # every example keeps all it has exactly where the ratio did not fall (ratios never rise)
        same_counts = [ratio >= previous for ratio, previous in zip(ratios, [1.0, *ratios[:-1]], strict=True)]
        padded = True
    else:
        stacked = torch.stack(counts)  # [L, B]
        same = (stacked == torch.cat([real[None], stacked[:-1]])).all(dim=1)
        read = torch.cat([key_mask.all()[None], stacked.amax(dim=1), same]).tolist()  # the one host read
        padded, widths, same_counts = not read[0], read[1 : 1 + len(ratios)], read[1 + len(ratios) :]
    previous_widths = [tokens, *widths[:-1]]
    layers = [
        LayerPlan(width, bool(same) and width == previous, count)
        for width, previous, same, count in zip(widths, previous_widths, same_counts, counts, strict=True)
    ]
    return BatchPlan(layers, padded)


def _plan_thresholds(thresholds: list[float], key_mask: torch.Tensor, masked: bool, compiling: bool) -> BatchPlan:
    """Keep thresholds: layer j selects when ``t_j > 0``; its ``width`` is only a bound (the layer reads its counts'
    maximum in eager mode). Once a layer has selected, examples keep different counts: every later layer is
    masked."""
    selects = [threshold > 0 for threshold in thresholds]
    padded_input = masked and (compiling or not bool(key_mask.all()))
    width, layers = key_mask.shape[1], []
    for threshold in thresholds:
        width = threshold_width_bound(width, threshold)
        layers.append(LayerPlan(width, threshold == 0))
    return BatchPlan(layers, padded_input or any(selects))
