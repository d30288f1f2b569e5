"""``pyramid-bert analyze redundancy|importance``: the paper's analyses of a model's token embeddings.

- ``redundancy`` (Figure 1): at every encoder, cosine similarity of the tokens to CLS and to each other,
  nearest-neighbour distances, and the DBSCAN clusters per input (scikit-learn; eps and min_samples stated).
- ``importance`` (Figures 4-5): in a densely fine-tuned model, at encoder j, remove the k-th token of the
  core-set selection order (m = 1 and m = k-1) for every k; the mutual information (natural log) between the
  pruned model's and the dense model's predictions, per k and encoder.

Both take the built-in model and rt-polarity by default (``--model`` any catalog name, local checkpoint or
``finetune`` run folder; ``--task`` any task) and write CSV + PNG + a Markdown section into ``--out``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from pyramid_bert.cli.flags import (
    add_data_arguments,
    add_force_argument,
    batch_size_int,
    cosine_distance_float,
    data_files,
    positive_int,
    quantile_float,
    rerun_line,
    seed_int,
)
from pyramid_bert.errors import ConfigError
from pyramid_bert.spec import parse_m_list

DEFAULT_MODEL = "minilm-l6"
DEFAULT_TASK = "rt-polarity"


def _common(
    parser: argparse.ArgumentParser, *, default_out: str, default_examples: int | None, default_model: str
) -> None:
    parser.add_argument(
        "--model",
        default=default_model,
        help="catalog model, local checkpoint, finetune run folder, or ablate-dense: the seed-0 dense model of "
        f"runs/ablate (the ablations' store), fine-tuned there first if missing (default {default_model})",
    )
    parser.add_argument("--task", default=None, help=f"task (default {DEFAULT_TASK}; or your own data: --train FILE)")
    parser.add_argument("--split", default="dev", help="split to analyse: train, dev or test (default dev)")
    parser.add_argument(
        "--max-examples",
        type=positive_int,
        default=default_examples,
        help=f"seeded subset of the split (default {default_examples or 'all'})",
    )
    parser.add_argument("--seed", type=seed_int, default=0, help="seed of the subset (default 0)")
    parser.add_argument("--batch-size", type=batch_size_int, default=64, help="inference batch (default 64)")
    parser.add_argument("--threads", type=positive_int, default=1, help="torch threads (default 1)")
    parser.add_argument("--glue-dir", help="folder with GLUE data (GLUE tasks)")
    parser.add_argument("--out", default=default_out, help=f"output folder (default {default_out})")
    add_force_argument(parser, "--out")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")  # fmt: skip
    add_data_arguments(parser)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "analyze",
        help="token redundancy (Figure 1) and importance (Figures 4-5)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    inner = parser.add_subparsers(dest="analysis", metavar="ANALYSIS")
    redundancy = inner.add_parser("redundancy", help="Figure 1 at every encoder: similarity to CLS, DBSCAN clusters")
    _common(redundancy, default_out="runs/analyze/redundancy", default_examples=None, default_model=DEFAULT_MODEL)
    redundancy.add_argument(
        "--eps",
        type=cosine_distance_float,
        default=0.2,
        help="DBSCAN eps of the paper's rule, a cosine dissimilarity in (0, 2] (default 0.2, Appendix F)",
    )
    redundancy.add_argument(
        "--eps-quantile",
        type=quantile_float,
        default=0.5,
        help="second rule: eps = this quantile of encoder 1's nearest-neighbour cosine dissimilarities (default 0.5)",
    )
    redundancy.add_argument(
        "--at",
        default="output",
        help="output: each encoder's output (the paper's Figure 1); middle: right after each encoder's attention "
        "sublayer, where Pyramid-BERT selects (default output)",
    )
    redundancy.add_argument("--min-samples", type=positive_int, default=1, help="DBSCAN min_samples (default 1, the paper's)")
    redundancy.set_defaults(func=run_redundancy)
    importance = inner.add_parser("importance", help="Figures 4-5: MI of predictions after removing the k-th token")
    _common(importance, default_out="runs/analyze/importance", default_examples=200, default_model="ablate-dense")
    importance.add_argument("--layers", help="comma-separated encoders 1..L (default: every encoder)")
    importance.add_argument("--ms", default="1,k-1", help="values of m for the selection order (default 1,k-1)")
    importance.set_defaults(func=run_importance)
    parser.set_defaults(func=lambda args: _missing(parser))  # fmt: skip


def _missing(parser: argparse.ArgumentParser) -> int:
    raise ConfigError("analyze: give an analysis; valid: redundancy, importance")


def analysis_task(args: argparse.Namespace, model: str):
    """What to analyse: the task name (``--task``, default rt-polarity) or the TaskData read from ``--train`` /
    ``--dev`` / ``--test``, tokenized as ``model`` tokenizes. Fills in ``args.task``'s default."""
    from pyramid_bert.cli.flags import load_files_task

    files = data_files(args, required=False)
    if files is None:
        args.task = args.task or DEFAULT_TASK
        return args.task
    if model == "ablate-dense":
        raise ConfigError("--model ablate-dense: the ablations' store takes named tasks only; with --train give "
                          "--model a fine-tuned folder (pyramid-bert finetune --train FILE --method dense --out DIR)")
    return load_files_task(files, model, max_length=args.max_length, seed=args.seed)


def run_redundancy(args: argparse.Namespace) -> int:
    import torch

    from pyramid_bert.analysis.inputs import load_inputs, model_inputs
    from pyramid_bert.analysis.redundancy import AT_CHOICES, analyze_model
    from pyramid_bert.analysis.redundancy_report import write_redundancy
    from pyramid_bert.io import check_output_dir, mark_output_dir

    if args.at not in AT_CHOICES:
        raise ConfigError(f"--at must be one of {', '.join(AT_CHOICES)}; got {args.at!r}")
    check_output_dir(args.out, "--out", kind="analyze", force=args.force)
    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    task = analysis_task(args, args.model)
    if args.model == "ablate-dense":
        from pyramid_bert.sweep.ablation_runs import ablation_dense_checkpoint

        args.model = str(ablation_dense_checkpoint(
            args.task, glue_dir=args.glue_dir, threads=args.threads, progress=not args.no_progress
        ))  # fmt: skip
    inputs = load_inputs(args.model, task=task, split=args.split, max_examples=args.max_examples,
                         seed=args.seed, glue_dir=args.glue_dir)  # fmt: skip
    result = analyze_model(inputs.model, model_inputs(inputs.encodings), batch_size=args.batch_size,
                           progress=not args.no_progress, at=args.at, eps_quantile=args.eps_quantile,
                           eps_paper=args.eps, min_samples=args.min_samples)  # fmt: skip
    seconds = time.perf_counter() - started
    kind = "fine-tuned" if inputs.fine_tuned else "as given (not fine-tuned here)"
    where = "each encoder's output" if args.at == "output" else "right after each encoder's attention sublayer"
    how = (f"Model `{args.model}` ({kind}), task {inputs.task.name}, split {args.split}, tokens read at {where}, "
           f"{len(inputs.encodings['labels'])} inputs, N = {inputs.task.max_length}; {seconds:.0f} s wall. "
           f"Re-run: `{rerun_line(args)}`.")  # fmt: skip
    out = mark_output_dir(args.out, "analyze")
    files = write_redundancy(result, out, heading=f"Token redundancy (Figure 1): {args.model}", how=how)
    print(Path(files["section"]).read_text())
    print(f"analyze redundancy: {seconds:.0f} s; files in {args.out}", file=sys.stderr)
    return 0


def run_importance(args: argparse.Namespace) -> int:
    import torch

    from pyramid_bert.analysis.importance import importance_curves
    from pyramid_bert.analysis.importance_report import write_importance
    from pyramid_bert.analysis.inputs import load_inputs, model_inputs
    from pyramid_bert.io import check_output_dir, mark_output_dir

    ms = parse_m_list(args.ms, "--ms")
    check_output_dir(args.out, "--out", kind="analyze", force=args.force)
    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    model = args.model
    task = analysis_task(args, model)
    if model == "ablate-dense":
        from pyramid_bert.sweep.ablation_runs import ablation_dense_checkpoint

        model = str(ablation_dense_checkpoint(
            args.task, glue_dir=args.glue_dir, threads=args.threads, progress=not args.no_progress
        ))  # fmt: skip
    inputs = load_inputs(model, task=task, split=args.split, max_examples=args.max_examples, seed=args.seed,
                         glue_dir=args.glue_dir)  # fmt: skip
    if not inputs.fine_tuned:
        print(f"analyze importance: warning: {model} is not a finetune run folder; its classification head may be "
              "untrained, which makes the MI meaningless", file=sys.stderr)  # fmt: skip
    layers = parse_layers(args.layers, inputs.model.config.num_hidden_layers)
    curves, ceiling = importance_curves(inputs.model, model_inputs(inputs.encodings), layers=layers, ms=ms,
                                        batch_size=args.batch_size, progress=not args.no_progress)  # fmt: skip
    seconds = time.perf_counter() - started
    how = (f"Model `{model}`, task {inputs.task.name}, split {args.split}, {len(inputs.encodings['labels'])} inputs "
           f"(seed {args.seed}), N = {inputs.task.max_length}, encoders {layers}; {seconds:.0f} s wall, "
           f"{args.threads} thread(s). Re-run: `{rerun_line(args)}`.")  # fmt: skip
    out = mark_output_dir(args.out, "analyze")
    files = write_importance(curves, ceiling, out, heading="Token importance (Figures 4-5)", how=how)
    print(Path(files["section"]).read_text())
    print(f"analyze importance: {seconds:.0f} s; files in {args.out}", file=sys.stderr)
    return 0


def parse_layers(text: str | None, num_layers: int) -> list[int]:
    """``"1,3,6"`` -> [1, 3, 6]; None -> every encoder 1..L; ConfigError naming --layers otherwise."""
    if text is None:
        return list(range(1, num_layers + 1))
    try:
        layers = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise ConfigError(f"--layers: expected comma-separated encoders in 1..{num_layers}, got {text!r}") from None
    if not layers or any(not 1 <= layer <= num_layers for layer in layers):
        raise ConfigError(f"--layers: every encoder must be in 1..{num_layers}, got {text!r}")
    return layers
