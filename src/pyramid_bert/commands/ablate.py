"""``pyramid-bert ablate m|only-infer|position|schedules``: the paper's ablations on this machine.

- ``m`` (Table 5): Coreset-select with m in {1, ceil(0.5k), k-1} on four fixed schedules;
- ``only-infer`` (Table 6): selection at inference only (on the dense fine-tuned model) vs at fine-tuning
  (adaptation) and inference;
- ``position`` (Table 7): selection after the attention sublayer (middle) vs after the FFN (end);
- ``schedules`` (Figure 6): Eq. 5 configurations vs 3 families of random non-increasing ones, with a linear fit each.

All ablations share one resumable results store (``OUT/results.sqlite``, default ``runs/ablate``) and, per
seed, one dense model (the warm protocol of the ``default`` preset: 4000 training examples, 2 epochs; every
pyramid trial adapts from it for 20 steps). A trial that two ablations share runs once; a killed run continues
where it stopped when started again. Tables (test metric, mean and 95% interval over seeds; measured speedup),
a PNG and a Markdown section go to ``OUT/report/<ablation>.{csv,png,md}``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from pyramid_bert.cli.flags import add_data_arguments, add_force_argument, positive_int, rerun_line
from pyramid_bert.errors import ConfigError

DEFAULT_OUT = "runs/ablate"  # as pyramid_bert.sweep.ablation_runs (not imported here: the CLI starts fast)
DEFAULT_MODEL = "minilm-l6"
DEFAULT_TASK = "rt-polarity"
STORE_NAME = "results.sqlite"
#: Default seeds per ablation: 3 (a mean with an interval), 1 for the 40 configurations of ``schedules``.
DEFAULT_SEEDS = {"m": 3, "only-infer": 3, "position": 3, "schedules": 1}
HEADINGS = {
    "m": "Table 5: Coreset-select with m in {1, ceil(0.5k), k-1}",
    "only-infer": "Table 6: selection at inference only vs at fine-tuning and inference",
    "position": "Table 7: selection in the middle of the encoder (after attention) vs at its end (after the FFN)",
    "schedules": "Figure 6: Eq. 5 configurations vs random non-increasing configurations",
}


def register(subparsers: argparse._SubParsersAction) -> None:
    from pyramid_bert.sweep.ablations import ABLATIONS

    parser = subparsers.add_parser("ablate", help="the paper's ablations: Tables 5-7 and Figure 6",
                                   description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("ablation", help=f"one of {', '.join(ABLATIONS)}")
    parser.add_argument("--task", default=None, help=f"task (default {DEFAULT_TASK}; or your own data: --train FILE)")
    parser.add_argument("--model", default=DEFAULT_MODEL, help=f"base model name or folder (default {DEFAULT_MODEL})")
    parser.add_argument("--seeds", type=positive_int, help="seeds 0..S-1 (default 3; 1 for schedules)")
    parser.add_argument(
        "--configs",
        type=positive_int,
        default=8,
        help="schedules: configurations per family (default 8, about 29 min on 2 cores; the paper: 30)",
    )
    parser.add_argument("--workers", type=positive_int, help="trials at once, one process each (default: one per core)")
    parser.add_argument("--threads", type=positive_int, default=1, help="torch threads per trial (default 1)")
    parser.add_argument("--max-eval-examples", type=positive_int, help="dev/test subset per trial (default 640)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default cpu)")
    parser.add_argument("--glue-dir", help="folder with GLUE data (GLUE tasks)")
    parser.add_argument(
        "--out", default=DEFAULT_OUT, help=f"folder of the shared store and reports (default {DEFAULT_OUT})"
    )
    parser.add_argument("--retry-failed", action="store_true", help="run trials recorded as failed again")
    add_force_argument(parser, "OUT/report")
    parser.add_argument("--dry-run", action="store_true", help="print the plan and the time estimate, run nothing")
    parser.add_argument("--synthetic", action="store_true", help="synthetic trial function (checks the pipeline)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_data_arguments(parser)
    parser.set_defaults(func=run)


def settings_from_args(args: argparse.Namespace, *, seeds: int):  # noqa: ANN201 - AblationSettings
    """The ablations' shared settings from the flags (the user's files are read here, once)."""
    from pyramid_bert.commands.sweep import user_data
    from pyramid_bert.sweep.ablation_runs import ablation_settings

    return ablation_settings(
        task=args.task, data=user_data(args), model=args.model, seeds=seeds, device=args.device,
        glue_dir=args.glue_dir, max_eval_examples=args.max_eval_examples, synthetic=args.synthetic,
    )  # fmt: skip


def run(args: argparse.Namespace) -> int:
    from pyramid_bert.analysis.ablation_report import collect, write_ablation
    from pyramid_bert.io import check_output_dir, mark_output_dir
    from pyramid_bert.sweep.ablation_runs import ablation_trial_function, run_ablation_trials
    from pyramid_bert.sweep.ablations import ABLATIONS, dense_trials, plan_ablation
    from pyramid_bert.sweep.budget import estimate_wall_seconds
    from pyramid_bert.sweep.driver_lock import DriverLock
    from pyramid_bert.sweep.executors import default_workers
    from pyramid_bert.sweep.store import ResultsStore

    if args.ablation not in ABLATIONS:
        raise ConfigError(f"ablation: unknown ablation {args.ablation!r}; valid: {', '.join(ABLATIONS)}")
    started = time.perf_counter()
    seeds = DEFAULT_SEEDS[args.ablation] if args.seeds is None else args.seeds
    settings = settings_from_args(args, seeds=seeds)
    rows = plan_ablation(args.ablation, settings, configs=args.configs)
    trials = dense_trials(settings) + [row.trial for row in rows]
    out = Path(args.out)
    check_output_dir(out / "report", "--out", kind="ablate", force=args.force)
    workers = args.workers or default_workers(args.threads)
    driver = f"pyramid-bert ablate {args.ablation}"
    with DriverLock(out / STORE_NAME, driver), ResultsStore(out / STORE_NAME, create=True) as store:  # in use: stop now
        done = store.finished_keys(include_failed=not args.retry_failed)
    pending = [t for t in dict.fromkeys(trials) if t.key not in done]
    estimate = estimate_wall_seconds(pending, settings.n, settings.shape, workers) / 60
    print(f"ablate {args.ablation}: {len(set(t.key for t in trials))} trials ({len(pending)} to run) into "
          f"{out / STORE_NAME}, {workers} worker(s); about {estimate:.0f} min for minilm-l6 on the measured 2-core "
          "CPU (pyramid_bert.sweep.budget)", file=sys.stderr)  # fmt: skip
    if args.dry_run:
        return 0
    summary = run_ablation_trials(
        trials, out, trial_fn=ablation_trial_function(synthetic=args.synthetic), workers=workers,
        threads=args.threads, progress=not args.no_progress, retry_failed=args.retry_failed, driver=driver,
    )  # fmt: skip
    with ResultsStore(out / STORE_NAME) as store:
        records = {record.spec.key: record for record in store.records()}
    cells = collect(rows, records)
    keys = {trial.key for trial in trials}
    trial_minutes = sum(records[k].wall_seconds or 0.0 for k in keys if k in records) / 60
    minutes = (time.perf_counter() - started) / 60
    how = (f"Model {args.model}, task {settings.task}, {seeds} seed(s); warm protocol of the `default` preset (dense "
           f"per seed on {settings.budget.max_train_examples} training examples x {settings.budget.epochs:g} epochs, "
           f"pyramid trials adapted for {settings.adapt_budget.epochs:g} epoch; dev/test subsets of "
           f"{settings.adapt_budget.max_eval_examples}); Coreset-select; {'synthetic trial function (no model): ' if args.synthetic else ''}"
           f"this run {minutes:.1f} min wall with {workers} worker(s), {summary.ran} trials run, "
           f"{summary.already_done} already in the store; the trials' own wall time, summed over the store's runs, "
           f"{trial_minutes:.1f} min (dense included). Test metric x 100: mean [95% interval] over seeds. "
           f"Re-run: `{rerun_line(args)}`.")  # fmt: skip
    report = mark_output_dir(out / "report", "ablate")
    files = write_ablation(cells, report, name=args.ablation, heading=HEADINGS[args.ablation], how=how,
                           fit=args.ablation == "schedules",
                           axis="measured" if args.ablation == "schedules" else "predicted")  # fmt: skip
    print(Path(files["section"]).read_text())
    print(f"ablate {args.ablation}: {summary.ran} run ({summary.failed} failed), {summary.already_done} resumed, "
          f"{minutes:.1f} min; {out / 'report'}", file=sys.stderr)  # fmt: skip
    return 1 if summary.failed else 0
