"""One driver per results store: the exclusive lock that a run writing a store holds while it writes.

Two drivers on one store (two ``sweep --resume`` on the same ``--out``, ``ablate`` beside ``analyze --model
ablate-dense``) would run the same trials into the same checkpoint folders, and the loser's trials would be
stored as failed. The driver takes :class:`DriverLock` (``.NAME.lock`` beside the store, a :mod:`filelock`
lock, so the kernel frees it whenever its process ends) without waiting: a second driver stops at once with a
message that names the store and the run holding it, described by ``.NAME.driver.json`` beside the store.
"""

from __future__ import annotations

import json
import os
import socket
from datetime import datetime, timezone
from pathlib import Path

from filelock import FileLock, Timeout

from pyramid_bert.errors import BusyError
from pyramid_bert.io import atomic_write_json


class DriverLock:
    """The driver's lock of the results store at ``store_path``; ``command`` describes this run to others."""

    def __init__(self, store_path: str | Path, command: str) -> None:
        self.store_path = Path(store_path)
        self.command = command
        self.lock_path = self.store_path.with_name(f".{self.store_path.name}.lock")
        self.holder_path = self.store_path.with_name(f".{self.store_path.name}.driver.json")
        self._lock = FileLock(str(self.lock_path))

    def acquire(self) -> None:
        """Take the lock now, or raise :class:`BusyError` naming the store and the run that holds it."""
        self.store_path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._lock.acquire(timeout=0)
        except Timeout:
            raise BusyError(
                f"the results store {self.store_path} is in use by another run ({self._holder()}); wait for that "
                "run to finish, or write to another --out"
            ) from None
        try:
            atomic_write_json(self.holder_path, {"command": self.command, "pid": os.getpid(),
                                                 "host": socket.gethostname(), "started_at": _now()})  # fmt: skip
        except BaseException:
            self._lock.release()
            raise

    def release(self) -> None:
        """Let the next driver in (the description of this run goes first)."""
        if self._lock.is_locked:
            self.holder_path.unlink(missing_ok=True)
            self._lock.release()

    def _holder(self) -> str:
        """The other run as it described itself, or a placeholder while it is still writing that."""
        try:
            holder = json.loads(self.holder_path.read_text())
            return f"{holder['command']}, pid {holder['pid']} on {holder['host']}, since {holder['started_at']}"
        except (OSError, ValueError, KeyError, TypeError):
            return "no description of it yet"

    def __enter__(self) -> DriverLock:
        self.acquire()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release()


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
