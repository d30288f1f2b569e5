"""Keep thresholds in practice: calibrating them to target keep ratios, and what they realise on real sentences.

An adaptive model (Attention-select with ``keep_thresholds``, :mod:`pyramid_bert.thresholds`) keeps a different
number of tokens in every example, so its cost is known only after running it:

- :func:`realised_counts`: tokens each example keeps after each layer, and each batch's widths (what the layers
  really computed on), over batches of sentences;
- :func:`count_summary`: per layer, the mean and spread of the tokens kept and the mean keep ratio;
- :func:`realised_flops` / :func:`realised_speedup`: the FLOPs model over the realised widths (the batch's tensors)
  and over each example's own counts (perfect batching), against the dense model on the same batches;
- :func:`calibrate_thresholds`: per-layer thresholds whose realised mean keep ratio (tokens kept / the example's
  real input tokens, averaged over examples) matches target ratios, so an adaptive model can be compared with a
  fixed keep-ratio schedule at the same average cost. Layers are calibrated in order (a layer's scores depend on
  what the layers before it kept): one pass over the sentences per layer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import nn

from pyramid_bert.errors import ConfigError
from pyramid_bert.geometry import flops_geometry
from pyramid_bert.patch.hf import kept_input_positions, pyramid_settings, pyramidize, threshold_scores
from pyramid_bert.schedule import encoder_flops, validate_ratios
from pyramid_bert.spec import PyramidSettings, SelectionOptions
from pyramid_bert.training.batching import Batch

#: The threshold that makes a layer select while keeping every token of positive score (calibration's probe).
_PROBE = 1e-12


@dataclass
class RealisedCounts:
    """What an adaptive model kept over some batches: ``counts [L, E]`` (tokens example e keeps after layer j, CLS
    included), ``real [E]`` (its real input tokens) and, per batch, ``(size, width, [w_1..w_L])`` (tensor widths)."""

    counts: torch.Tensor
    real: torch.Tensor
    widths: list[tuple[int, int, list[int]]] = field(default_factory=list)


@torch.no_grad()
def realised_counts(model: nn.Module, batches: Sequence[Batch]) -> RealisedCounts:
    """Run ``model`` (a pyramidized model, in eval mode) over ``batches`` and record what each layer kept."""
    model.eval()
    counts, real, widths = [], [], []
    for batch in batches:
        model(**batch.inputs)
        layers = kept_input_positions(model)
        if any(layer is None for layer in layers):
            raise ConfigError("realised_counts: Average-pool keeps no subset of the input; use its pool lengths")
        counts.append(torch.stack([kept.sum(dim=1).cpu() for _, kept in layers]))
        real.append(batch.inputs["attention_mask"].sum(dim=1).cpu())
        widths.append((len(batch.positions), batch.width, [int(kept.shape[1]) for _, kept in layers]))
    return RealisedCounts(torch.cat(counts, dim=1), torch.cat(real), widths)


def count_summary(realised: RealisedCounts) -> list[dict[str, float]]:
    """Per layer: ``mean``, ``std``, ``min``, ``max`` of the tokens kept per example, and ``keep_ratio`` (the mean
    over examples of kept / real input tokens)."""
    summary = []
    for layer in realised.counts.double():
        summary.append({
            "mean": float(layer.mean()), "std": float(layer.std(unbiased=False)), "min": float(layer.min()),
            "max": float(layer.max()), "keep_ratio": float((layer / realised.real.double()).mean()),
        })  # fmt: skip
    return summary


def realised_flops(realised: RealisedCounts, geometry: dict[str, int], position: str = "middle") -> dict[str, int]:
    """Encoder FLOPs of the recorded run: ``batched`` (each batch's tensor widths, padding included) and
    ``per_example`` (each example on its own counts), with the dense model's on the same inputs beside them
    (``dense_batched``: the batches' widths; ``dense_per_example``: each example's real tokens)."""
    flops = {"batched": 0, "dense_batched": 0, "per_example": 0, "dense_per_example": 0}
    for size, width, layer_widths in realised.widths:
        flops["batched"] += size * encoder_flops(width, layer_widths, position=position, **geometry)
        flops["dense_batched"] += size * encoder_flops(width, None, **geometry)
    for example in range(realised.real.numel()):
        n = int(realised.real[example])
        flops["per_example"] += encoder_flops(n, realised.counts[:, example].tolist(), position=position, **geometry)
        flops["dense_per_example"] += encoder_flops(n, None, **geometry)
    return flops


def realised_speedup(model: nn.Module, realised: RealisedCounts) -> dict[str, float]:
    """The FLOPs model's speedups of a recorded run: ``batched`` (tensor widths of these batches) and
    ``per_example`` (every example alone, unpadded), each against the dense model on the same inputs."""
    settings = pyramid_settings(model)
    position = settings.options.position if settings is not None else "middle"
    flops = realised_flops(realised, flops_geometry(model.config), position)
    return {
        "batched": flops["dense_batched"] / flops["batched"],
        "per_example": flops["dense_per_example"] / flops["per_example"],
    }


def calibrate_thresholds(
    model: nn.Module, target_ratios: Sequence[float], batches: Sequence[Batch], options: SelectionOptions | None = None
) -> list[float]:
    """Per-layer keep thresholds whose realised mean keep ratio on ``batches`` matches ``target_ratios`` (one per
    encoder layer, in (0, 1]; 1 gives threshold 0, keep all) as closely as the sentences allow.

    ``model`` (dense or pyramidized) is left pyramidized with Attention-select, ``options`` (default: the model's own
    if it is an Attention-select pyramid, else the defaults) and the calibrated thresholds, in eval mode.
    """
    current = pyramid_settings(model)
    if options is None:
        options = current.options if current is not None and current.method == "attention" else SelectionOptions()
    num_layers = flops_geometry(model.config)["num_layers"]
    targets = validate_ratios(list(target_ratios), num_layers) if len(target_ratios) == num_layers else None
    if targets is None:
        raise ConfigError(f"target ratios: one per encoder layer ({num_layers}); got {len(target_ratios)}")
    thresholds = [0.0] * num_layers
    for layer, target in enumerate(targets):
        if target >= 1.0:
            continue
        probe = thresholds[:layer] + [_PROBE] + [0.0] * (num_layers - layer - 1)
        _apply(model, probe, options)
        scores, real = _layer_scores(model, batches, layer)
        thresholds[layer] = threshold_for_ratio(scores, real, target)
    _apply(model, thresholds, options)
    return thresholds


def _apply(model: nn.Module, thresholds: list[float], options: SelectionOptions) -> None:
    pyramidize(model, settings=PyramidSettings(None, "attention", options=options, keep_thresholds=thresholds))
    model.eval()


@torch.no_grad()
def _layer_scores(model: nn.Module, batches: Sequence[Batch], layer: int) -> tuple[list[torch.Tensor], torch.Tensor]:
    """Layer ``layer``'s relative scores of each example's real non-CLS tokens (a list of 1-D tensors) and the
    examples' real input tokens ``[E]``."""
    scores, real = [], []
    for batch in batches:
        model(**batch.inputs)
        layer_scores = threshold_scores(model)[layer]
        _, kept = kept_input_positions(model)[layer - 1] if layer else (None, batch.inputs["attention_mask"].bool())
        for row in range(layer_scores.shape[0]):
            scores.append(layer_scores[row, 1:][kept[row, 1:]].float().cpu())
        real.append(batch.inputs["attention_mask"].sum(dim=1).cpu())
    return scores, torch.cat(real)


def threshold_for_ratio(scores: Sequence[torch.Tensor], real: torch.Tensor, target: float) -> float:
    """The threshold t whose mean keep ratio ``mean_e (1 + #{s in scores[e] : s >= t}) / real[e]`` is nearest
    ``target`` (ties: the one keeping more). ``scores[e]``: example e's scores of its real non-CLS tokens (1-D),
    ``real [E]``: its real input tokens. t lies halfway between two consecutive distinct scores (0 keeps all)."""
    if not 0.0 < target <= 1.0:
        raise ConfigError(f"target keep ratio must be in (0, 1]; got {target}")
    weights = 1.0 / real.double() / len(real)  # each kept token adds 1 / (E * n_e) to the mean ratio
    values = torch.cat([s.double() for s in scores] + [torch.zeros(0, dtype=torch.float64)])
    token_weights = torch.cat([weights[e].expand(len(s)) for e, s in enumerate(scores)] + [values[:0]])
    unique, inverse = torch.unique(values, sorted=True, return_inverse=True)
    mass = torch.zeros(len(unique), dtype=torch.float64).scatter_add_(0, inverse, token_weights).flip(0)
    distinct = unique.flip(0)  # descending
    ratios = weights.sum() + torch.cat([mass[:0], torch.zeros(1, dtype=torch.float64), torch.cumsum(mass, 0)])
    error = (ratios - target).abs()  # ratios[k]: keep the tokens of the k highest distinct scores
    k = int(torch.nonzero(error == error.min()).max())
    if k == 0:
        return float(distinct[0]) + 1.0 if len(distinct) else 1.0  # CLS alone
    lower = float(distinct[k]) if k < len(distinct) else 0.0
    return (float(distinct[k - 1]) + lower) / 2.0
