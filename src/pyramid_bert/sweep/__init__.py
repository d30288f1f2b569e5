"""Sweeps: trial specs, the plan, executors (local, Ray) and the resumable SQLite results store.

Knows nothing of how a trial trains: it runs an injectable ``trial_fn(config: dict) -> dict``.
"""

from __future__ import annotations

from pyramid_bert.sweep.executors import EXECUTORS, LocalExecutor, RayExecutor, make_executor
from pyramid_bert.sweep.plan import ModelShape, Schedule, TrainingBudget, method_schedules, plan_trials
from pyramid_bert.sweep.runner import SweepSummary, run_sweep
from pyramid_bert.sweep.spec import SWEEP_METHODS, TrialSpec
from pyramid_bert.sweep.store import ResultsStore, TrialRecord

__all__ = [
    "EXECUTORS",
    "SWEEP_METHODS",
    "LocalExecutor",
    "ModelShape",
    "RayExecutor",
    "ResultsStore",
    "Schedule",
    "SweepSummary",
    "TrainingBudget",
    "TrialRecord",
    "TrialSpec",
    "make_executor",
    "method_schedules",
    "plan_trials",
    "run_sweep",
]
