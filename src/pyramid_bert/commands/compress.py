"""``pyramid-bert compress``: a model and labelled data in, the fastest pyramid model meeting a goal out.

Example::

    pyramid-bert compress --model minilm-l6 --train reviews.csv --target-speedup 2 --out models/reviews-fast
"""

from __future__ import annotations

import argparse
from typing import Any

from pyramid_bert.cli.flags import (
    add_data_arguments,
    add_force_argument,
    add_precision_argument,
    batch_size_int,
    data_files,
    describe_task,
    load_files_task,
    nonneg_float,
    positive_float,
    positive_int,
    seed_int,
    weight_float,
)
from pyramid_bert.commands.finetune import add_runtime_arguments, prepare_runtime, print_table


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "compress", help="make a faster pyramid model from a model and labelled data, at a known cost",
        description="Fine-tune the dense model (or use --model as is when it already is a classifier for the "
        "labels), adapt a few pyramid configurations from it, measure each one's real speedup and dev metric, and "
        "write the fastest one meeting --target-speedup or --max-drop as a Hugging Face model folder with a model "
        "card, report and Pareto plot. Re-running the same command resumes a killed run.",
    )  # fmt: skip
    parser.add_argument("--model", default="minilm-l6", help="pretrained checkpoint, or a fine-tuned classifier (warm start)")
    parser.add_argument("--task", help="task name (see `pyramid-bert data list`), or give --train FILE")
    add_data_arguments(parser)
    goal = parser.add_mutually_exclusive_group()
    goal.add_argument("--target-speedup", type=positive_float, metavar="X", help="the slowest configuration >= X whose dev metric is not significantly below the best one's")
    goal.add_argument("--max-drop", type=nonneg_float, metavar="D", help="the fastest configuration losing <= D dev points (x100) at the upper end of its 95%% interval")
    parser.add_argument("--out", required=True, help="output folder (its work files go to OUT.work)")
    parser.add_argument("--candidates", metavar="FILE", help="JSON list of configurations to try (default: 4 keep-ratio schedules of CS+, core-set selection with cosine distance, duplicity attention and merging)")
    parser.add_argument("--dense-epochs", type=positive_float, default=2.0, help="epochs of the dense fine-tune (default 2)")
    parser.add_argument("--adapt-epochs", type=positive_float, default=0.5, help="epochs adapting each configuration (default 0.5)")
    parser.add_argument(
        "--length-drop", type=weight_float, default=0.0, metavar="BOUND",
        help="train ONE LengthDrop model (per group of candidates differing only in their keep-ratio schedule) "
        "instead of one fine-tune per candidate, and time and score every candidate's schedule with it; BOUND in "
        "(0, 1] is the most of the previous layer's tokens a layer of a random training schedule drops (1: any; it "
        "must reach every candidate's schedule, the error says the least that does); default 0: off",
    )  # fmt: skip
    parser.add_argument("--lr", type=positive_float, default=1e-4, help="peak learning rate (default 1e-4)")
    parser.add_argument("--batch-size", type=batch_size_int, default=32, help="train batch (default 32)")
    parser.add_argument("--eval-batch-size", type=batch_size_int, default=128, help="inference and timing batch (default 128)")
    parser.add_argument("--max-train-examples", type=positive_int, help="train on a seeded subset of this size")
    parser.add_argument("--timing-examples", type=positive_int, default=256, help="dev sentences timed per configuration (256)")
    parser.add_argument("--repeats", type=positive_int, default=3, help="interleaved timing repeats (default 3)")
    parser.add_argument("--seed", type=seed_int, default=0, help="seed of the dev hold-out, init and data order (0)")
    parser.add_argument("--device", default="cpu", help="cpu (default), cuda or cuda:N")
    add_precision_argument(parser, "; compress: int8 tries every configuration, and the dense model, at int8 too")
    parser.add_argument("--glue-dir", help="folder with the GLUE data (GLUE tasks only)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_force_argument(parser, "--out")
    add_runtime_arguments(parser)
    parser.set_defaults(func=run)


def settings_from_args(args: argparse.Namespace) -> Any:
    from pyramid_bert.compress import DEFAULT_CANDIDATES, CompressSettings, read_candidates

    candidates = tuple(read_candidates(args.candidates)) if args.candidates else DEFAULT_CANDIDATES
    return CompressSettings(
        model=args.model, out=args.out, target_speedup=args.target_speedup, max_drop=args.max_drop,
        candidates=candidates, dense_epochs=args.dense_epochs, adapt_epochs=args.adapt_epochs, lr=args.lr,
        batch_size=args.batch_size, eval_batch_size=args.eval_batch_size, timing_examples=args.timing_examples,
        timing_repeats=args.repeats, max_train_examples=args.max_train_examples, seed=args.seed, device=args.device,
        precisions=("fp32", "int8") if args.precision == "int8" else ("fp32",), length_drop=args.length_drop,
    )  # fmt: skip


def load_data(args: argparse.Namespace) -> Any:
    from pyramid_bert.data import load_task
    from pyramid_bert.data.catalog import TASK_NAMES
    from pyramid_bert.errors import ConfigError

    files = data_files(args)
    if files is not None:
        return load_files_task(files, args.model, max_length=args.max_length, seed=args.seed)
    if args.task not in TASK_NAMES:
        raise ConfigError(f"--task: unknown task {args.task!r}; valid tasks: {', '.join(TASK_NAMES)}")
    return load_task(args.task, glue_dir=args.glue_dir, seed=args.seed)


def run(args: argparse.Namespace) -> int:
    from pyramid_bert.compress import compress
    from pyramid_bert.compress.choose import POINTS
    from pyramid_bert.training.config import resolve_device, validate_config
    from pyramid_bert.training.loop import FinetuneConfig

    settings = settings_from_args(args)
    settings.check()
    validate_config(FinetuneConfig(task="-", model=args.model, method="dense", device=args.device), check_task_name=False)
    resolve_device(args.device)
    prepare_runtime(args)
    task = load_data(args)
    print_table(describe_task(task))
    result = compress(settings, task, progress=not args.no_progress, force=args.force)
    row, dense = result.chosen_row, result.dense
    print(f"chosen: {row['label']} ({result.reason})")
    print_table([
        ("real speedup", f"{row['speedup']:.2f}X  [{row['speedup_q25']:.2f}, {row['speedup_q75']:.2f}]"),
        (f"dev {task.metric}", f"{row['dev'] * POINTS:.1f}  ({(row['dev'] - dense['dev']) * POINTS:+.1f} vs dense)"),
        (f"test {task.metric}", f"{row['test'] * POINTS:.1f}  ({(row['test'] - dense['test']) * POINTS:+.1f} vs dense)"),
        ("wall time", f"{result.notes['seconds']:.0f} s"),
    ])  # fmt: skip
    print(f"model folder: {result.out}  (README.md: model card and the table of tried configurations; report.md)")
    print(f"work files: {result.out}.work (every tried checkpoint: a new goal re-chooses from them; delete when done)")
    return 0
