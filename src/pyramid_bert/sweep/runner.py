"""Running a planned sweep into a results store, resumably.

The driver asks the store which trials already have a row, hands the others to the executor, and writes
each outcome as it arrives (one transaction per trial). Killed at any moment, it loses at most the trials
in flight, which the next ``resume=True`` run does again; finished trials are never run twice. Trials lost to
the infrastructure (``retryable``: a dead worker, a lost Ray task, a run folder in use) are run again too.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tqdm.auto import tqdm

from pyramid_bert.errors import ConfigError
from pyramid_bert.spec import format_m
from pyramid_bert.sweep.executors import Executor, LocalExecutor
from pyramid_bert.sweep.outcome import TrialFunction
from pyramid_bert.sweep.scheduling import blocked_outcome
from pyramid_bert.sweep.spec import TrialSpec
from pyramid_bert.sweep.store import STATUS_FAILED, STATUS_OK, STATUS_RETRYABLE, ResultsStore, TrialRecord


@dataclass(frozen=True)
class SweepSummary:
    """What a run of :func:`run_sweep` did."""

    planned: int
    already_done: int
    ran: int
    failed: int
    #: Of ``failed``: trials lost to the infrastructure, which a resumed sweep runs again.
    retryable: int = 0

    @property
    def complete(self) -> bool:
        return self.already_done + self.ran == self.planned


def unique_trials(trials: Sequence[TrialSpec]) -> list[TrialSpec]:
    """Trials without repeats of the same key, first occurrence kept."""
    unique: dict[str, TrialSpec] = {}
    for trial in trials:
        unique.setdefault(trial.key, trial)
    return list(unique.values())


def run_sweep(
    trials: Sequence[TrialSpec],
    store: ResultsStore,
    trial_fn: TrialFunction,
    *,
    checkpoint_root: str | Path,
    executor: Executor | None = None,
    resume: bool = False,
    retry_failed: bool = False,
    progress: bool = True,
    threads: int | None = None,
    timed_apart: bool = False,
) -> SweepSummary:
    """Run every trial of ``trials`` that has no row in ``store`` yet and record each outcome.

    ``resume=False`` refuses a store that already holds trials (so results are never mixed by
    accident); trials recorded ``retryable`` are always run again, ``retry_failed`` also re-runs trials
    recorded as failed. Each trial's checkpoint goes to
    ``checkpoint_root / <first 16 hex digits of its key>``; ``threads`` sets torch's threads per trial
    (where it runs, not what it is: not part of a trial's identity). A warm trial waits for the trial it
    starts from; when that one failed (now or in the store) it is recorded as failed without running.
    ``timed_apart``: the separate timing pass timed every configuration, so no trial times itself.
    """
    trials = unique_trials(trials)
    recorded = len(store)
    if recorded and not resume:
        raise ConfigError(
            f"the results store {store.path} already holds {recorded} trials: pass --resume to continue "
            "that sweep, or choose another --out"
        )
    done = store.finished_keys(include_failed=not retry_failed)
    pending = [trial for trial in trials if trial.key not in done]
    by_key = {trial.key: trial for trial in pending}
    checkpoint_root = Path(checkpoint_root)
    speed_seed = -1 if timed_apart else min(trial.seed for trial in trials) if trials else 0
    jobs = [(trial.key, trial_config(trial, checkpoint_root, threads=threads, speed_seed=speed_seed))
            for trial in pending]  # fmt: skip
    needs = {trial.key: [trial.init_from] for trial in pending if trial.init_from in by_key}
    ok_keys = store.finished_keys(include_failed=False)
    unmet = {t.key: t.init_from for t in pending if t.init_from and t.init_from not in by_key and t.init_from not in ok_keys}

    executor = executor or LocalExecutor()
    recorder = _Recorder(store, by_key, _progress_bar(total=len(trials), initial=len(trials) - len(pending),
                                                      enabled=progress))  # fmt: skip
    try:
        for key, need in unmet.items():
            recorder.record(blocked_outcome(key, need))
        runnable = [job for job in jobs if job[0] not in unmet]
        for outcome in executor.run(runnable, trial_fn, needs=needs, on_start=recorder.started):
            recorder.record(outcome)
    finally:
        recorder.bar.close()
    return SweepSummary(planned=len(trials), already_done=len(trials) - len(pending), ran=recorder.ran,
                        failed=recorder.failed, retryable=recorder.retryable)  # fmt: skip


class _Recorder:
    """The driver's side of a sweep: writes each outcome to the store and keeps the progress bar, which
    names the trials running now."""

    def __init__(self, store: ResultsStore, by_key: dict[str, TrialSpec], bar) -> None:  # noqa: ANN001 - tqdm
        self.store, self.by_key, self.bar = store, by_key, bar
        self.running: dict[str, str] = {}
        self.ran = self.failed = self.retryable = 0

    def started(self, key: str) -> None:
        self.running[key] = trial_label(self.by_key[key])
        self._show()

    def record(self, outcome: dict) -> None:
        trial = self.by_key[outcome["key"]]
        status = outcome["status"] if outcome["status"] in (STATUS_OK, STATUS_RETRYABLE) else STATUS_FAILED
        self.store.add(_record(trial, status, outcome))
        self.running.pop(trial.key, None)
        self.ran += 1
        if status != STATUS_OK:
            self.failed += 1
            self.retryable += status == STATUS_RETRYABLE
            first_line = (outcome.get("error") or "").splitlines()[:1]
            how = "lost (--resume runs it again)" if status == STATUS_RETRYABLE else "failed"
            self.bar.write(
                f"trial {how} ({trial_label(trial)}): {first_line[0] if first_line else 'unknown error'}",
                file=sys.stderr,
            )
        self.bar.update(1)
        self._show()

    def _show(self) -> None:
        text = "running: " + "; ".join(self.running.values()) if self.running else ""
        self.bar.set_postfix_str(text + (f" ({self.failed} failed)" if self.failed else ""))


def trial_config(
    trial: TrialSpec, checkpoint_root: Path, *, threads: int | None = None, speed_seed: int | None = None
) -> dict:
    """The job of ``trial``: its ``FinetuneConfig`` fields (checkpoint under ``checkpoint_root``) and options.

    A warm trial starts from the checkpoint of the trial it is ``init_from`` (the dense model of its seed):
    that folder becomes its ``model``. Every trial's result records its protocol (``trial_options``).
    Speed depends on the configuration, not on the weights a seed gives it, so only trials of ``speed_seed``
    (the sweep's first seed; None: every seed; -1: none, a separate timing pass timed them) time themselves against
    the dense model; the report gives the other seeds of a configuration its measured speedups.
    """
    config = trial.finetune_config(str(checkpoint_root / trial.key[:16]), threads=threads)
    if trial.init_from is not None:
        config["model"] = str(checkpoint_root / trial.init_from[:16])
    config["trial_options"]["protocol"] = trial.protocol
    if speed_seed is not None and trial.seed != speed_seed:
        config["trial_options"]["measure_speed"] = False
    return config


def trial_label(trial: TrialSpec) -> str:
    """A short name for progress lines: task, method, schedule, m (coreset), seed."""
    m = f" m={format_m(trial.m)}" if trial.method == "coreset" else ""
    schedule = "" if trial.method == "dense" else f" {trial.schedule}"
    return f"{trial.task} {trial.method}{schedule}{m} seed {trial.seed}"


def _record(trial: TrialSpec, status: str, outcome: dict) -> TrialRecord:
    return TrialRecord(
        spec=trial,
        status=status,
        result=outcome.get("result") or {},
        error=outcome.get("error"),
        versions=outcome.get("versions") or {},
        host=outcome.get("host"),
        started_at=outcome.get("started_at"),
        finished_at=outcome.get("finished_at"),
        wall_seconds=outcome.get("wall_seconds"),
    )


def _progress_bar(*, total: int, initial: int, enabled: bool):  # noqa: ANN202 - tqdm type

    return tqdm(
        total=total,
        initial=initial,
        unit="trial",
        desc="sweep",
        disable=not enabled,
        file=sys.stderr,
        dynamic_ncols=True,
    )
