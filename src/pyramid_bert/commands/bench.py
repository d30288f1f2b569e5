"""``pyramid-bert bench``: dense vs pyramid inference time, measured side by side, against the FLOPs model."""

from __future__ import annotations

import argparse
from typing import Any

from pyramid_bert.cli.flags import (
    MAX_BATCH_SIZE,
    MAX_SEQUENCE_LENGTH,
    add_compile_argument,
    add_force_argument,
    add_precision_argument,
    batch_size_list,
    nonneg_int,
    positive_int,
    sequence_length_int,
    text_columns,
)
from pyramid_bert.spec import add_option_arguments, options_from_args

DEFAULT_M = "1,0.1,0.2,0.3,0.4,k-1"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "bench",
        help="measure pyramid vs dense inference speed against the FLOPs model",
        description=(
            "For a model geometry (random weights) or a checkpoint: dense time, pyramid time, measured speedup "
            "T(dense)/T(pyramid), predicted speedup, their ratio, the share of time in selection, and the speedup "
            "of the same schedule with selection removed (First-k). Repeats are interleaved in one process."
        ),
    )
    parser.add_argument(
        "--model", default="minilm-l6",
        help="a geometry with random weights (minilm-l6, bert-base, and per family distilbert-, albert-, deberta-, "
        "modernbert- with -small or -base) or a checkpoint path",
    )  # fmt: skip
    parser.add_argument(
        "--batch-sizes", type=batch_size_list, default="32,1",
        help=f"comma-separated batch sizes, each 1..{MAX_BATCH_SIZE} (default 32,1)",
    )  # fmt: skip
    parser.add_argument(
        "--n", type=sequence_length_int, default=None,
        help=f"input length N, 2..{MAX_SEQUENCE_LENGTH} and at most a checkpoint's limit (default 128; with --task, the task's)",
    )  # fmt: skip
    parser.add_argument(
        "--configs",
        default="3:0.25",
        help="'table9' (the paper's grid), or comma-separated PRUNE_UPTO:P pairs, or explicit lengths "
        "separated by '/' and ';' e.g. '32/32/32/32/32/32;80/50/32/32/32/32' (default 3:0.25)",
    )
    parser.add_argument("--method", default="coreset", help="selection method (default coreset)")
    parser.add_argument(
        "--m", default=DEFAULT_M, help=f"comma-separated m values: ints, fractions, k-1 (default {DEFAULT_M})"
    )
    parser.add_argument("--repeats", type=positive_int, default=7, help="timed interleaved repeats (default 7)")
    parser.add_argument("--warmup", type=nonneg_int, default=2, help="untimed warm-up rounds (default 2)")
    parser.add_argument("--threads", type=positive_int, default=None, help="torch threads (default: torch's default)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    parser.add_argument(
        "--torch-rounds",
        action="store_true",
        help="run k-center's rounds as torch ops (the CUDA path) instead of the compiled CPU loop, for comparison",
    )
    parser.add_argument("--csv", default=None, help="also write the rows to this CSV file")
    add_force_argument(parser, "--csv")
    add_precision_argument(parser, "; with --latency: the precision of the variants (default: both)")
    add_split_arguments(parser)
    add_latency_arguments(parser)
    parser.set_defaults(func=run)


def add_split_arguments(parser: argparse.ArgumentParser) -> None:
    """Whole-split mode: real inputs of a task, every batching mode, fixed or keep-ratio schedules."""
    group = parser.add_argument_group(
        "real inputs (--task)",
        "time whole passes over a task's test split instead of one random batch: dense and pyramid on the same "
        "batches, padded to N (the paper), padded per batch, and length-sorted (the real speedup)",
    )
    group.add_argument("--task", help="a catalog task, e.g. rt-polarity (its N unless --n is given)")
    group.add_argument(
        "--train", metavar="FILE",
        help="your own labelled texts instead of --task (CSV, TSV, JSONL, datasets folder; its held-out test split "
        "is timed; N: --n, else the 95th percentile of the train lengths)",
    )  # fmt: skip
    group.add_argument("--text-column", type=text_columns, action="extend", metavar="NAME", help="with --train (text)")
    group.add_argument("--label-column", default="label", help="with --train (default label)")
    group.add_argument("--examples", type=positive_int, default=1000, help="seeded sample of the split (default 1000)")
    add_compile_argument(group)
    group.add_argument(
        "--schedule", default="fixed", choices=("fixed", "ratio"),
        help="fixed lengths at N (the paper), or keep ratios of each example's real length; with ratio, "
        "--configs U:P gives Eq. 5 ratios and '/'-separated values are ratios",
    )  # fmt: skip
    add_option_arguments(group, skip=("m", "position"))  # bench's --m is a list of values


def add_latency_arguments(parser: argparse.ArgumentParser) -> None:
    """Deployment mode: per-request latency at batch 1 and sorted-batch throughput, dense and pyramid, fp32 and int8."""
    group = parser.add_argument_group(
        "deployment speed (--latency)",
        "dense and pyramid at fp32 and int8 (all against dense fp32, one process): batch size 1 in --batch-sizes "
        "times single unpadded sentences one call at a time (p50, p95), the others a pass over the length-sorted "
        "split; a task's test split (--task, default rt-polarity), the first schedule of --configs and first --m",
    )  # fmt: skip
    group.add_argument("--latency", action="store_true", help="measure deployment speed instead of the tables above")
    group.add_argument("--requests", type=positive_int, default=200, help="sentences timed one by one (default 200)")


def request_from_args(args: argparse.Namespace) -> Any:
    """The :class:`~pyramid_bert.measure.bench_run.BenchRequest` of the parsed flags."""
    from pyramid_bert.measure.bench_run import BenchRequest

    return BenchRequest(
        model=args.model, batch_sizes=tuple(args.batch_sizes), n=args.n, configs=args.configs, method=args.method,
        m=args.m, repeats=args.repeats, warmup=args.warmup, threads=args.threads, device=args.device,
        torch_rounds=args.torch_rounds, csv=args.csv, force=args.force, task=args.task, train=args.train,
        text_columns=tuple(args.text_column) if args.text_column else None, label_column=args.label_column,
        examples=args.examples, compile=args.compile, schedule=args.schedule, precision=args.precision,
        latency=args.latency, requests=args.requests,
        options=options_from_args(args, skip=("m",)).changed(),
    )  # fmt: skip


def run(args: argparse.Namespace) -> int:
    from pyramid_bert.measure.bench_run import run_bench

    run_bench(request_from_args(args))
    return 0
