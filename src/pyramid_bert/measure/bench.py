"""Inference speed of pyramid models against their dense twin, measured side by side in one process.

For one model (a named geometry with random weights, or a checkpoint) and each (batch size, schedule, m):
dense time, pyramid time, measured speedup T(dense)/T(pyramid), the FLOPs model's predicted speedup, their
ratio, and the share of the pyramid forward spent inside token selection. A third model, the same schedule
with First-k-select (whose selection is a sort of a bool mask), shows what the schedule itself allows once the
selection cost is removed.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import torch
from torch import nn
from transformers import AutoConfig, AutoModel, AutoTokenizer

from pyramid_bert import data  # data.load_task, looked up at call time (tests replace it)
from pyramid_bert.compiling import compile_model
from pyramid_bert.data import MODEL_NAMES, resolve_model, tokenize_split
from pyramid_bert.errors import CheckpointError, ConfigError
from pyramid_bert.geometry import flops_geometry
from pyramid_bert.measure.speed import measure_split_speed
from pyramid_bert.measure.timing import speedup_stats, time_interleaved
from pyramid_bert.patch.hf import PyramidLayerMixin, pyramidize
from pyramid_bert.schedule import predicted_speedup
from pyramid_bert.selection import compiled_rounds
from pyramid_bert.training.config import subset_indices, take

_SMALL = dict(num_hidden_layers=6, hidden_size=384, num_attention_heads=12, intermediate_size=1536)
_BASE = dict(num_hidden_layers=12, hidden_size=768, num_attention_heads=12, intermediate_size=3072)
_DEBERTA_V3 = dict(
    model_type="deberta-v2", relative_attention=True, position_buckets=256, max_relative_positions=-1,
    pos_att_type=["p2c", "c2p"], position_biased_input=False, share_att_key=True, norm_rel_ebd="layer_norm",
    type_vocab_size=0,
)  # fmt: skip
_MODERNBERT = dict(model_type="modernbert", pad_token_id=0, bos_token_id=101, eos_token_id=102, cls_token_id=101,
                   sep_token_id=102)  # fmt: skip (the built-in tokenizer's ids; local window 128, global every 3rd)
#: Named model geometries (random weights: speed does not depend on their values): BERT's (``model_type`` bert
#: unless given), and per family ``-small`` (the built-in MiniLM-L6's shape in that family's code) and ``-base``
#: (the shape of the family's base checkpoint: distilbert-base, albert-base-v2, deberta-v3-base, ModernBERT-base).
GEOMETRIES: dict[str, dict[str, Any]] = {
    "minilm-l6": _SMALL,
    "bert-base": _BASE,
    "distilbert-small": dict(model_type="distilbert", n_layers=6, dim=384, n_heads=12, hidden_dim=1536),
    "distilbert-base": dict(model_type="distilbert", n_layers=6, dim=768, n_heads=12, hidden_dim=3072),
    "albert-small": dict(model_type="albert", embedding_size=128, **_SMALL),
    "albert-base": dict(model_type="albert", embedding_size=128, **_BASE),
    "deberta-small": dict(_DEBERTA_V3, **_SMALL),
    "deberta-base": dict(_DEBERTA_V3, **_BASE),
    "modernbert-small": dict(_MODERNBERT, **_SMALL),
    "modernbert-base": dict(_MODERNBERT, num_hidden_layers=22, hidden_size=768, num_attention_heads=12,
                            intermediate_size=1152),  # fmt: skip
}


@dataclass
class BenchRow:
    """One measured configuration; times in milliseconds, speedups as medians of paired ratios."""

    model: str
    batch_size: int
    n: int
    lengths: list[int]
    method: str
    m: str
    dense_ms: float
    pyramid_ms: float
    speedup: float
    speedup_q25: float
    speedup_q75: float
    predicted: float
    ratio: float
    selection_share: float
    no_selection_speedup: float

    def to_dict(self) -> dict[str, object]:
        row = asdict(self)
        row["lengths"] = " ".join(map(str, self.lengths))
        return row


def geometry_model(name: str, n: int, seed: int = 0) -> nn.Module:
    """A base model (``BertModel``, ``DistilBertModel``, ...) with random weights and the named geometry (see
    ``GEOMETRIES``; vocabulary of the built-in tokenizer), in eval mode."""

    if name not in GEOMETRIES:
        raise ConfigError(f"model geometry must be one of {', '.join(GEOMETRIES)} or a checkpoint path; got {name!r}")
    torch.manual_seed(seed)
    settings = dict(GEOMETRIES[name])
    model_type = settings.pop("model_type", "bert")
    config = AutoConfig.for_model(model_type, vocab_size=30522, max_position_embeddings=max(512, n), **settings)
    return AutoModel.from_config(config).eval()


def load_bench_model(name_or_path: str, n: int) -> nn.Module:
    """A named geometry, a catalog model name or a BERT-family checkpoint folder (``AutoModel``), in eval mode.

    Anything else (a missing folder, an unreadable one) is a one-line ConfigError / CheckpointError naming ``--model``.
    """

    if name_or_path in GEOMETRIES:
        return geometry_model(name_or_path, n)
    if name_or_path not in MODEL_NAMES and not Path(name_or_path).is_dir():
        built_in = [name for name in MODEL_NAMES if name not in GEOMETRIES]
        raise ConfigError(
            f"--model: no model {name_or_path!r}; valid: {', '.join(GEOMETRIES)} (geometries, random weights), "
            + (f"{', '.join(built_in)} (built-in models), " if built_in else "")
            + "or a checkpoint folder"
        )

    try:
        return AutoModel.from_pretrained(resolve_model(name_or_path)).eval()
    except (OSError, ValueError) as error:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise CheckpointError(f"--model: cannot load {name_or_path} ({reason})") from error


def m_label(m: int | float | None) -> str:
    """How a table names m: ``1``, ``0.2k``, ``k-1``."""
    if m is None:
        return "k-1"
    return f"{m}k" if isinstance(m, float) else str(m)


@contextmanager
def selection_timer(model: nn.Module) -> Iterator[list[float]]:
    """Collect the wall time of every selection step of a pyramid model (CPU; synchronises on CUDA)."""
    layers = [module for module in model.modules() if isinstance(module, PyramidLayerMixin)]
    spent: list[float] = []
    synchronize = torch.cuda.synchronize if next(model.parameters()).is_cuda else (lambda: None)

    def timed(original):
        def run(*args, **kwargs):
            synchronize()
            start = time.perf_counter()
            result = original(*args, **kwargs)
            synchronize()
            spent.append(time.perf_counter() - start)
            return result

        return run

    for layer in layers:
        layer._pyramid_reduce = timed(layer._pyramid_reduce)
    try:
        yield spent
    finally:
        for layer in layers:
            del layer._pyramid_reduce


def bench_schedule(
    dense: nn.Module,
    *,
    model_name: str,
    batch_size: int,
    n: int,
    lengths: Sequence[int],
    method: str = "coreset",
    m_values: Sequence[int | float | None] = (1,),
    repeats: int = 7,
    warmup: int = 2,
    device: str = "cpu",
    compiled: bool = True,
) -> list[BenchRow]:
    """Measure one schedule at one batch size for each m (one row per m).

    ``compiled=False`` runs k-center's rounds as torch ops (the CUDA path) instead of the compiled CPU loop.
    """
    config = dense.config
    geometry = flops_geometry(config)
    predicted = predicted_speedup(n, list(lengths), **geometry)
    generator = torch.Generator().manual_seed(0)
    input_ids = torch.randint(1000, 20000, (batch_size, n), generator=generator).to(device)
    attention_mask = torch.ones_like(input_ids)

    def forward(model: nn.Module):
        return lambda: model(input_ids=input_ids, attention_mask=attention_mask)

    no_selection = pyramidize(copy.deepcopy(dense), list(lengths), method="first_k")
    pyramids = {m_label(m): pyramidize(copy.deepcopy(dense), list(lengths), method=method, m=m) for m in m_values}
    candidates = {"dense": forward(dense), "no_selection": forward(no_selection)}
    candidates.update({label: forward(model) for label, model in pyramids.items()})
    with torch.inference_mode(), compiled_rounds(compiled):
        times = time_interleaved(candidates, warmup=warmup, repeats=repeats)
        shares = {label: _selection_share(model, forward(model)) for label, model in pyramids.items()}
    no_selection_speedup = speedup_stats(times["dense"], times["no_selection"]).median
    rows = []
    for label in pyramids:
        speedup = speedup_stats(times["dense"], times[label])
        rows.append(
            BenchRow(
                model=model_name,
                batch_size=batch_size,
                n=n,
                lengths=list(lengths),
                method=method if compiled or method != "coreset" else "coreset (torch rounds)",
                m=label,
                dense_ms=1e3 * times["dense"].median,
                pyramid_ms=1e3 * times[label].median,
                speedup=speedup.median,
                speedup_q25=speedup.q25,
                speedup_q75=speedup.q75,
                predicted=predicted,
                ratio=speedup.median / predicted,
                selection_share=shares[label],
                no_selection_speedup=no_selection_speedup,
            )
        )
    return rows


def _selection_share(model: nn.Module, run, calls: int = 3) -> float:
    """Fraction of the forward's wall time spent in selection, over ``calls`` forwards."""
    with selection_timer(model) as spent:
        start = time.perf_counter()
        for _ in range(calls):
            run()
        total = time.perf_counter() - start
    return sum(spent) / total


def format_table(rows: Sequence[BenchRow]) -> str:
    """A Markdown table of bench rows."""
    header = (
        "| model | method | B | N | lengths | m | dense ms | pyramid ms | speedup (IQR) | predicted | ratio | "
        "selection share | no-selection speedup |"
    )
    lines = [header, "|" + "---|" * 13]
    for row in rows:
        lines.append(
            f"| {row.model} | {row.method} | {row.batch_size} | {row.n} | {' '.join(map(str, row.lengths))} | {row.m} | "
            f"{row.dense_ms:.1f} | {row.pyramid_ms:.1f} | {row.speedup:.2f} ({row.speedup_q25:.2f}-{row.speedup_q75:.2f}) | "
            f"{row.predicted:.2f} | {row.ratio:.2f} | {100 * row.selection_share:.1f}% | {row.no_selection_speedup:.2f} |"
        )
    return "\n".join(lines)


# ------------------------------------------------------------------------------------- real inputs, whole split
@dataclass
class SplitBenchRow:
    """One schedule timed over a split of real inputs: both speedups, each beside the FLOPs model's prediction."""

    model: str
    batch_size: int
    n: int
    examples: int
    schedule: str  # "fixed" or "ratio"
    lengths: str  # lengths at N, or the ratios
    method: str
    m: str
    dense_sorted_ms: float
    pyramid_sorted_ms: float
    real_speedup: float
    real_q25: float
    real_q75: float
    real_predicted: float
    real_ratio: float
    paper_speedup: float
    paper_predicted: float
    vs_dense_dynamic: float
    pyramid_sorted_vs_dense_padded: float

    def to_dict(self) -> dict[str, object]:
        return asdict(self)

    @classmethod
    def from_csv(cls, row: Mapping[str, str]) -> SplitBenchRow:
        """The row that :meth:`to_dict` wrote as one CSV line (``bench --csv``), every field its own type again."""
        types = {"int": int, "float": float, "str": str}
        return cls(**{field.name: types[str(field.type)](row[field.name]) for field in fields(cls)})


def schedule_label(lengths: Sequence[int] | None, ratios: Sequence[float] | None) -> str:
    if ratios is not None:
        return "r " + " ".join(f"{r:.3g}" for r in ratios)
    return " ".join(map(str, lengths or []))


def bench_split(
    dense: nn.Module,
    encodings: dict[str, torch.Tensor],
    *,
    model_name: str,
    batch_size: int,
    lengths: Sequence[int] | None = None,
    ratios: Sequence[float] | None = None,
    method: str = "coreset",
    m: int | float | None = 1,
    repeats: int = 5,
    warmup: int = 1,
    device: str | torch.device = "cpu",
    compile: bool = False,
    options: dict[str, object] | None = None,
) -> SplitBenchRow:
    """Time ``dense`` and its pyramid twin (fixed ``lengths`` or keep ``ratios``) over ``encodings``, every batching.

    ``options``: further ``pyramidize`` options (distance, duplicity_attention, merge); they are named in the
    row's method column.

    ``compile``: run both through :func:`pyramid_bert.compiling.compile_model`; the warm-up pass compiles, so give
    ``warmup >= 1``.
    """

    pyramid = pyramidize(copy.deepcopy(dense), None if ratios else list(lengths), method=method, m=m,
                         keep_ratios=list(ratios) if ratios else None, **(options or {}))  # fmt: skip
    options_label = "".join(f"+{k}" if v is True else f"+{v}" for k, v in (options or {}).items() if v not in (False, "euclidean"))
    if compile:
        dense, pyramid = compile_model(copy.deepcopy(dense)), compile_model(pyramid)
    speed = measure_split_speed(
        pyramid, dense, encodings, batch_size=batch_size, device=torch.device(device), warmup=warmup, repeats=repeats
    )
    real, paper = speed["real_speedup"], speed["paper_speedup"]
    return SplitBenchRow(
        model=model_name, batch_size=batch_size, n=int(encodings["input_ids"].shape[1]), examples=speed["examples"],
        schedule="ratio" if ratios else "fixed", lengths=schedule_label(lengths, ratios),
        method=method + options_label + (" (compiled)" if compile else ""), m=m_label(m),
        dense_sorted_ms=1e3 * speed["seconds"]["dense/sorted"]["median"],
        pyramid_sorted_ms=1e3 * speed["seconds"]["pyramid/sorted"]["median"],
        real_speedup=real["median"], real_q25=real["q25"], real_q75=real["q75"],
        real_predicted=speed["real_predicted"], real_ratio=real["median"] / speed["real_predicted"],
        paper_speedup=paper["median"], paper_predicted=speed["paper_predicted"],
        vs_dense_dynamic=speed["speedups"]["pyramid/sorted vs dense/dynamic"]["median"],
        pyramid_sorted_vs_dense_padded=speed["speedups"]["pyramid/sorted vs dense/padded"]["median"],
    )  # fmt: skip


def format_split_table(rows: Sequence[SplitBenchRow]) -> str:
    """A Markdown table of whole-split rows: the real speedup first, the paper's protocol beside it."""
    lines = [
        "| model | B | examples | schedule | method | m | dense sorted ms | real speedup (IQR) | FLOPs | real / FLOPs | "
        "paper speedup | FLOPs (paper) | pyramid sorted vs dense dynamic | vs dense padded |",
        "|" + "---|" * 14,
    ]
    for r in rows:
        lines.append(
            f"| {r.model} | {r.batch_size} | {r.examples} | {r.lengths} | {r.method} | {r.m} | {r.dense_sorted_ms:.0f} | "
            f"{r.real_speedup:.2f} ({r.real_q25:.2f}-{r.real_q75:.2f}) | {r.real_predicted:.2f} | {r.real_ratio:.2f} | "
            f"{r.paper_speedup:.2f} | {r.paper_predicted:.2f} | {r.vs_dense_dynamic:.2f} | "
            f"{r.pyramid_sorted_vs_dense_padded:.2f} |"
        )
    return "\n".join(lines)


def task_encodings(task_name: Any, n: int | None, examples: int | None, seed: int = 0) -> dict[str, torch.Tensor]:
    """The test split of a catalog task (a name) or of a TaskData (e.g. from data files), tokenized with the
    built-in model's tokenizer (BERT uncased vocabulary) at N = ``n`` (default: the task's), as a seeded sample of
    ``examples`` (default: all)."""

    task = data.load_task(task_name, seed=seed) if isinstance(task_name, str) else task_name
    tokenizer = AutoTokenizer.from_pretrained(resolve_model("minilm-l6"))
    encodings = tokenize_split(tokenizer, task, "test", max_length=n)
    return take(encodings, subset_indices(len(encodings["labels"]), examples, seed))
