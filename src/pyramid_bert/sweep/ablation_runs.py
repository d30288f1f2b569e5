"""Running the ablations: their shared settings, their one store, and the dense model the analyses borrow.

Every ablation writes into one resumable store (``<out>/results.sqlite``, default ``runs/ablate``) as its one driver
(:class:`~pyramid_bert.sweep.driver_lock.DriverLock`), and ``analyze --model ablate-dense`` uses the seed-0 dense
model of that store (fine-tuned first when missing), so the analyses look at the very model the ablations adapt.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from pyramid_bert.errors import ConfigError
from pyramid_bert.sweep.ablation_trial import ablation_trial
from pyramid_bert.sweep.ablations import AblationSettings, dense_trials
from pyramid_bert.sweep.driver_lock import DriverLock
from pyramid_bert.sweep.executors import make_executor
from pyramid_bert.sweep.outcome import TrialFunction
from pyramid_bert.sweep.plan import ModelShape
from pyramid_bert.sweep.request import DEFAULT_MODEL, STORE_NAME, model_shape, task_length
from pyramid_bert.sweep.runner import SweepSummary, run_sweep
from pyramid_bert.sweep.store import ResultsStore
from pyramid_bert.sweep.synthetic import synthetic_trial

DEFAULT_OUT = "runs/ablate"
DEFAULT_TASK = "rt-polarity"


def ablation_settings(
    *,
    task: str | None = None,
    data: dict[str, Any] | None = None,
    model: str = DEFAULT_MODEL,
    seeds: int = 3,
    device: str = "cpu",
    glue_dir: str | None = None,
    max_eval_examples: int | None = None,
    synthetic: bool = False,
) -> AblationSettings:
    """The settings every ablation shares: a named ``task`` (default rt-polarity) or the user's files ``data``
    (:attr:`~pyramid_bert.sweep.spec.TrialSpec.data`), the base model's shape, seeds 0..seeds-1, budgets."""
    for flag, value in (("--seeds", seeds), ("--max-eval-examples", max_eval_examples)):
        if value is not None and value < 1:
            raise ConfigError(f"{flag} must be >= 1, got {value}")
    if data is None:
        task = task or DEFAULT_TASK
        n = task_length(task)
    else:
        task, n = Path(data["train"]).name, int(data["max_length"])
    settings = AblationSettings(
        task=task, n=n, model=model, shape=ModelShape(*model_shape(model, synthetic=synthetic)),
        seeds=tuple(range(seeds)), device=device, glue_dir=glue_dir,
        data=None if data is None else tuple(sorted(data.items())),
    )  # fmt: skip
    if max_eval_examples is None:
        return settings
    return replace(
        settings, budget=replace(settings.budget, max_eval_examples=max_eval_examples),
        adapt_budget=replace(settings.adapt_budget, max_eval_examples=max_eval_examples),
    )  # fmt: skip


def run_ablation_trials(
    trials: list, out: Path, *, trial_fn: TrialFunction, workers: int | None, threads: int, progress: bool,
    retry_failed: bool = False, driver: str = "pyramid-bert ablate",
) -> SweepSummary:  # fmt: skip
    """Run ``trials`` (dense first) into the shared store ``out/results.sqlite``, resuming whatever is there, as
    its one driver (``driver`` describes this run to another that finds the store in use)."""
    executor = make_executor("local", workers=workers, threads=threads)
    try:
        with DriverLock(out / STORE_NAME, driver), ResultsStore(out / STORE_NAME) as store:
            return run_sweep(trials, store, trial_fn, checkpoint_root=out / "checkpoints", executor=executor,
                             resume=True, retry_failed=retry_failed, progress=progress, threads=threads)  # fmt: skip
    finally:
        executor.close()


def ablation_trial_function(*, synthetic: bool) -> TrialFunction:
    """What runs one ablation trial: fine-tune / adapt and evaluate, or the synthetic stand-in (no model)."""
    if synthetic:
        return synthetic_trial

    return ablation_trial


def ablation_dense_checkpoint(
    task: str | None, *, glue_dir: str | None = None, threads: int = 1, progress: bool = True, out: str = DEFAULT_OUT
) -> Path:
    """The seed-0 dense model of the ablation store in ``out`` for ``task`` (fine-tuned now if missing)."""
    dense = dense_trials(ablation_settings(task=task, seeds=1, glue_dir=glue_dir))[0]
    store = Path(out)
    summary = run_ablation_trials(
        [dense], store, trial_fn=ablation_trial_function(synthetic=False), workers=1, threads=threads,
        progress=progress, driver="pyramid-bert analyze --model ablate-dense",
    )  # fmt: skip
    if summary.failed:
        raise ConfigError(f"--model ablate-dense: fine-tuning the dense model failed; see {store / STORE_NAME}")
    return store / "checkpoints" / dense.key[:16]
