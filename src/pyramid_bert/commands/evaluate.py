"""``pyramid-bert evaluate``: a checkpoint's task metric, measured vs predicted speedup, and memory.

Examples::

    pyramid-bert evaluate runs/x
    pyramid-bert evaluate runs/dense --only-infer coreset --p 0.25 --prune-upto 2   # Table 6 "only infer"
"""

from __future__ import annotations

import argparse
from typing import Any

from pyramid_bert.cli.flags import (
    add_compile_argument,
    add_data_arguments,
    add_force_argument,
    add_precision_argument,
    batch_size_int,
    data_files,
    load_files_task,
    positive_int,
)
from pyramid_bert.commands.finetune import (
    add_ratio_arguments,
    add_runtime_arguments,
    add_schedule_arguments,
    prepare_runtime,
    print_table,
)
from pyramid_bert.spec import options_from_args


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "evaluate", help="score a checkpoint, measure its speedup and memory",
        description="Task metric on a split; speedup T(dense)/T(pyramid) with the same weights, inputs, batch "
        "and threads, interleaved repeats, median [q25, q75]; predicted speedup; attention-space reduction.",
    )  # fmt: skip
    parser.add_argument(
        "checkpoint", help="folder written by `finetune` or `compress`, or any save_pretrained (pyramid) classifier"
    )
    parser.add_argument("--task", help="evaluate on this task instead of the one trained on")
    add_data_arguments(parser)
    parser.add_argument("--split", default="test", choices=("dev", "test"))
    parser.add_argument(
        "--only-infer", metavar="METHOD",
        help="apply this selection method at inference only to a densely fine-tuned checkpoint; "
        "schedule from --lengths or --p/--prune-upto (Table 6)",
    )  # fmt: skip
    add_schedule_arguments(parser, method_default=None)
    add_ratio_arguments(parser)
    parser.add_argument("--no-speed", action="store_true", help="skip the speed measurement")
    parser.add_argument("--memory", action="store_true", help="measure peak memory (fresh processes)")
    parser.add_argument("--repeats", type=positive_int, default=5, help="timed interleaved repeats over the split (default 5)")
    parser.add_argument(
        "--timing-examples", type=positive_int,
        help="time a seeded sample of this many evaluated examples (default: all of them)",
    )  # fmt: skip
    parser.add_argument("--batch-size", type=batch_size_int, help="inference batch (default: the run's, 128)")
    parser.add_argument("--max-examples", type=positive_int, help="score a seeded random subset of the split")
    parser.add_argument("--device", help="cpu, cuda or cuda:N (default: the run's)")
    add_precision_argument(parser, "; the speedup is against the dense model at the same precision")
    parser.add_argument("--glue-dir")
    parser.add_argument("--json-out", help="also write the result JSON here")
    add_force_argument(parser, "--json-out")
    add_compile_argument(parser)
    add_runtime_arguments(parser)
    parser.set_defaults(func=run)


def only_infer_spec(args: argparse.Namespace) -> dict[str, Any] | None:
    if not args.only_infer:
        return None
    spec: dict[str, Any] = {"method": args.only_infer, **options_from_args(args).to_dict()}
    if args.schedule != "fixed":
        spec["schedule"] = args.schedule
    for key in ("lengths", "p", "prune_upto", "pool_windows", "keep_ratios", "keep_thresholds"):
        if getattr(args, key) is not None:
            spec[key] = getattr(args, key)
    return spec


def fmt_speedup(stats: dict[str, float] | None) -> str:
    if not stats:
        return "-"
    return f"{stats['median']:.2f}X  [{stats['q25']:.2f}, {stats['q75']:.2f}]"


def speed_rows(speed: dict[str, Any] | None) -> list[tuple[str, str]]:
    """Table rows for a measured speed dict (see :func:`pyramid_bert.measure.speed.measure_split_speed`)."""
    if not speed:
        return []
    rows = [
        ("real speedup", fmt_speedup(speed["real_speedup"]) + f"  (both length-sorted, padded per batch; "
         f"FLOPs model {speed['real_predicted']:.2f}X)"),
        ("paper speedup", fmt_speedup(speed["paper_speedup"]) + f"  (both padded to N = {speed['seq_len']}; "
         f"FLOPs model {speed['paper_predicted']:.2f}X)"),
        ("  timed", f"{speed['examples']} examples, batch {speed['batch_size']}, {speed['threads']} threads, "
         f"{speed['repeats']} interleaved repeats over the split"),
    ]  # fmt: skip
    for name, stats in speed["seconds"].items():
        rows.append((f"  {name}", f"{stats['median']:.3f} s per pass"))
    for pair, stats in speed["speedups"].items():
        rows.append((f"  {pair}", fmt_speedup(stats) + f"  (FLOPs {speed['predicted'][pair]:.2f}X)"))
    step = speed.get("train_step")
    if step:
        for mode, stats in step["speedups"].items():
            dense, pyramid = step["seconds"][f"dense/{mode}"], step["seconds"][f"pyramid/{mode}"]
            rows.append((f"train-step speedup, {mode}", fmt_speedup(stats) + f"  (fwd+bwd, batch {step['batch_size']}, "
                         f"{step['widths'][mode]} tokens; {dense['median'] * 1e3:.0f} / {pyramid['median'] * 1e3:.0f} ms)"))  # fmt: skip
    return rows


def run(args: argparse.Namespace) -> int:
    from pyramid_bert.io import atomic_write_json, check_output_file
    from pyramid_bert.measure.evaluate import evaluate_checkpoint

    if args.json_out:
        check_output_file(args.json_out, "--json-out", force=args.force)
    files = data_files(args, required=False)
    prepare_runtime(args)
    task_data = None
    if files is not None:
        task_data = load_files_task(files, args.checkpoint, max_length=args.max_length, seed=0)
    result = evaluate_checkpoint(
        args.checkpoint, split=args.split, task=args.task, task_data=task_data, measure_speed=not args.no_speed,
        measure_memory=args.memory, only_infer=only_infer_spec(args), batch_size=args.batch_size,
        max_examples=args.max_examples, device=args.device, glue_dir=args.glue_dir, timing_repeats=args.repeats,
        timing_examples=args.timing_examples, precision=args.precision, compile=args.compile,
    ).to_row()  # fmt: skip
    rows = [
        ("task / split", f"{result['task']} / {result['split']} ({result['examples']} examples)"),
        ("method", result["method"] + (" (only infer)" if result["only_infer"] else "")),
        ("precision", result["precision"]),
        ("lengths", str(result["lengths"]) if result["lengths"] is not None else "dense"),
        *([("keep ratios", ", ".join(f"{r:.3g}" for r in result["keep_ratios"]) + "  (lengths above: at N)")]
          if result.get("keep_ratios") else []),
        (result["metric_name"], f"{result['metric']:.4f}"),
    ]
    rows += [(name, f"{value:.4f}") for name, value in result["scores"].items() if name != result["metric_name"]]
    rows += speed_rows(result.get("speed"))
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
    written = [path for path in (result["result_json"], args.json_out) if path]
    if written:
        print(f"result JSON: {', '.join(written)}")
    return 0
