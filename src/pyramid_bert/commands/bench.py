"""``pyramid-bert bench``: dense vs pyramid inference time, measured side by side, against the FLOPs model."""

from __future__ import annotations

import argparse
from typing import Any

from pyramid_bert.cli.flags import (
    MAX_BATCH_SIZE,
    MAX_SEQUENCE_LENGTH,
    add_compile_argument,
    add_force_argument,
    batch_size_list,
    load_files_task,
    nonneg_int,
    positive_int,
    sequence_length_int,
    text_columns,
)
from pyramid_bert.errors import ConfigError
from pyramid_bert.spec import add_option_arguments, options_from_args, parse_m_list

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
    parser.add_argument("--model", default="minilm-l6", help="minilm-l6 | bert-base (geometries) or a checkpoint path")
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
    add_split_arguments(parser)
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


def parse_configs(text: str, n: int, num_layers: int) -> list[list[int]]:
    """Schedules from 'table9', 'U:P,U:P' or explicit '/'-separated lengths joined by ';'."""
    from pyramid_bert.errors import ConfigError
    from pyramid_bert.schedule import sequence_lengths, unique_grid, validate_lengths

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
    from pyramid_bert.errors import ConfigError
    from pyramid_bert.schedule import sequence_ratios, unique_grid, validate_ratios

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


def run_split(args: argparse.Namespace, model, batch_sizes: list[int], m_values: list, device) -> int:
    """``bench --task``: whole passes over real inputs, the real speedup beside the paper's."""
    import torch

    from pyramid_bert.measure.bench import bench_split, format_split_table, task_encodings

    encodings = task_encodings(split_task(args), args.n if args.n_given else None, args.examples)
    n, layers = int(encodings["input_ids"].shape[1]), model.config.num_hidden_layers
    check_model_length(model, n)
    if args.schedule == "ratio":
        schedules = [(None, ratios) for ratios in parse_ratio_configs(args.configs, layers)]
    else:
        schedules = [(lengths, None) for lengths in parse_configs(args.configs, n, layers)]
    print(f"# {args.model} on {args.task or args.train} test ({len(encodings['input_ids'])} examples, N={n}) "
          f"threads={torch.get_num_threads()} device={device} repeats={args.repeats}")  # fmt: skip
    rows = []
    for batch_size in batch_sizes:
        for lengths, ratios in schedules:
            for m in m_values if args.method == "coreset" else [1]:
                for compiled in (False, True) if args.compile else (False,):
                    row = bench_split(
                        model, encodings, model_name=args.model, batch_size=batch_size, lengths=lengths,
                        ratios=ratios, method=args.method, m=m, repeats=args.repeats, warmup=max(1, args.warmup),
                        device=device, compile=compiled, options=size_options(args),
                    )  # fmt: skip
                    rows.append(row)
                    print(format_split_table([row]).split("\n", 2)[2], flush=True)
    return print_and_save(format_split_table(rows), rows, args.csv)


def split_task(args: argparse.Namespace) -> Any:
    """``--task`` (a name), or the task of ``--train`` and its columns (tokenized with the built-in model's tokenizer)."""
    from pyramid_bert.data.user_task import DataFiles

    if args.task and args.train:
        raise ConfigError("--task / --train: give a task name or your own data file, not both")
    if not args.train:
        return args.task
    columns = tuple(args.text_column or ["text"])
    if len(columns) > 2:
        raise ConfigError(f"--text-column: one column, or two for sentence pairs; got {', '.join(columns)}")
    files = DataFiles(args.train, text_columns=columns, label_column=args.label_column)
    return load_files_task(files, "minilm-l6", max_length=args.n if args.n_given else None, seed=0)


def check_model_length(model: Any, n: int) -> None:
    """N must fit the model's position embeddings (a checkpoint's limit; geometries are built for any N)."""
    limit = int(getattr(model.config, "max_position_embeddings", n))
    if n > limit:
        raise ConfigError(f"--n: must be at most {limit} (the position embeddings of --model), got {n}")


def size_options(args: argparse.Namespace) -> dict[str, object]:
    """The selection options given on the command line (those not at their defaults), as pyramidize keywords."""
    return options_from_args(args, skip=("m",)).changed()


def check_counts(args: argparse.Namespace) -> None:
    """--n >= 2, --repeats >= 1, --warmup >= 0, --threads >= 1 (when given)."""
    from pyramid_bert.errors import ConfigError

    checks = (("--n", args.n, 2), ("--repeats", args.repeats, 1), ("--warmup", args.warmup, 0), ("--examples", args.examples, 1))
    for name, value, low in checks:
        if value < low:
            raise ConfigError(f"{name}: must be an int >= {low}, got {value}")
    if args.threads is not None and args.threads < 1:
        raise ConfigError(f"--threads: must be an int >= 1, got {args.threads}")


def run(args: argparse.Namespace) -> int:
    import torch

    from pyramid_bert.errors import ConfigError
    from pyramid_bert.io import check_output_file
    from pyramid_bert.measure.bench import bench_schedule, format_table, load_bench_model
    from pyramid_bert.training.config import resolve_device

    device = resolve_device(args.device)
    args.n_given = args.n is not None
    args.n = 128 if args.n is None else args.n
    check_counts(args)
    if args.csv:
        check_output_file(args.csv, "--csv", force=args.force)
    if not (args.task or args.train) and size_options(args):
        raise ConfigError("--distance/--duplicity-attention/--merge: with --task only (whole passes over real inputs)")
    if not (args.task or args.train) and args.compile:
        raise ConfigError("--compile: with --task or --train only (whole passes over real inputs)")
    if args.threads:
        torch.set_num_threads(args.threads)
    batch_sizes = args.batch_sizes
    m_values = parse_m_list(args.m)
    model = load_bench_model(args.model, args.n).to(device)
    if args.task or args.train:
        return run_split(args, model, batch_sizes, m_values, device)
    check_model_length(model, args.n)
    schedules = parse_configs(args.configs, args.n, model.config.num_hidden_layers)
    print(f"# {args.model} N={args.n} threads={torch.get_num_threads()} device={device} repeats={args.repeats}")
    rows = []
    for batch_size in batch_sizes:
        for lengths in schedules:
            new = bench_schedule(
                model,
                model_name=args.model,
                batch_size=batch_size,
                n=args.n,
                lengths=lengths,
                method=args.method,
                m_values=m_values,
                repeats=args.repeats,
                warmup=args.warmup,
                device=device,
                compiled=not args.torch_rounds,
            )
            rows.extend(new)
            print(format_table(new).split("\n", 2)[2], flush=True)
    return print_and_save(format_table(rows), rows, args.csv)


def print_and_save(table: str, rows: list, csv_path: str | None) -> int:
    """Print the final table; write the rows to ``csv_path`` (atomically) when given; exit code 0."""
    from pyramid_bert.io import write_csv_atomic

    print()
    print(table)
    if csv_path:
        write_csv_atomic(csv_path, [row.to_dict() for row in rows])
        print(f"wrote {csv_path}")
    return 0
