"""What ``pyramid-bert bench`` runs: a :class:`BenchRequest` in, the rows of :mod:`pyramid_bert.measure.bench` out,
each printed as it is measured, then the table and (optionally) a CSV file.

Two modes: one random batch of a model geometry or checkpoint at N (:func:`~pyramid_bert.measure.bench.bench_schedule`),
or, with ``task`` or ``train``, whole passes over a task's test split under every batching
(:func:`~pyramid_bert.measure.bench.bench_split`). Schedules are given as text (``configs``): see
:func:`parse_configs` and :func:`parse_ratio_configs`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from pyramid_bert.data.user_task import DataFiles, load_for_model
from pyramid_bert.errors import ConfigError
from pyramid_bert.io import check_output_file, write_csv_atomic
from pyramid_bert.measure.bench import (
    BenchRow,
    SplitBenchRow,
    bench_schedule,
    bench_split,
    format_split_table,
    format_table,
    load_bench_model,
    task_encodings,
)
from pyramid_bert.measure.latency import Sample, deploy_samples, deploy_variants, format_deploy_table, summarize
from pyramid_bert.patch.quantize import quantize
from pyramid_bert.schedule import (
    sequence_lengths,
    sequence_ratios,
    unique_grid,
    validate_lengths,
    validate_ratios,
)
from pyramid_bert.spec import PyramidSettings, SelectionOptions, parse_m_list
from pyramid_bert.training.config import resolve_device

#: N of the one-batch mode when none is given.
DEFAULT_N = 128
#: The built-in model whose tokenizer reads a task's texts (bench times geometries; any BERT vocabulary will do).
TOKENIZER_MODEL = "minilm-l6"


@dataclass(frozen=True, kw_only=True)
class BenchRequest:
    """One ``bench`` run; the fields are the command's flags, its defaults are theirs (``pyramid-bert bench --help``).

    ``n``: None means :data:`DEFAULT_N`, or with ``task`` / ``train`` the task's N. ``m``: comma-separated values of m
    (ints, fractions, ``k-1``). ``options``: selection options that differ from their defaults (pyramidize keywords;
    whole-split mode only). ``train`` with ``text_columns`` and ``label_column``: the user's labelled texts instead
    of ``task`` (its held-out test split is timed).
    """

    model: str
    batch_sizes: Sequence[int]
    configs: str
    method: str
    m: str
    repeats: int
    warmup: int
    device: str
    examples: int
    schedule: str
    label_column: str
    n: int | None = None
    threads: int | None = None
    torch_rounds: bool = False
    csv: str | None = None
    force: bool = False
    task: str | None = None
    train: str | None = None
    text_columns: Sequence[str] | None = None
    compile: bool = False
    options: dict[str, object] = field(default_factory=dict)
    #: None: fp32 (with ``latency``: both fp32 and int8 variants).
    precision: str | None = None
    #: Deployment mode (:mod:`pyramid_bert.measure.latency`): per-request latency and sorted-batch throughput.
    latency: bool = False
    #: Deployment mode: sentences timed one at a time.
    requests: int = 200

    @property
    def whole_split(self) -> bool:
        """Whole passes over real inputs (``task`` or ``train``) rather than one random batch."""
        return bool(self.task or self.train)


def parse_configs(text: str, n: int, num_layers: int) -> list[list[int]]:
    """Schedules from 'table9', 'U:P,U:P' or explicit '/'-separated lengths joined by ';'."""
    if text == "table9":
        return [sequence_lengths(n, num_layers, p, upto) for upto, p in unique_grid()]
    schedules = []
    if "/" in text:
        for part in text.split(";"):
            try:
                lengths = [int(value) for value in part.split("/")]
            except ValueError:
                raise ConfigError(f"--configs: {part!r} is not '/'-separated ints") from None
            try:
                schedules.append(validate_lengths(lengths, num_layers, n))
            except ConfigError as error:
                raise ConfigError(f"--configs: {error}") from None
        return schedules
    for part in text.split(","):
        try:
            upto_text, p_text = part.split(":")
            upto, p = int(upto_text), float(p_text)
        except ValueError:
            raise ConfigError(f"--configs: {part!r} is not PRUNE_UPTO:P (e.g. 3:0.25), 'table9' or lengths") from None
        if not 1 <= upto <= num_layers or not 0.0 < p <= 1.0:
            raise ConfigError(
                f"--configs: {part!r}: PRUNE_UPTO must be a layer in 1..{num_layers} (the model's encoder layers) "
                "and P a pruning ratio in (0, 1]"
            )
        schedules.append(sequence_lengths(n, num_layers, p, upto))
    return schedules


def parse_ratio_configs(text: str, num_layers: int) -> list[list[float]]:
    """Keep-ratio schedules from 'table9', 'U:P,U:P' (Eq. 5 as ratios) or '/'-separated ratios joined by ';'."""
    if text == "table9":
        return [sequence_ratios(num_layers, p, upto) for upto, p in unique_grid()]
    schedules = []
    for part in text.split(";" if "/" in text else ","):
        try:
            values = [float(value) for value in part.split("/")] if "/" in part else None
            upto, p = (None, None) if values else part.split(":")
            upto, p = (None, None) if values else (int(upto), float(p))
        except ValueError:
            raise ConfigError(f"--configs: {part!r} is not PRUNE_UPTO:P, 'table9' or '/'-separated ratios") from None
        schedules.append(validate_ratios(values, num_layers) if values else sequence_ratios(num_layers, p, upto))
    return schedules


def check_model_length(model: nn.Module, n: int) -> None:
    """N must fit the model's position embeddings (a checkpoint's limit; geometries are built for any N)."""
    limit = int(getattr(model.config, "max_position_embeddings", n))
    if n > limit:
        raise ConfigError(f"--n: must be at most {limit} (the position embeddings of --model), got {n}")


def split_task(request: BenchRequest) -> Any:
    """``task`` (a name), or the TaskData of ``train`` and its columns (tokenized with the built-in model's tokenizer)."""
    if request.task and request.train:
        raise ConfigError("--task / --train: give a task name or your own data file, not both")
    if not request.train:
        return request.task
    columns = tuple(request.text_columns or ["text"])
    if len(columns) > 2:
        raise ConfigError(f"--text-column: one column, or two for sentence pairs; got {', '.join(columns)}")
    files = DataFiles(request.train, text_columns=columns, label_column=request.label_column)
    return load_for_model(files, TOKENIZER_MODEL, max_length=request.n, seed=0)


def print_now(line: str) -> None:
    """Print ``line`` and flush (rows appear as they are measured, also when the output is piped)."""
    print(line, flush=True)


def run_bench(request: BenchRequest, *, echo: Callable[[str], None] = print_now) -> list[BenchRow] | list[SplitBenchRow]:
    """Measure every (batch size, schedule, m) of ``request``; ``echo`` each row's table line as it is measured, then
    the whole table; write ``request.csv`` (refused before any work when it exists, unless ``force``). Returns the
    rows. ``threads`` sets torch's intra-op threads of this process."""
    device = resolve_device(request.device)
    if request.csv:
        check_output_file(request.csv, "--csv", force=request.force)
    if not (request.whole_split or request.latency) and request.options:
        raise ConfigError("--distance/--duplicity-attention/--merge: with --task only (whole passes over real inputs)")
    if not (request.whole_split or request.latency) and request.compile:
        raise ConfigError("--compile: with --task, --train or --latency only (whole passes over real inputs)")
    if request.threads:
        torch.set_num_threads(request.threads)
    m_values = parse_m_list(request.m)
    n = DEFAULT_N if request.n is None else request.n
    model = load_bench_model(request.model, n).to(device)
    if not request.latency:  # the latency mode builds each precision's variants itself
        quantize(model, request.precision or "fp32")  # dense and the pyramids copied from it run at the precision
    if request.latency:
        rows, table = _bench_latency(request, model, echo)
    elif request.whole_split:
        rows, table = _bench_whole_split(request, model, m_values, device, echo)
    else:
        rows, table = _bench_one_batch(request, model, n, m_values, device, echo)
    echo("")
    echo(table)
    if request.csv:
        write_csv_atomic(request.csv, [row.to_dict() for row in rows])
        echo(f"wrote {request.csv}")
    return rows


def _bench_latency(
    request: BenchRequest, model: nn.Module, echo: Callable[[str], None]
) -> tuple[list[Sample], str]:
    """Deployment speed of dense and pyramid variants (fp32, int8) of ``model`` on single sentences and sorted
    batches of a task's test split (rt-polarity unless ``task`` / ``train``): every timed call, and the table."""
    task = split_task(request) if request.whole_split else "rt-polarity"
    encodings = task_encodings(task, request.n, request.examples)
    n, layers = int(encodings["input_ids"].shape[1]), model.config.num_hidden_layers
    check_model_length(model, n)
    ratios = parse_ratio_configs(request.configs, layers)[0] if request.schedule == "ratio" else None
    lengths = None if ratios else parse_configs(request.configs, n, layers)[0]
    options = SelectionOptions.from_dict({**request.options, "m": parse_m_list(request.m)[0]})
    settings = PyramidSettings(lengths, request.method, keep_ratios=ratios, options=options)
    echo(f"# {request.model} on {request.task or request.train or task} test ({len(encodings['input_ids'])} examples, "
         f"N={n}, {request.requests} requests) threads={torch.get_num_threads()} repeats={request.repeats} "
         f"{settings.to_dict()}")  # fmt: skip
    samples = deploy_samples(
        model, settings, encodings, batch_sizes=request.batch_sizes, requests=request.requests,
        repeats=request.repeats, warmup=request.warmup, variants=deploy_variants(request.precision, compile=request.compile),
    )  # fmt: skip
    return samples, format_deploy_table(summarize(samples))


def _bench_one_batch(
    request: BenchRequest, model: nn.Module, n: int, m_values: list, device: torch.device, echo: Callable[[str], None]
) -> tuple[list[BenchRow], str]:
    """One random ``[batch, n]`` batch per (batch size, schedule): a row per m."""
    check_model_length(model, n)
    schedules = parse_configs(request.configs, n, model.config.num_hidden_layers)
    echo(f"# {request.model} N={n} threads={torch.get_num_threads()} device={device} repeats={request.repeats}")
    rows: list[BenchRow] = []
    for batch_size in request.batch_sizes:
        for lengths in schedules:
            new = bench_schedule(
                model, model_name=request.model, batch_size=batch_size, n=n, lengths=lengths, method=request.method,
                m_values=m_values, repeats=request.repeats, warmup=request.warmup, device=device,
                compiled=not request.torch_rounds,
            )  # fmt: skip
            rows.extend(new)
            echo(format_table(new).split("\n", 2)[2])
    return rows, format_table(rows)


def _bench_whole_split(
    request: BenchRequest, model: nn.Module, m_values: list, device: torch.device, echo: Callable[[str], None]
) -> tuple[list[SplitBenchRow], str]:
    """Whole passes over real inputs, the real speedup beside the paper's: a row per (batch, schedule, m, compile)."""
    encodings = task_encodings(split_task(request), request.n, request.examples)
    n, layers = int(encodings["input_ids"].shape[1]), model.config.num_hidden_layers
    check_model_length(model, n)
    if request.schedule == "ratio":
        schedules = [(None, ratios) for ratios in parse_ratio_configs(request.configs, layers)]
    else:
        schedules = [(lengths, None) for lengths in parse_configs(request.configs, n, layers)]
    echo(f"# {request.model} on {request.task or request.train} test ({len(encodings['input_ids'])} examples, N={n}) "
         f"threads={torch.get_num_threads()} device={device} repeats={request.repeats}")  # fmt: skip
    rows: list[SplitBenchRow] = []
    for batch_size in request.batch_sizes:
        for lengths, ratios in schedules:
            for m in m_values if request.method == "coreset" else [1]:
                for compiled in (False, True) if request.compile else (False,):
                    row = bench_split(
                        model, encodings, model_name=request.model, batch_size=batch_size, lengths=lengths,
                        ratios=ratios, method=request.method, m=m, repeats=request.repeats,
                        warmup=max(1, request.warmup), device=device, compile=compiled, options=request.options,
                    )  # fmt: skip
                    rows.append(row)
                    echo(format_split_table([row]).split("\n", 2)[2])
    return rows, format_split_table(rows)
