"""Which trial may start next: jobs in plan order, each held back until the jobs it needs have finished.

The warm protocol's pyramid trials need the dense trial of their seed (its checkpoint is their start).
:class:`JobQueue` hands out jobs whose needs all finished successfully, those that other jobs need first,
then in the order they were planned;
a job whose need failed is never run: it comes back as a failed outcome that names the failed need (a
``retryable`` one when the need was lost to the infrastructure: a resumed sweep runs both).
Needs that are not among the jobs count as met (they finished in an earlier run).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pyramid_bert.sweep.outcome import STATUS_FAILED, STATUS_RETRYABLE

Job = tuple[str, dict[str, Any]]


class JobQueue:
    """Jobs waiting to run, with ``needs[key]`` = keys that must finish successfully first."""

    def __init__(self, jobs: Sequence[Job], needs: Mapping[str, Sequence[str]] | None = None) -> None:
        self._waiting: list[Job] = list(jobs)
        keys = {key for key, _ in self._waiting}
        self._needs = {key: {k for k in (needs or {}).get(key, ()) if k in keys} for key in keys}
        self._ok: set[str] = set()
        self._failed: set[str] = set()
        self._retryable: set[str] = set()

    def __bool__(self) -> bool:
        return bool(self._waiting)

    def pop_ready(self) -> Job | None:
        """The next job whose needs all succeeded (None when every waiting job still waits): jobs that others
        need come first (so a dense trial is not left until its seed's pyramid trials are all that remain),
        then plan order."""
        needed = {need for key, _ in self._waiting for need in self._needs[key]}
        ready = [i for i, (key, _) in enumerate(self._waiting) if self._needs[key] <= self._ok]
        if not ready:
            return None
        first_needed = next((i for i in ready if self._waiting[i][0] in needed), ready[0])
        return self._waiting.pop(first_needed)

    def requeue(self, job: Job) -> None:
        """Put a job that was handed out back at the front (its run was lost, or it must wait for a free pool)."""
        self._waiting.insert(0, job)

    def finish(self, key: str, *, ok: bool, retryable: bool = False) -> list[dict[str, Any]]:
        """Record how ``key`` ended; returns failed outcomes for the jobs that can now never run (``retryable``:
        ``key`` was lost to the infrastructure, and so are the jobs that need it)."""
        (self._ok if ok else self._failed).add(key)
        if retryable and not ok:
            self._retryable.add(key)
        blocked: list[dict[str, Any]] = []
        changed = not ok
        while changed:
            changed = False
            for job_key, _ in list(self._waiting):
                failed_needs = sorted(self._needs[job_key] & self._failed)
                if failed_needs:
                    self._waiting = [job for job in self._waiting if job[0] != job_key]
                    self._failed.add(job_key)
                    retryable_need = next((need for need in failed_needs if need in self._retryable), None)
                    if retryable_need is not None:
                        self._retryable.add(job_key)
                    blocked.append(blocked_outcome(job_key, retryable_need or failed_needs[0],
                                                   retryable=retryable_need is not None))  # fmt: skip
                    changed = True
        return blocked


def blocked_outcome(key: str, failed_need: str, *, retryable: bool = False) -> dict[str, Any]:
    """The outcome of a job that was not run because a trial it needs failed (``retryable``: was lost)."""
    if retryable:
        error = f"not run: the trial it starts from ({failed_need[:16]}) was lost; --resume runs both"
    else:
        error = f"not run: the trial it starts from ({failed_need[:16]}) failed; fix it and use --resume --retry-failed"
    return {
        "key": key,
        "status": STATUS_RETRYABLE if retryable else STATUS_FAILED,
        "result": {},
        "error": error,
        "versions": {},
        "host": None,
        "started_at": None,
        "finished_at": None,
        "wall_seconds": None,
    }
