"""Running one trial function and packing how it ended: result or error, timings, versions, host.

:func:`execute_trial` runs wherever the trial runs (this process, or a Ray worker on another machine) and
returns a plain dict, so a trial that raises is reported, not lost, and the sweep goes on. A trial that
could not run for a reason outside it (its run folder in use by another run; for the executors also a dead
worker process or a lost Ray task) ends ``retryable``: ``--resume`` runs it again, no ``--retry-failed`` needed.
"""

from __future__ import annotations

import importlib.metadata
import platform
import socket
import time
import traceback
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from pyramid_bert.errors import BusyError

#: A trial function: takes the keyword arguments of ``FinetuneConfig`` as a dict, returns a flat JSON-able
#: dict of results (dev_metric, test_metric, speedup_median, ...; see :mod:`pyramid_bert.sweep.trial`).
TrialFunction = Callable[[dict[str, Any]], dict[str, Any]]

STATUS_OK = "ok"
STATUS_FAILED = "failed"
#: An infrastructure failure (not the trial's own): a resumed sweep runs the trial again.
STATUS_RETRYABLE = "retryable"

_VERSIONED_PACKAGES = ("pyramid-bert", "torch", "transformers", "numpy", "ray")


def software_versions() -> dict[str, str]:
    """Versions of Python and of the packages that shape a result (those installed)."""
    versions = {"python": platform.python_version()}
    for package in _VERSIONED_PACKAGES:
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            continue
    return versions


def execute_trial(trial_fn: TrialFunction, key: str, config: dict[str, Any]) -> dict[str, Any]:
    """Run ``trial_fn(config)``; never raises for an error of the trial itself.

    Returns ``{"key", "status": "ok"|"failed"|"retryable", "result", "error", "versions", "host", "started_at",
    "finished_at", "wall_seconds"}``.
    """
    started_at = _now()
    start = time.perf_counter()
    status, result, error = STATUS_OK, {}, None
    try:
        result = dict(trial_fn(dict(config)))
    except Exception as exc:  # noqa: BLE001 - a failing trial is data, the sweep goes on
        status = STATUS_RETRYABLE if isinstance(exc, BusyError) else STATUS_FAILED
        error = f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=20)}"
    return {
        "key": key,
        "status": status,
        "result": result,
        "error": error,
        "versions": software_versions(),
        "host": socket.gethostname(),
        "started_at": started_at,
        "finished_at": _now(),
        "wall_seconds": time.perf_counter() - start,
    }


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
