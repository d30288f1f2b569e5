"""``pyramid-bert evaluate``: a checkpoint's task metric, measured vs predicted speedup, and memory.

Examples::

    pyramid-bert evaluate runs/x
    pyramid-bert evaluate runs/dense --only-infer coreset --p 0.25 --prune-upto 2   # Table 6 "only infer"
"""

from __future__ import annotations

import argparse
from typing import Any

from pyramid_bert.commands.finetune import (
    add_runtime_arguments,
    add_schedule_arguments,
    prepare_runtime,
    print_table,
)


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "evaluate", help="score a checkpoint, measure its speedup and memory",
        description="Task metric on a split; speedup T(dense)/T(pyramid) with the same weights, inputs, batch "
        "and threads, interleaved repeats, median [q25, q75]; predicted speedup; attention-space reduction.",
    )  # fmt: skip
    parser.add_argument("checkpoint", help="folder written by `pyramid-bert finetune`")
    parser.add_argument("--task", help="evaluate on this task instead of the one trained on")
    parser.add_argument("--split", default="test", choices=("dev", "test"))
    parser.add_argument(
        "--only-infer", metavar="METHOD",
        help="apply this selection method at inference only to a densely fine-tuned checkpoint; "
        "schedule from --lengths or --p/--prune-upto (Table 6)",
    )  # fmt: skip
    add_schedule_arguments(parser, method_default=None)
    parser.add_argument("--no-speed", action="store_true", help="skip the speed measurement")
    parser.add_argument("--memory", action="store_true", help="measure peak memory (fresh processes)")
    parser.add_argument("--repeats", type=int, default=7, help="timed interleaved repeats (default 7)")
    parser.add_argument("--batch-size", type=int, help="inference batch (default: the run's, 128)")
    parser.add_argument("--max-examples", type=int, help="score a seeded random subset of the split")
    parser.add_argument("--device", help="cpu, cuda or cuda:N (default: the run's)")
    parser.add_argument("--glue-dir")
    parser.add_argument("--json-out", help="also write the result JSON here")
    add_runtime_arguments(parser)
    parser.set_defaults(func=run)


def only_infer_spec(args: argparse.Namespace) -> dict[str, Any] | None:
    if not args.only_infer:
        return None
    spec: dict[str, Any] = {"method": args.only_infer, "m": args.m, "position": args.position}
    for key in ("lengths", "p", "prune_upto", "pool_windows"):
        if getattr(args, key) is not None:
            spec[key] = getattr(args, key)
    return spec


def fmt_speedup(stats: dict[str, float] | None) -> str:
    if not stats:
        return "-"
    return f"{stats['median']:.2f}X  [{stats['q25']:.2f}, {stats['q75']:.2f}]"


def check_counts(args: argparse.Namespace) -> None:
    """--repeats, --batch-size and --max-examples (when given) are ints >= 1."""
    from pyramid_bert.errors import ConfigError

    for name, value in (("--repeats", args.repeats), ("--batch-size", args.batch_size),
                        ("--max-examples", args.max_examples)):  # fmt: skip
        if value is not None and value < 1:
            raise ConfigError(f"{name}: must be an int >= 1, got {value}")


def run(args: argparse.Namespace) -> int:
    from pyramid_bert.checkpoint import atomic_write_json
    from pyramid_bert.evaluate import evaluate_checkpoint

    check_counts(args)
    prepare_runtime(args)
    result = evaluate_checkpoint(
        args.checkpoint, split=args.split, task=args.task, measure_speed=not args.no_speed,
        measure_memory=args.memory, only_infer=only_infer_spec(args), batch_size=args.batch_size,
        max_examples=args.max_examples, device=args.device, glue_dir=args.glue_dir, timing_repeats=args.repeats,
    )  # fmt: skip
    rows = [
        ("task / split", f"{result['task']} / {result['split']} ({result['examples']} examples)"),
        ("method", result["method"] + (" (only infer)" if result["only_infer"] else "")),
        ("lengths", str(result["lengths"]) if result["lengths"] is not None else "dense"),
        (result["metric_name"], f"{result['metric']:.4f}"),
    ]
    rows += [(name, f"{value:.4f}") for name, value in result["scores"].items() if name != result["metric_name"]]
    speed = result.get("speed")
    if speed:
        rows.append(
            (
                "inference speedup",
                fmt_speedup(speed["speedup"]) + f"  (batch {speed['batch_size']}, "
                f"N {speed['seq_len']}, {speed['threads']} threads, {speed['repeats']} repeats)",
            )
        )
        rows.append(
            (
                "  dense / pyramid",
                f"{speed['dense_seconds']['median'] * 1000:.1f} ms / "
                f"{speed['pyramid_seconds']['median'] * 1000:.1f} ms per batch",
            )
        )
        if speed.get("train_step"):
            step = speed["train_step"]
            rows.append(
                ("train-step speedup", fmt_speedup(step["speedup"]) + f"  (fwd+bwd, batch {step['batch_size']})")
            )
            rows.append(
                (
                    "  dense / pyramid",
                    f"{step['dense_seconds']['median'] * 1000:.1f} ms / "
                    f"{step['pyramid_seconds']['median'] * 1000:.1f} ms per step",
                )
            )
    rows.append(("predicted speedup", f"{result['predicted_speedup']:.2f}X"))
    rows.append(("space reduction (paper's formula)", f"{result['space_reduction']:.1%}"))
    rows.append(("space reduction (exact)", f"{result['space_reduction_exact']:.1%}"))
    for key, memory in (result.get("memory") or {}).items():
        rows.append(
            (f"peak mem {key}", f"{memory['peak_mb']:.0f} MB (step adds {memory.get('step_mb', float('nan')):.0f} MB)")
        )
    print_table(rows)
    if args.json_out:
        atomic_write_json(args.json_out, result)
    suffix = "-only-infer" if result["only_infer"] else ""
    print(
        f"result JSON: {args.checkpoint}/eval-{result['split']}{suffix}.json"
        + (f", {args.json_out}" if args.json_out else "")
    )
    return 0
