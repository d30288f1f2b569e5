"""Speed of a pyramid model against its dense twin over a whole split, under each way of batching.

Each timed callable runs every batch of the split once (throughput, not one batch), the callables take turns
(interleaved repeats in one process, :mod:`pyramid_bert.measure.timing`), and speedups are medians of paired ratios.
The dense model and the pyramid model get the same examples, cut into batches the same ways:

- ``padded``: every example padded to N, the paper's protocol (Appendix C);
- ``dynamic``: each batch padded to its longest example, in split order (what ``DataCollatorWithPadding`` does);
- ``sorted``: the split sorted by length, then padded per batch (how users batch for throughput).

The headline speedups are *paper* (pyramid padded vs dense padded) and *real* (pyramid sorted vs dense sorted);
every other pair is in ``speedups``. The FLOPs model's prediction for the same batches sits beside each.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from pyramid_bert.geometry import flops_geometry
from pyramid_bert.measure.adaptive import realised_counts, realised_flops
from pyramid_bert.measure.timing import ratio_range, speedup_stats, time_interleaved
from pyramid_bert.patch.hf import pyramid_settings
from pyramid_bert.schedule import batches_flops, encoder_flops, pool_lengths
from pyramid_bert.training.batching import BATCHING_MODES, Batch, batch_shapes, make_batches

#: The pairs every measurement reports: name -> (pyramid batching, dense batching).
HEADLINE_PAIRS = {"paper": ("padded", "padded"), "real": ("sorted", "sorted")}


def split_forward(model: nn.Module, batches: Sequence[Batch], device: torch.device) -> Any:
    """A zero-argument callable: inference over every batch (inputs already on ``device``), synchronised."""
    synchronize = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

    def run() -> None:
        with torch.inference_mode():
            for batch in batches:
                model(**batch.inputs)
        synchronize()

    return run


def predicted_split_speedup(model: nn.Module, dense_batches: Sequence[Batch], pyramid_batches: Sequence[Batch]) -> float:
    """FLOPs(dense over its batches) / FLOPs(pyramid over its batches), from the pyramid model's settings (keep
    thresholds: from the widths the model realises on ``pyramid_batches``, one more pass over them)."""

    config = model.config
    geometry = flops_geometry(config)
    dense = batches_flops(batch_shapes(list(dense_batches)), **geometry)
    settings = pyramid_settings(model)
    shapes = batch_shapes(list(pyramid_batches))
    if settings is None:
        return dense / batches_flops(shapes, **geometry)
    position = settings.options.position
    if settings.keep_thresholds is not None:  # adaptive counts: the widths this model really ran on these batches
        realised = realised_counts(model, list(pyramid_batches))
        return dense / realised_flops(realised, geometry, position)["batched"]
    if settings.method == "average_pool":
        pyramid = sum(
            size * _pool_flops(width, settings.pool_windows, geometry, position) for size, width, _ in shapes
        )
        return dense / pyramid
    pyramid = batches_flops(
        shapes, lengths=settings.lengths, ratios=settings.keep_ratios, position=position,
        truncate_input=settings.method == "input_first_k", **geometry,
    )  # fmt: skip
    return dense / pyramid


def _pool_flops(width: int, windows: Sequence[int], geometry: dict[str, int], position: str) -> int:
    return encoder_flops(width, pool_lengths(width, windows), position=position, **geometry)


def measure_split_speed(
    pyramid: nn.Module,
    dense: nn.Module,
    encodings: dict[str, torch.Tensor],
    *,
    batch_size: int,
    device: torch.device,
    dense_modes: Sequence[str] = BATCHING_MODES,
    pyramid_modes: Sequence[str] = ("padded", "sorted"),
    warmup: int = 1,
    repeats: int = 5,
) -> dict[str, Any]:
    """Time whole-split inference of ``dense`` and ``pyramid`` under each batching mode, interleaved.

    Args:
        pyramid, dense: the two models (same weights; ``dense`` without token selection), on ``device``.
        encodings: the split's tokenizer outputs ``[n, N]`` (``labels`` ignored).
        batch_size: examples per batch.
        dense_modes / pyramid_modes: the batching modes each model is timed under (both must include the modes of
            :data:`HEADLINE_PAIRS`).

    Returns:
        A JSON-able dict: examples, batch_size, seq_len, threads, warmup, repeats; ``seconds`` ("dense/padded" ->
        timing stats of one pass over the split); ``speedups`` ("pyramid/sorted vs dense/padded" -> median, q25,
        q75 of paired ratios); ``predicted`` (same keys -> FLOPs-model speedup); and for each headline pair
        (``paper``, ``real``): ``<pair>_speedup`` (stats) and ``<pair>_predicted``.
    """
    for model in (pyramid, dense):
        model.eval()
    batches = {mode: [b.to(device) for b in make_batches(encodings, batch_size, mode)] for mode in BATCHING_MODES}
    callables = {f"dense/{mode}": split_forward(dense, batches[mode], device) for mode in dense_modes}
    callables.update({f"pyramid/{mode}": split_forward(pyramid, batches[mode], device) for mode in pyramid_modes})
    timings = time_interleaved(callables, warmup=warmup, repeats=repeats)
    speed: dict[str, Any] = {
        "examples": int(len(encodings["input_ids"])), "batch_size": batch_size,
        "seq_len": int(encodings["input_ids"].shape[1]), "threads": torch.get_num_threads(),
        "warmup": warmup, "repeats": repeats, "what": "inference over the whole split, per batching mode",
        "seconds": {name: stats.to_dict() for name, stats in timings.items()}, "speedups": {}, "predicted": {},
    }  # fmt: skip
    for pyramid_mode in pyramid_modes:
        for dense_mode in dense_modes:
            key = f"pyramid/{pyramid_mode} vs dense/{dense_mode}"
            ratio = speedup_stats(timings[f"dense/{dense_mode}"], timings[f"pyramid/{pyramid_mode}"])
            speed["speedups"][key] = ratio.to_dict()
            speed["predicted"][key] = predicted_split_speedup(pyramid, batches[dense_mode], batches[pyramid_mode])
    for name, (pyramid_mode, dense_mode) in HEADLINE_PAIRS.items():
        key = f"pyramid/{pyramid_mode} vs dense/{dense_mode}"
        speed[f"{name}_speedup"] = speed["speedups"][key]
        speed[f"{name}_predicted"] = speed["predicted"][key]
    return speed


def time_against_dense(
    dense: nn.Module,
    pyramids: dict[str, nn.Module],
    encodings: dict[str, torch.Tensor],
    *,
    batch_size: int,
    device: torch.device,
    mode: str = "sorted",
    warmup: int = 1,
    repeats: int = 6,
) -> dict[str, dict[str, Any]]:
    """Time several pyramid models against one dense model on the same batches, in one interleaved timing.

    Each round runs the dense model and every pyramid model once over the whole split (batched per ``mode``), in an
    order rotated every round; pyramid ``name``'s ratio of round i is dense time i / its time i, so it is paired
    with a dense run of the same round (seconds apart, not minutes).

    Args:
        dense: the model without token selection; pyramids: name -> pyramid model (same geometry), all on ``device``.
        encodings: the timed examples' tokenizer outputs ``[n, N]`` (``labels`` ignored).

    Returns:
        name -> ``{"speedup": median/low/high/coverage/n/ratios (see RatioRange), "predicted": FLOPs-model speedup on
        the same batches, "seconds": the pyramid's per-round seconds, "dense_seconds": the dense model's}``.
    """
    for model in (dense, *pyramids.values()):
        model.eval()
    batches = [batch.to(device) for batch in make_batches(encodings, batch_size, mode)]
    callables = {"dense": split_forward(dense, batches, device)}
    callables.update({f"pyramid/{name}": split_forward(model, batches, device) for name, model in pyramids.items()})
    timings = time_interleaved(callables, warmup=warmup, repeats=repeats)
    return {
        name: {
            "speedup": ratio_range(timings["dense"], timings[f"pyramid/{name}"]).to_dict(),
            "predicted": predicted_split_speedup(model, batches, batches),
            "seconds": list(timings[f"pyramid/{name}"].samples), "dense_seconds": list(timings["dense"].samples),
        }  # fmt: skip
        for name, model in pyramids.items()
    }


def measure_train_step_speed(
    pyramid: nn.Module,
    dense: nn.Module,
    encodings: dict[str, torch.Tensor],
    *,
    batch_size: int,
    device: torch.device,
    modes: Sequence[str] = ("padded", "dynamic"),
    warmup: int = 1,
    repeats: int = 5,
) -> dict[str, Any]:
    """Forward + backward of one training batch (the split's first ``batch_size`` examples), dense vs pyramid,
    padded to N and padded to its longest example; optimizer step excluded. Same keys as the speedups above."""
    batches = {mode: make_batches(encodings, batch_size, mode, with_labels=True)[0].to(device) for mode in modes}
    synchronize = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

    def step(model: nn.Module, batch: Batch) -> Any:
        def run() -> None:
            model.train()
            model(**batch.inputs).loss.backward()
            model.zero_grad(set_to_none=True)
            synchronize()

        return run

    callables = {f"{name}/{mode}": step(model, batches[mode]) for mode in modes
                 for name, model in (("dense", dense), ("pyramid", pyramid))}  # fmt: skip
    timings = time_interleaved(callables, warmup=warmup, repeats=repeats)
    for model in (pyramid, dense):
        model.eval()
    result: dict[str, Any] = {
        "what": "forward + backward of one training batch (optimizer step excluded)",
        "batch_size": int(len(batches[modes[0]].positions)),
        "seconds": {name: stats.to_dict() for name, stats in timings.items()},
        "speedups": {mode: speedup_stats(timings[f"dense/{mode}"], timings[f"pyramid/{mode}"]).to_dict()
                     for mode in modes},  # fmt: skip
        "widths": {mode: batches[mode].width for mode in modes},
    }
    result["speedup"] = result["speedups"][modes[0]]
    return result
