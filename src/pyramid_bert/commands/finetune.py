"""``pyramid-bert finetune``: fine-tune a (pyramid) classifier on one task and write a checkpoint folder.

Example::

    pyramid-bert finetune --task rt-polarity --model minilm-l6 --method coreset --p 0.25 --prune-upto 3 \\
        --m 0.2 --out runs/x
"""

from __future__ import annotations

import argparse
from typing import Any

from pyramid_bert.cli.flags import (
    add_data_arguments,
    batch_size_int,
    data_files,
    describe_task,
    load_files_task,
    nonneg_float,
    nonneg_float_list,
    positive_float,
    positive_int,
    positive_int_list,
    ratio_float,
    ratio_list,
    seed_int,
    weight_float,
)
from pyramid_bert.errors import ConfigError
from pyramid_bert.spec import add_option_arguments, options_from_args


def add_schedule_arguments(parser: argparse.ArgumentParser, *, method_default: str | None) -> None:
    """--method/--lengths/--p/--prune-upto/--pool-windows and every selection option (shared with ``evaluate``)."""
    parser.add_argument(
        "--method", default=method_default,
        help="coreset (default), attention, first_k, random, input_first_k, average_pool, energy (PiToMe's "
        "energy-aware merging), or dense",
    )  # fmt: skip
    parser.add_argument("--lengths", type=positive_int_list, help="kept tokens per encoder layer, e.g. 80,50,32,32,32,32")
    parser.add_argument("--p", type=ratio_float, help="Eq. 5 pruning ratio in (0, 1] (with --prune-upto)")
    parser.add_argument(
        "--prune-upto", type=positive_int, help="Eq. 5: the layer, 1..L (L = encoder layers), from which the length stays p*N"
    )
    parser.add_argument("--pool-windows", type=positive_int_list, help="average_pool: window per layer, 1 = none")
    add_option_arguments(parser)


def add_ratio_arguments(parser: argparse.ArgumentParser) -> None:
    """--keep-ratios / --schedule: keep-ratio schedules (shared with ``evaluate``)."""
    parser.add_argument(
        "--keep-ratios", type=ratio_list,
        help="keep-ratio schedule: per layer, the fraction of each example's real tokens kept, e.g. 0.5,0.25,...",
    )  # fmt: skip
    parser.add_argument(
        "--keep-thresholds", type=nonneg_float_list,
        help="attention only, adaptive schedule: per layer, keep CLS and each token whose attention received is at "
        "least this multiple of uniform attention (e.g. 0.9,1,1,1.1,...; 0 = keep all); counts differ per example",
    )  # fmt: skip
    parser.add_argument(
        "--schedule", default="fixed", choices=("fixed", "ratio"),
        help="fixed: --p/--prune-upto give token counts at N (the paper); ratio: they give keep ratios of each "
        "example's real length (Eq. 5 without the floor)",
    )  # fmt: skip


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "finetune", help="fine-tune a (pyramid) BERT classifier on a task",
        description="Fine-tune with the paper's defaults (lr 2e-5, 3 epochs, batch 48, AdamW, linear warm-up "
        "and decay). Re-running the same command resumes an interrupted run from <out>.partial.",
    )  # fmt: skip
    parser.add_argument("--task", help="task name (see `pyramid-bert data list`), or give --train FILE")
    parser.add_argument("--model", default="minilm-l6", help="model name (minilm-l6) or a local model folder")
    add_data_arguments(parser)
    add_schedule_arguments(parser, method_default="coreset")
    add_ratio_arguments(parser)
    parser.add_argument(
        "--distill-weight", type=weight_float, default=0.0,
        help="weight in [0, 1] of a distillation loss to a fine-tuned teacher (default 0: none)",
    )  # fmt: skip
    parser.add_argument("--distill-temperature", type=positive_float, default=2.0, help="distillation temperature (2)")
    parser.add_argument("--teacher", help="distillation teacher folder (default: --model, i.e. a warm start)")
    parser.add_argument(
        "--soft-threshold-temperature", type=nonneg_float, default=0.0,
        help="with --keep-thresholds: train with a soft mask, each token weighed by sigmoid((score - threshold) / T) "
        "(LTP); evaluation prunes hard (default 0: hard pruning in training too)",
    )  # fmt: skip
    parser.add_argument(
        "--length-drop", type=weight_float, default=0.0, metavar="BOUND",
        help="LengthDrop training of a keep-ratio schedule (default 0: off): each step also runs one random schedule "
        "between the given one (the smallest) and keeping everything, each layer dropping at most BOUND of the "
        "previous layer's tokens (1: any); the saved model serves every schedule in between (2 forwards per step)",
    )  # fmt: skip
    parser.add_argument(
        "--batching", default="dynamic", choices=("dynamic", "padded"),
        help="training batches padded to their longest example (dynamic, default) or to N (padded)",
    )  # fmt: skip
    parser.add_argument("--epochs", type=positive_float, default=3.0, help="training epochs, > 0; may be fractional (default 3)")
    parser.add_argument("--lr", type=positive_float, default=2e-5, help="peak AdamW learning rate, > 0 (default 2e-5)")
    parser.add_argument("--batch-size", type=batch_size_int, help="train batch (default 48; MNLI 32, RTE 16)")
    parser.add_argument("--eval-batch-size", type=batch_size_int, default=128, help="inference batch (default 128)")
    parser.add_argument("--max-train-examples", type=positive_int, help="train on a seeded random subset of this size")
    parser.add_argument("--max-eval-examples", type=positive_int, help="score dev on a seeded subset of this size")
    parser.add_argument("--seed", type=seed_int, default=0, help="seed of init, data order, subsets, Random-select (0)")
    parser.add_argument("--device", default="cpu", help="cpu (default), cuda or cuda:N")
    parser.add_argument("--glue-dir", help="folder with the GLUE data (GLUE tasks only)")
    parser.add_argument("--out", required=True, help="checkpoint folder to write")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_runtime_arguments(parser)
    parser.set_defaults(func=run)


def add_runtime_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--threads", type=positive_int, help="torch intra-op threads (default: torch's choice)")
    parser.add_argument("--verbose", action="store_true", help="show transformers' load reports and bars")


def prepare_runtime(args: argparse.Namespace) -> None:
    """Apply --threads and quiet transformers' per-load reports and progress bars (unless --verbose)."""
    import torch
    from transformers.utils import logging as hf_logging

    if args.threads is not None:
        torch.set_num_threads(args.threads)
    if not args.verbose:
        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()


def config_from_args(args: argparse.Namespace) -> Any:
    from pyramid_bert.training.config import FinetuneConfig

    if args.method is None:
        raise ConfigError("--method: give a selection method")
    files = data_files(args)
    return FinetuneConfig(
        task=args.task or files.name, model=args.model, method=args.method, lengths=args.lengths, p=args.p,
        prune_upto=args.prune_upto, pool_windows=args.pool_windows, selection=options_from_args(args),
        epochs=args.epochs, lr=args.lr, batch_size=args.batch_size, eval_batch_size=args.eval_batch_size,
        max_train_examples=args.max_train_examples, max_eval_examples=args.max_eval_examples, seed=args.seed,
        device=args.device, glue_dir=args.glue_dir, out=args.out, keep_ratios=args.keep_ratios,
        schedule=args.schedule, batching=args.batching, distill_weight=args.distill_weight,
        distill_temperature=args.distill_temperature, teacher=args.teacher, keep_thresholds=args.keep_thresholds,
        soft_threshold_temperature=args.soft_threshold_temperature, length_drop=args.length_drop,
    )  # fmt: skip


def print_table(rows: list[tuple[str, str]]) -> None:
    width = max(len(label) for label, _ in rows)
    for label, value in rows:
        print(f"  {label:<{width}}  {value}")


def run(args: argparse.Namespace) -> int:
    from pyramid_bert.data.user_task import files_identity
    from pyramid_bert.training.checkpoint import read_run_info
    from pyramid_bert.training.config import validate_config
    from pyramid_bert.training.loop import finetune

    config = config_from_args(args)
    files = data_files(args)
    validate_config(config, check_task_name=files is None)
    prepare_runtime(args)
    task = None
    if files is not None:
        task = load_files_task(files, config.model, max_length=args.max_length, seed=config.seed)
        config.data = files_identity(files, task.max_length)  # a run is reused only on the same data
        print_table(describe_task(task))
    folder = finetune(config, task_data=task, progress=not args.no_progress)
    info = read_run_info(folder)
    train = info["train"]
    rows = [
        ("task / model", f"{info['task']['name']} / {info['config']['model']}"),
        ("method", info["config"]["method"]),
        ("lengths", str(info["lengths"]) if info["lengths"] is not None else "dense (N everywhere)"),
        *([("keep ratios", ", ".join(f"{r:.3g}" for r in info["pyramid"]["keep_ratios"]) + "  (lengths above: at N)")]
          if (info.get("pyramid") or {}).get("keep_ratios") else []),
        ("steps x batch", f"{train['steps']} x {train['batch_size']} ({train['examples']} examples)"),
        ("train time", f"{train['seconds']:.1f} s, median step {train['step_seconds_median'] * 1000:.0f} ms"),
        ("predicted speedup", f"{info['predicted_speedup']:.2f}X"),
        ("space reduction (paper's formula)", f"{info['space_reduction']:.1%}"),
        ("space reduction (exact)", f"{info.get('space_reduction_exact', float('nan')):.1%}"),
    ]
    dev = info.get("metrics", {}).get("dev")
    if dev:
        rows.append((f"dev {dev['metric_name']}", f"{dev['metric']:.4f} ({dev['examples']} examples)"))
    print(f"checkpoint: {folder}  (run.json holds the config, versions and metrics)")
    print_table(rows)
    return 0
