"""``pyramid-bert sweep``: plan a sweep (a preset, or your choice of tasks / methods / seeds) and run it
into a resumable SQLite results store, locally or on Ray. ``pyramid-bert report`` turns the store into tables."""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from pyramid_bert.cli.flags import add_data_arguments, nonneg_float, positive_float, positive_int
from pyramid_bert.errors import ConfigError

DEFAULT_MODEL = "minilm-l6"


def add_sweep_arguments(parser: argparse.ArgumentParser, *, default_out: str) -> None:
    """Arguments shared by ``sweep`` and ``reproduce``."""
    from pyramid_bert.sweep.executors import EXECUTORS
    from pyramid_bert.sweep.presets import DEFAULT_PRESET, PRESETS
    from pyramid_bert.sweep.spec import PROTOCOLS

    parser.add_argument(
        "--preset", default=DEFAULT_PRESET, help=f"named sweep: {', '.join(PRESETS)} (default {DEFAULT_PRESET})"
    )
    parser.add_argument(
        "--protocol",
        help=f"{' or '.join(PROTOCOLS)}: warm = fine-tune dense once per seed and adapt every pyramid configuration "
        "from it; paper = every configuration from the pretrained model (default: the preset's)",
    )
    parser.add_argument(
        "--workers",
        type=positive_int,
        help="with --executor local: trials run at once, each in its own process (default: cores / threads per trial)",
    )
    parser.add_argument(
        "--task",
        action="append",
        metavar="NAME",
        help="task to sweep (repeat or comma-separate for several; default: the preset's)",
    )
    parser.add_argument("--model", default=DEFAULT_MODEL, help=f"model name or local folder (default {DEFAULT_MODEL})")
    parser.add_argument("--methods", help="comma-separated methods (default: the preset's: all six + dense, and in default and smoke CS+ and 1st+merge; energy when named)")
    parser.add_argument("--seeds", type=positive_int, help="number of seeds, 0..N-1 (default: the preset's)")
    parser.add_argument("--out", default=default_out, help=f"output folder (default {default_out})")
    parser.add_argument(
        "--resume", action="store_true", help="continue the sweep in --out: finished trials are kept and not run again"
    )
    parser.add_argument("--retry-failed", action="store_true", help="with --resume: run failed trials again")
    parser.add_argument(
        "--extend", action="store_true",
        help="with --resume: the preset may add configurations (variants, methods) or a separate timing pass to the "
        "recorded plan; finished trials are kept",
    )  # fmt: skip
    parser.add_argument("--executor", default="local", help=f"where trials run: {', '.join(EXECUTORS)} (default local)")
    parser.add_argument(
        "--address", help="with --executor ray: 'auto' or HOST:PORT of a Ray head (default: start Ray here)"
    )
    parser.add_argument(
        "--cpus-per-trial", type=positive_float, default=1.0, help="with --executor ray: CPUs per trial (default 1)"
    )
    parser.add_argument(
        "--gpus-per-trial", type=nonneg_float, default=0.0, help="with --executor ray: GPUs per trial (default 0)"
    )
    parser.add_argument("--threads", type=positive_int,
                        help="torch threads per trial (default: the preset's; smoke and default use 1, paper torch's default)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default cpu)")
    parser.add_argument("--glue-dir", help="folder with GLUE data (for GLUE tasks)")
    parser.add_argument("--epochs", type=positive_float, help="override the preset's epochs (warm: of the dense model)")
    parser.add_argument("--adapt-epochs", type=positive_float, help="warm protocol: override the epochs of each pyramid trial")
    parser.add_argument("--max-train-examples", type=positive_int, help="override the preset's train subset size")
    parser.add_argument("--max-eval-examples", type=positive_int, help="override the preset's dev/test subset size")
    parser.add_argument(
        "--synthetic",
        action="store_true",
        help="use a synthetic trial function (no training; checks the pipeline in seconds)",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_data_arguments(parser)


def user_data(args: argparse.Namespace) -> dict[str, Any] | None:
    """With ``--train``: the sweep's data as :attr:`~pyramid_bert.sweep.spec.TrialSpec.data` (the files, N fixed
    now from the train lengths or ``--max-length``, and the files' fingerprint), read once here so that a bad file
    is one message now; None with ``--task``."""
    from pyramid_bert.cli.flags import data_files, load_files_task
    from pyramid_bert.data.user_task import files_fingerprint

    files = data_files(args, required=False)
    if files is None:
        return None
    task = load_files_task(files, args.model, max_length=args.max_length, seed=0)
    return {**files.to_dict(), "max_length": task.max_length, "sha256": files_fingerprint(files)}


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "sweep",
        help="run a sweep of schedules x methods x seeds into a resumable results store",
        description=__doc__,
    )
    add_sweep_arguments(parser, default_out="runs/sweep")
    parser.set_defaults(func=run)


def request_from_args(args: argparse.Namespace):  # noqa: ANN201 - SweepRequest (imported lazily)
    """The sweep the flags ask for (the user's files are read here, once: a bad file is one message now)."""
    from pyramid_bert.sweep.request import SweepRequest

    return SweepRequest(
        preset=args.preset, tasks=tuple(_split(args.task)) if args.task else None, data=user_data(args),
        model=args.model, methods=tuple(_split([args.methods])) if args.methods else None, seeds=args.seeds,
        protocol=args.protocol, epochs=args.epochs, adapt_epochs=args.adapt_epochs,
        max_train_examples=args.max_train_examples, max_eval_examples=args.max_eval_examples, threads=args.threads,
        workers=args.workers, executor=args.executor, device=args.device, glue_dir=args.glue_dir,
        synthetic=bool(args.synthetic), out=args.out,
    )  # fmt: skip


def plan_from_args(args: argparse.Namespace):  # noqa: ANN201 - SweepSetup (imported lazily)
    """Check the arguments and plan the trials (no store is touched yet)."""
    from pyramid_bert.sweep.request import plan_sweep

    if args.retry_failed and not args.resume:
        raise ConfigError("--retry-failed needs --resume")
    if getattr(args, "extend", False) and not args.resume:
        raise ConfigError("--extend needs --resume (it grows the plan of an existing store)")
    return plan_sweep(request_from_args(args))


def check_data(tasks: list[str], *, glue_dir: str | None) -> None:
    """Load each task once before the sweep: a missing corpus or GLUE folder is one clear message now,
    not one failed trial per configuration later (and downloads happen before the progress bar)."""
    from pyramid_bert.data import load_task

    for task in tasks:
        load_task(task, glue_dir=glue_dir)


def run_setup(setup: Any, args: argparse.Namespace):  # noqa: ANN201 - SweepSummary
    """As the store's one driver (another run on it stops here), open it, run the sweep, close everything."""
    from pyramid_bert.sweep.driver_lock import DriverLock

    if setup.store_path.exists() and not args.resume:
        raise ConfigError(
            f"{setup.store_path} already exists: pass --resume to continue that sweep, or choose another --out"
        )
    with DriverLock(setup.store_path, f"pyramid-bert {getattr(args, 'command', 'sweep')}"):
        return _run_locked(setup, args)


def _run_locked(setup: Any, args: argparse.Namespace):  # noqa: ANN202 - SweepSummary
    """Run the sweep of ``setup`` into its store: the separate timing pass first (when the preset has one: alone,
    before any worker starts), then the trials with the chosen executor."""
    from pyramid_bert.sweep.executors import make_executor
    from pyramid_bert.sweep.recorded_plan import check_resumed_plan, record_plan
    from pyramid_bert.sweep.runner import run_sweep
    from pyramid_bert.sweep.store import ResultsStore

    if args.resume:
        check_resumed_plan(setup.store_path, setup.settings, extend=getattr(args, "extend", False))  # else refused
    if not args.synthetic and "data" not in setup.settings:  # the user's files were read when planning
        check_data(setup.settings["tasks"], glue_dir=args.glue_dir)
    trial_fn = _trial_function(synthetic=args.synthetic)
    with ResultsStore(setup.store_path) as store:
        record_plan(store, setup.settings, extend=getattr(args, "extend", False))
        if setup.speed_pass is not None:
            _speed_pass(setup, store, args)
        executor = make_executor(
            args.executor, address=args.address, cpus_per_trial=args.cpus_per_trial,
            gpus_per_trial=args.gpus_per_trial, workers=args.workers, threads=setup.settings["threads"],
        )  # fmt: skip
        if getattr(executor, "workers", 1) > 1 and not args.no_progress:
            print(f"sweep: {executor.workers} worker processes, {setup.settings['threads'] or 'default'} thread(s) each",
                  file=sys.stderr)  # fmt: skip
        try:
            return run_sweep(
                setup.trials, store, trial_fn, checkpoint_root=setup.out / "checkpoints", executor=executor,
                resume=args.resume, retry_failed=args.retry_failed, progress=not args.no_progress,
                threads=setup.settings["threads"], timed_apart=setup.speed_pass is not None,
            )  # fmt: skip
        finally:
            executor.close()


def _speed_pass(setup: Any, store: Any, args: argparse.Namespace) -> None:
    """Time every configuration apart from training (one process, the trials' threads) and train what it chose."""
    from pyramid_bert.sweep.speed_pass import run_speed_pass

    if args.synthetic:
        from pyramid_bert.sweep.synthetic import SyntheticTimer

        timer = SyntheticTimer(setup.speed_pass.repeats)
    else:
        import torch

        from pyramid_bert.sweep.speed_timer import ModelTimer

        torch.set_num_threads(setup.settings["threads"] or torch.get_num_threads())
        timer = ModelTimer(setup.speed_pass, device=args.device, glue_dir=args.glue_dir)
    started = time.perf_counter()
    setup.after_speed_pass(run_speed_pass(setup.speed_groups, store, timer, setup.speed_pass,
                                          progress=not args.no_progress))  # fmt: skip
    if not args.no_progress:
        print(f"speed pass: {(time.perf_counter() - started) / 60:.1f} min; {len(setup.trials)} trials to run",
              file=sys.stderr)  # fmt: skip


def run(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    setup = plan_from_args(args)
    print(f"sweep: {len(setup.trials)} trials into {setup.store_path}", file=sys.stderr)
    summary = run_setup(setup, args)
    minutes = (time.perf_counter() - started) / 60
    lost = f", {summary.retryable} of them lost: --resume runs them again" if summary.retryable else ""
    print(
        f"sweep: {summary.ran} trials run ({summary.failed} failed{lost}), {summary.already_done} already done, "
        f"{minutes:.1f} min; results in {setup.store_path}; tables: pyramid-bert report {setup.store_path}"
    )
    return 1 if summary.failed else 0


def _split(values: list[str]) -> list[str]:
    names = [name.strip() for value in values for name in value.split(",")]
    return list(dict.fromkeys(name for name in names if name))


def _trial_function(*, synthetic: bool):  # noqa: ANN202 - TrialFunction
    if synthetic:
        from pyramid_bert.sweep.synthetic import synthetic_trial

        return synthetic_trial
    from pyramid_bert.sweep.finetune_trial import finetune_trial

    return finetune_trial
