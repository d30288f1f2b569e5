"""``pyramid-bert lra``: the paper's Table 4 at CPU scale (Big Bird / Performer, token selection at the input).

Example::

    pyramid-bert lra --task lra-image --backbone performer --train-size 2000 --test-size 500 --epochs 3 \\
        --seeds 0,1,2 --out runs/lra

With ``--out``, each seed's comparison is one file ``<task>_<backbone>_seed<S>.json``; a seed whose file exists with
the same settings is read back, not re-run (an interrupted run resumes at its first missing seed), and
``<task>_<backbone>.md`` gets the table over seeds (mean ± std) with each seed's table below it.
"""

from __future__ import annotations

import argparse

from pyramid_bert.cli.flags import (
    MAX_SEED,
    add_force_argument,
    batch_size_int,
    positive_float,
    positive_int,
    seed_int,
    unit_interval_open_float,
)
from pyramid_bert.errors import ConfigError

BACKBONE_CHOICES = ("bigbird", "performer")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The experiment's options (shared with ``benchmarks/lra_table4.py``)."""
    parser.add_argument("--task", default="lra-image", help="lra-image | lra-pathfinder32 | lra-bytes (default lra-image)")
    parser.add_argument("--backbone", default="performer,bigbird",
                        help="comma-separated: bigbird, performer (default both)")
    parser.add_argument("--methods", default="first_k,random,cs_k_1,cs_opt,no_pruning",
                        help="comma-separated Table 4 columns (default all five)")
    parser.add_argument("--train-size", type=positive_int, default=2000, help="training examples (seeded subset; default 2000)")
    parser.add_argument("--test-size", type=positive_int, default=500, help="test examples (seeded subset; default 500)")
    parser.add_argument("--space-reduction", type=unit_interval_open_float, default=0.7,
                        help="attention-space reduction in [0, 1) (default 0.7)")
    parser.add_argument("--epochs", type=positive_float, default=3.0, help="training epochs (default 3)")
    parser.add_argument("--lr", type=positive_float, default=1e-3, help="AdamW learning rate (default 1e-3)")
    parser.add_argument("--batch-size", type=batch_size_int, default=32, help="training batch size (default 32)")
    parser.add_argument("--hidden", type=positive_int, default=64, help="hidden size (default 64)")
    parser.add_argument("--layers", type=positive_int, default=2, help="encoder layers (default 2)")
    parser.add_argument("--heads", type=positive_int, default=2, help="attention heads (default 2)")
    parser.add_argument("--intermediate", type=positive_int, default=128, help="feed-forward size (default 128)")
    parser.add_argument("--dropout", type=unit_interval_open_float, default=0.0, help="dropout in [0, 1) (default 0)")
    parser.add_argument("--block-size", type=positive_int, default=8, help="Big Bird block size (default 8)")
    parser.add_argument("--num-features", type=positive_int, default=64, help="Performer random features (default 64)")
    parser.add_argument("--pathfinder-n", type=positive_int, default=None,
                        help="generate only this many Pathfinder images (default: the task's 20000)")
    parser.add_argument("--timing-batch", type=batch_size_int, default=64, help="examples per timed forward (default 64)")
    parser.add_argument("--timing-repeats", type=positive_int, default=5, help="interleaved timing repeats (default 5)")
    parser.add_argument("--seed", type=seed_int, default=0, help="seed of weights, subsets and order (default 0)")
    parser.add_argument("--seeds", default=None,
                        help="comma-separated seeds, one comparison each (e.g. 0,1,2; default: --seed)")
    parser.add_argument("--threads", type=positive_int, default=1, help="torch threads (default 1)")
    parser.add_argument("--out", default=None, help="folder for <task>_<backbone>.json and .md (default: print only)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    add_force_argument(parser, "--out")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "lra",
        help="LRA comparison of input-layer token selection (the paper's Table 4) at CPU scale",
        description="Trains a small Big Bird and/or Performer from scratch once per method (First-k, Random, "
        "CS-k-1, CS with m=1, no pruning) at a given attention-space reduction and reports test accuracy and the "
        "measured inference speedup over no pruning.",
    )
    add_arguments(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import torch

    from pyramid_bert.io import prepare_output_dir

    backbones = [name for name in args.backbone.split(",") if name]
    unknown = [name for name in backbones if name not in BACKBONE_CHOICES]
    if unknown or not backbones:
        raise ConfigError(f"--backbone: choose from {', '.join(BACKBONE_CHOICES)}, got {args.backbone!r}")
    seeds = parse_seeds(args.seeds, args.seed)
    if args.out:  # a re-run resumes in its own folder: each seed's file is read back when its settings match
        prepare_output_dir(args.out, "--out", kind="lra", force=args.force)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    for backbone in backbones:
        results = [_run_or_reuse(experiment_config(args, backbone, seed), args.out) for seed in seeds]
        if args.out or len(seeds) > 1:
            _report(results, args, backbone)
    return 0


def parse_seeds(text: str | None, default: int) -> list[int]:
    """``--seeds "0,1,2"`` -> [0, 1, 2]; None -> [default]. ConfigError naming the flag otherwise."""
    if text is None:
        return [default]
    try:
        seeds = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        seeds = []
    if not seeds or len(set(seeds)) != len(seeds) or min(seeds) < 0 or max(seeds) > MAX_SEED:
        raise ConfigError(f"--seeds: distinct integers in 0..{MAX_SEED} separated by commas (e.g. 0,1,2), got {text!r}")
    return seeds


def experiment_config(args: argparse.Namespace, backbone: str, seed: int):
    """The :class:`~pyramid_bert.lra.experiment.LraExperimentConfig` of one backbone and seed."""
    from pyramid_bert.lra.experiment import LraExperimentConfig
    from pyramid_bert.lra.training import LraTrainConfig

    task_options = {"n": args.pathfinder_n} if args.pathfinder_n and args.task == "lra-pathfinder32" else {}
    model = {"hidden": args.hidden, "num_layers": args.layers, "heads": args.heads,
             "intermediate": args.intermediate, "dropout": args.dropout, "seed": seed}
    model["block_size" if backbone == "bigbird" else "num_features"] = (
        args.block_size if backbone == "bigbird" else args.num_features)
    return LraExperimentConfig(
        task=args.task, backbone=backbone, methods=tuple(m for m in args.methods.split(",") if m),
        train_size=args.train_size, test_size=args.test_size, space_reduction=args.space_reduction,
        model=model, seed=seed, timing_batch=args.timing_batch, timing_repeats=args.timing_repeats,
        train=LraTrainConfig(epochs=args.epochs, lr=args.lr, batch_size=args.batch_size, seed=seed,
                             progress=not args.quiet),
        task_options=task_options,
    )


def _settings(config_dict: dict) -> dict:
    """A run's settings as compared for reuse: everything but whether progress bars were shown."""
    return {**config_dict, "train": {k: v for k, v in config_dict["train"].items() if k != "progress"}}


def _run_or_reuse(config, out: str | None) -> dict:
    """The comparison of ``config``: read from ``out`` when a file there holds these settings, else run and save."""
    import json
    from pathlib import Path

    from pyramid_bert.io import atomic_write_json
    from pyramid_bert.lra.experiment import format_comparison, run_lra_comparison

    path = None if out is None else Path(out) / f"{config.task}_{config.backbone}_seed{config.seed}.json"
    if path is not None and path.exists():
        saved = json.loads(path.read_text())
        if _settings(saved.get("config", {})) != _settings(json.loads(json.dumps(config.to_dict()))):
            raise ConfigError(f"--out: {path} holds a run with other settings; choose another --out or remove the file")
        print(f"lra: {config.task} {config.backbone} seed {config.seed}: read back from {path}", flush=True)
        return saved
    result = run_lra_comparison(config)
    print(format_comparison(result), flush=True)
    if path is not None:
        atomic_write_json(path, result)
    return result


def _report(results: list[dict], args: argparse.Namespace, backbone: str) -> None:
    """The table over seeds (printed; with ``--out`` also ``<task>_<backbone>.md`` with each seed's table)."""
    from pathlib import Path

    from pyramid_bert.io import atomic_write_text
    from pyramid_bert.lra.experiment import format_comparison
    from pyramid_bert.lra.summary import format_table4, group_cells

    table = format_table4(group_cells(results))
    print(table, flush=True)
    if args.out:
        seeds = [format_comparison(result) for result in results]
        text = f"## LRA {args.task}, {backbone}\n\n{table}\n\n" + "\n\n".join(seeds) + "\n"
        atomic_write_text(Path(args.out) / f"{args.task}_{backbone}.md", text)
