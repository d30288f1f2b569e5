"""Deployment speed: per-request latency (batch 1, one unpadded sentence per call) and sorted-batch throughput of
named model variants (dense / pyramid, fp32 / int8, ...), all built from one float32 classifier, in one process.

A variant is a :class:`Variant`: a name and a builder that makes the model to time from the float32 dense model and
the pyramid settings. :data:`DEFAULT_VARIANTS` are dense and pyramid at each precision; another way of running a model
(e.g. ``torch.compile``) is one more entry of that list.

- Latency: each repeat sends every sampled sentence once to every variant, the variants in a rotating order (so a slow
  phase of the machine hits them alike), one call timed at a time; p50 and p95 are over all (sentence, repeat) calls.
  The speedup of a variant is the median over calls of the paired ratio T(reference) / T(variant), same sentence and
  repeat.
- Throughput: one pass over the whole split, length-sorted and padded per batch, per variant, interleaved repeats
  (:func:`pyramid_bert.measure.timing.time_interleaved`); speedup = median of paired ratios against the reference.

Every call's time is kept (:class:`Sample`), so a table can be rebuilt from the raw samples
(:func:`summarize`, :func:`format_deploy_table`).
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn

from pyramid_bert.compiling import compile_model
from pyramid_bert.errors import ConfigError
from pyramid_bert.measure.speed import split_forward
from pyramid_bert.measure.timing import SpeedupStats, time_interleaved
from pyramid_bert.patch.hf import pyramidize
from pyramid_bert.patch.quantize import quantize
from pyramid_bert.precision import check_precision
from pyramid_bert.spec import PyramidSettings
from pyramid_bert.training.batching import make_batches

#: ``builder(dense_fp32_model, pyramid_settings)`` -> the model to time (a fresh copy; the input is not changed).
Builder = Callable[[nn.Module, PyramidSettings], nn.Module]
#: Graphs torch.compile may keep per code object while the variants are timed (its default, 8, is one model's worth).
RECOMPILE_LIMIT = 128
#: Kinds of samples: one request at batch 1, or one pass over the split at a batch size.
LATENCY, THROUGHPUT = "latency", "throughput"


@dataclass(frozen=True)
class Variant:
    """A named way of running the classifier, made by ``build`` (see :data:`Builder`)."""

    name: str
    build: Builder


def dense_builder(precision: str) -> Builder:
    """The dense model at ``precision`` (``fp32``, ``int8``)."""
    return lambda dense, settings: quantize(copy.deepcopy(dense), precision).eval()


def pyramid_builder(precision: str) -> Builder:
    """The pyramid model (the dense weights with ``settings``' selection) at ``precision``."""
    return lambda dense, settings: quantize(pyramidize(copy.deepcopy(dense), settings=settings), precision).eval()


#: Dense and pyramid, fp32 and int8; the first is the reference of every speedup.
DEFAULT_VARIANTS: tuple[Variant, ...] = (
    Variant("dense fp32", dense_builder("fp32")),
    Variant("dense int8", dense_builder("int8")),
    Variant("pyramid fp32", pyramid_builder("fp32")),
    Variant("pyramid int8", pyramid_builder("int8")),
)


def compiled(variant: Variant) -> Variant:
    """``variant`` run under ``torch.compile`` (:func:`pyramid_bert.compiling.compile_model`), named
    ``<name> compiled``; its first calls (the warm-up) compile."""
    return Variant(f"{variant.name} compiled", lambda dense, settings: compile_model(variant.build(dense, settings)))


def deploy_variants(precision: str | None = None, *, compile: bool = False) -> tuple[Variant, ...]:
    """:data:`DEFAULT_VARIANTS` at ``precision`` (None: all), always with the reference ``dense fp32`` first; with
    ``compile``, each of them also compiled (:func:`compiled`)."""
    chosen = DEFAULT_VARIANTS
    if precision is not None:
        check_precision(precision)
        chosen = tuple(v for v in DEFAULT_VARIANTS if v is DEFAULT_VARIANTS[0] or v.name.endswith(precision))
    return chosen + tuple(compiled(variant) for variant in chosen) if compile else chosen


@dataclass
class Sample:
    """One timed call: a request (``kind`` latency: ``item`` = sentence, ``tokens`` its length) or one pass over the
    split (``kind`` throughput: ``item`` = -1, ``tokens`` = all real tokens)."""

    kind: str
    variant: str
    threads: int
    batch_size: int
    repeat: int
    item: int
    tokens: int
    seconds: float

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def build_variants(
    dense: nn.Module, settings: PyramidSettings, variants: Sequence[Variant] = DEFAULT_VARIANTS
) -> dict[str, nn.Module]:
    """name -> model, each built from the float32 ``dense`` model (left unchanged); names must be unique."""
    names = [variant.name for variant in variants]
    if not names or len(set(names)) != len(names):
        raise ConfigError(f"variants: give at least one, with unique names; got {names}")
    return {variant.name: variant.build(dense, settings) for variant in variants}


def single_sentences(encodings: dict[str, torch.Tensor], count: int | None = None) -> list[dict[str, torch.Tensor]]:
    """The first ``count`` examples (default: all) of right-padded ``encodings`` ``[n, N]``, each cut to its own
    length: ``[1, n_i]`` inputs with no padding (what a service gets per request)."""
    lengths = encodings["attention_mask"].sum(dim=1).tolist()
    chosen = range(len(lengths) if count is None else min(count, len(lengths)))
    keys = [key for key in ("input_ids", "attention_mask", "token_type_ids") if key in encodings]
    return [{key: encodings[key][i : i + 1, : int(lengths[i])] for key in keys} for i in chosen]


def measure_latency(
    models: dict[str, nn.Module], sentences: Sequence[dict[str, torch.Tensor]], *, repeats: int = 3, warmup: int = 1
) -> list[Sample]:
    """Time every model on every sentence (batch 1), ``repeats`` times, after ``warmup`` untimed passes over all of
    them (so a compiled model has made the graphs of every length before it is timed); the order of the models
    rotates with each sentence. Returns one :class:`Sample` per call."""
    if not sentences:
        raise ConfigError("latency: give at least one sentence")
    if repeats < 1 or warmup < 0:
        raise ConfigError(f"latency: repeats must be >= 1 and warmup >= 0; got {repeats}, {warmup}")
    names, threads = list(models), torch.get_num_threads()
    samples: list[Sample] = []
    with torch.inference_mode():
        for _ in range(warmup):
            for inputs in sentences:
                for name in names:
                    models[name](**inputs)
        for repeat in range(repeats):
            for item, inputs in enumerate(sentences):
                shift = (item + repeat) % len(names)
                for name in names[shift:] + names[:shift]:
                    start = time.perf_counter()
                    models[name](**inputs)
                    seconds = time.perf_counter() - start
                    tokens = int(inputs["input_ids"].shape[1])
                    samples.append(Sample(LATENCY, name, threads, 1, repeat, item, tokens, seconds))
    return samples


def measure_throughput(
    models: dict[str, nn.Module], encodings: dict[str, torch.Tensor], *, batch_size: int, repeats: int = 3,
    warmup: int = 1,
) -> list[Sample]:  # fmt: skip
    """Time one pass over every example of ``encodings`` per model, length-sorted batches of ``batch_size`` padded per
    batch, interleaved repeats. Returns one :class:`Sample` per pass."""
    batches = make_batches(encodings, batch_size, "sorted")
    tokens = int(encodings["attention_mask"].sum())
    passes = {name: split_forward(model, batches, _device(model)) for name, model in models.items()}
    timings = time_interleaved(passes, warmup=warmup, repeats=repeats)
    threads = torch.get_num_threads()
    return [
        Sample(THROUGHPUT, name, threads, batch_size, repeat, -1, tokens, seconds)
        for name, stats in timings.items()
        for repeat, seconds in enumerate(stats.samples)
    ]


def _device(model: nn.Module) -> torch.device:
    """Where ``model``'s weights are (CPU for one without float parameters, e.g. fully int8)."""
    parameter = next(model.parameters(), None)
    return parameter.device if parameter is not None else torch.device("cpu")


def deploy_samples(
    dense: nn.Module, settings: PyramidSettings, encodings: dict[str, torch.Tensor], *, batch_sizes: Sequence[int],
    requests: int = 200, repeats: int = 3, warmup: int = 1, variants: Sequence[Variant] = DEFAULT_VARIANTS,
) -> list[Sample]:  # fmt: skip
    """Latency (batch size 1: the first ``requests`` sentences of ``encodings``, one per call) and throughput (every
    other batch size: the whole of ``encodings``) of each variant built from the float32 ``dense`` model."""
    models = build_variants(dense, settings, variants)
    samples: list[Sample] = []
    # Compiled variants share the model code, so each adds its graphs to the same per-code cache: without room for
    # all of them, torch.compile stops compiling after 8 and runs the rest eagerly, unannounced in the timings.
    with torch._dynamo.config.patch(recompile_limit=RECOMPILE_LIMIT):
        for batch_size in batch_sizes:
            if batch_size == 1:
                sentences = single_sentences(encodings, requests)
                samples += measure_latency(models, sentences, repeats=repeats, warmup=warmup)
            else:
                samples += measure_throughput(models, encodings, batch_size=batch_size, repeats=repeats, warmup=warmup)
    return samples


@dataclass
class DeployRow:
    """One variant at one (kind, batch size, threads): times in ms and the speedup against the reference variant."""

    kind: str
    variant: str
    threads: int
    batch_size: int
    calls: int
    p50_ms: float
    p95_ms: float
    mean_ms: float
    speedup: float
    speedup_q25: float
    speedup_q75: float
    vs_dense_twin: float | None  # a pyramid variant against the dense variant of the same name ("pyramid int8" ->
    # "dense int8"): median of the paired ratios; None for the others

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def twin_name(variant: str) -> str | None:
    """The dense variant a pyramid variant is compared with: its name with ``pyramid`` replaced by ``dense``."""
    return variant.replace("pyramid", "dense", 1) if variant.startswith("pyramid") else None


def paired_ratios(base: dict[tuple[int, int], float], other: dict[tuple[int, int], float]) -> np.ndarray:
    """T(base) / T(other) for each (repeat, item) both were timed on."""
    return np.asarray([base[key] / value for key, value in other.items() if key in base])


def summarize(samples: Sequence[Sample], reference: str = "dense fp32") -> list[DeployRow]:
    """One :class:`DeployRow` per (kind, threads, batch size, variant), in the order first seen; speedups are medians
    (and quartiles) of ratios T(reference) / T(variant) paired by (repeat, item)."""
    groups: dict[tuple[str, int, int], dict[str, dict[tuple[int, int], float]]] = {}
    for sample in samples:
        group = groups.setdefault((sample.kind, sample.threads, sample.batch_size), {})
        group.setdefault(sample.variant, {})[sample.repeat, sample.item] = sample.seconds
    rows = []
    for (kind, threads, batch_size), by_variant in groups.items():
        if reference not in by_variant:
            raise ConfigError(f"summarize: no samples of the reference variant {reference!r} for {kind} batch {batch_size}")
        base = by_variant[reference]
        for variant, times in by_variant.items():
            seconds, speedup = np.asarray(list(times.values())), SpeedupStats.of(paired_ratios(base, times))
            twin = by_variant.get(twin_name(variant) or "")
            rows.append(DeployRow(
                kind=kind, variant=variant, threads=threads, batch_size=batch_size, calls=len(seconds),
                p50_ms=1e3 * float(np.quantile(seconds, 0.5)), p95_ms=1e3 * float(np.quantile(seconds, 0.95)),
                mean_ms=1e3 * float(seconds.mean()), speedup=speedup.median, speedup_q25=speedup.q25,
                speedup_q75=speedup.q75,
                vs_dense_twin=None if twin is None else SpeedupStats.of(paired_ratios(twin, times)).median,
            ))  # fmt: skip
    return rows


def format_deploy_table(rows: Sequence[DeployRow], reference: str = "dense fp32") -> str:
    """A Markdown table: latency rows (p50, p95 per request) and throughput rows (ms per pass over the split)."""
    lines = [
        f"| mode | threads | batch | variant | calls | p50 ms | p95 ms | mean ms | speedup vs {reference} [IQR] | "
        "pyramid vs dense, same precision |",
        "|" + "---|" * 10,
    ]
    for row in rows:
        mode = "per request (1 sentence, unpadded)" if row.kind == LATENCY else "pass over the split (sorted)"
        lines.append(
            f"| {mode} | {row.threads} | {row.batch_size} | {row.variant} | {row.calls} | {row.p50_ms:.2f} | "
            f"{row.p95_ms:.2f} | {row.mean_ms:.2f} | {row.speedup:.2f}X [{row.speedup_q25:.2f}, {row.speedup_q75:.2f}] | "
            + ("" if row.vs_dense_twin is None else f"{row.vs_dense_twin:.2f}X")
            + " |"
        )
    return "\n".join(lines)
