"""``pyramid-bert bench``: dense vs pyramid inference time, measured side by side, against the FLOPs model."""

from __future__ import annotations

import argparse

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
    parser.add_argument("--batch-sizes", default="32,1", help="comma-separated batch sizes (default 32,1)")
    parser.add_argument("--n", type=int, default=128, help="input length N (default 128)")
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
    parser.add_argument("--repeats", type=int, default=7, help="timed interleaved repeats (default 7)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed warm-up rounds (default 2)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's default)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    parser.add_argument(
        "--torch-rounds",
        action="store_true",
        help="run k-center's rounds as torch ops (the CUDA path) instead of the compiled CPU loop, for comparison",
    )
    parser.add_argument("--csv", default=None, help="also write the rows to this CSV file")
    parser.set_defaults(func=run)


def parse_batch_sizes(text: str) -> list[int]:
    """``--batch-sizes``: '32,1' -> [32, 1]; each an int >= 1."""
    from pyramid_bert.errors import ConfigError

    sizes = []
    for item in (part.strip() for part in text.split(",")):
        if not item.isdigit() or int(item) < 1:
            raise ConfigError(f"--batch-sizes: {item!r} is not an int >= 1; give comma-separated sizes, e.g. 32,1")
        sizes.append(int(item))
    return sizes


def parse_m_values(text: str) -> list[int | float | None]:
    """``--m``: '1,0.2,k-1' -> [1, 0.2, None] (``none`` is also k-1)."""
    from pyramid_bert.errors import ConfigError
    from pyramid_bert.run_config import parse_m

    values = [parse_m(item) for item in (part.strip() for part in text.split(",")) if item]
    if not values:
        raise ConfigError(f"--m: give at least one value (ints >= 1, fractions in (0, 1), k-1), got {text!r}")
    return values


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


def check_counts(args: argparse.Namespace) -> None:
    """--n >= 2, --repeats >= 1, --warmup >= 0, --threads >= 1 (when given)."""
    from pyramid_bert.errors import ConfigError

    for name, value, low in (("--n", args.n, 2), ("--repeats", args.repeats, 1), ("--warmup", args.warmup, 0)):
        if value < low:
            raise ConfigError(f"{name}: must be an int >= {low}, got {value}")
    if args.threads is not None and args.threads < 1:
        raise ConfigError(f"--threads: must be an int >= 1, got {args.threads}")


def run(args: argparse.Namespace) -> int:
    import torch

    from pyramid_bert.bench import bench_schedule, format_table, load_bench_model
    from pyramid_bert.io import write_csv_atomic
    from pyramid_bert.run_config import resolve_device

    device = resolve_device(args.device)
    check_counts(args)
    if args.threads:
        torch.set_num_threads(args.threads)
    batch_sizes = parse_batch_sizes(args.batch_sizes)
    m_values = parse_m_values(args.m)
    model = load_bench_model(args.model, args.n).to(device)
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
    print()
    print(format_table(rows))
    if args.csv:
        write_csv_atomic(args.csv, [row.to_dict() for row in rows])
        print(f"wrote {args.csv}")
    return 0
