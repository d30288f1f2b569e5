"""The results store: one SQLite file (standard library), one row per finished trial.

Each row is keyed by :attr:`TrialSpec.key` (a hash of the trial's full spec) and holds the spec, every
metric and timing the trial returned, the software versions, the host and the checkpoint path. A row is
written by one INSERT in its own transaction, in WAL mode, so a process killed at any moment (kill -9
included) leaves either the whole row or none: resuming re-runs exactly the trials without a row.
``synchronous=FULL`` makes each committed row survive a power cut too (one fsync per trial).

The ``speeds`` table holds the separate timing pass (:mod:`pyramid_bert.sweep.speed_pass`): one row per timed
configuration (keyed by the :attr:`TrialSpec.config_key` its trials share), written when the pass times it, so an
interrupted pass resumes where it stopped.

The file carries SQLite's ``application_id`` and ``user_version`` headers: a file that is not a
pyramid-bert store, or one written by an incompatible schema version, is refused with a clear message and
never written to. A store of schema version 1 (before the ``retryable`` status) or 2 (before the ``speeds`` table)
is read as it is (it has no timing pass) and upgraded, in one transaction, when it is opened for writing.

Opened read-only (reports), the store gets no ``-wal`` / ``-shm`` files beside it: with no write-ahead log
present (no writer has it open) it is opened ``immutable``, which needs neither.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pyramid_bert.errors import DataError
from pyramid_bert.spec import format_m
from pyramid_bert.sweep.outcome import STATUS_FAILED, STATUS_OK, STATUS_RETRYABLE
from pyramid_bert.sweep.spec import TrialSpec

#: SQLite ``PRAGMA application_id`` of a pyramid-bert results store: the bytes "PyBR".
APPLICATION_ID = 0x50794252
#: SQLite ``PRAGMA user_version``: bump when the tables change (2: the ``retryable`` status; 3: the ``speeds`` table).
SCHEMA_VERSION = 3
#: Versions this pyramid-bert reads; the older ones are upgraded when opened for writing.
READABLE_VERSIONS = (1, 2, SCHEMA_VERSION)
STATUSES = (STATUS_OK, STATUS_FAILED, STATUS_RETRYABLE)

# Result fields copied into their own columns (everything the trial returned is also kept in result_json).
RESULT_COLUMNS = (
    "dev_metric",
    "test_metric",
    "metric_name",
    "speedup_median",
    "speedup_q25",
    "speedup_q75",
    "predicted_speedup",
    "space_reduction",
    "train_seconds",
    "eval_seconds",
    "checkpoint",
)

_TRIALS_TABLE = f"""
CREATE TABLE trials (
    key TEXT PRIMARY KEY,
    config_key TEXT NOT NULL,
    schedule_key TEXT NOT NULL,
    task TEXT NOT NULL,
    model TEXT NOT NULL,
    method TEXT NOT NULL,
    schedule TEXT NOT NULL,
    m TEXT,
    position TEXT NOT NULL,
    seed INTEGER NOT NULL,
    status TEXT NOT NULL CHECK (status IN ({", ".join(f"'{status}'" for status in STATUSES)})),
    error TEXT,
    dev_metric REAL,
    test_metric REAL,
    metric_name TEXT,
    speedup_median REAL,
    speedup_q25 REAL,
    speedup_q75 REAL,
    predicted_speedup REAL,
    space_reduction REAL,
    train_seconds REAL,
    eval_seconds REAL,
    checkpoint TEXT,
    lengths_json TEXT,
    spec_json TEXT NOT NULL,
    result_json TEXT,
    versions_json TEXT,
    host TEXT,
    started_at TEXT,
    finished_at TEXT,
    wall_seconds REAL
)"""
_TRIALS_INDEX = "CREATE INDEX trials_by_task_method ON trials (task, method)"
_SPEEDS_TABLE = """
CREATE TABLE IF NOT EXISTS speeds (
    key TEXT PRIMARY KEY,
    grouping TEXT NOT NULL,
    task TEXT NOT NULL,
    method TEXT NOT NULL,
    schedule TEXT NOT NULL,
    spec_json TEXT NOT NULL,
    result_json TEXT NOT NULL,
    host TEXT,
    measured_at TEXT,
    wall_seconds REAL
)"""
_SCHEMA = (
    f"{_TRIALS_TABLE};\n{_TRIALS_INDEX};\nCREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);\n"
    f"{_SPEEDS_TABLE};\n"
)


@dataclass
class TrialRecord:
    """One row of the store: the spec, how it ended, and what it measured."""

    spec: TrialSpec
    status: str
    result: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    versions: dict[str, str] = field(default_factory=dict)
    host: str | None = None
    started_at: str | None = None
    finished_at: str | None = None
    wall_seconds: float | None = None

    @property
    def ok(self) -> bool:
        return self.status == STATUS_OK

    @property
    def retryable(self) -> bool:
        """Lost to the infrastructure (dead worker, lost Ray task, run folder in use): ``--resume`` runs it again."""
        return self.status == STATUS_RETRYABLE


@dataclass
class SpeedRecord:
    """One configuration timed by the separate timing pass: the spec of one of its trials (any seed: speed does
    not depend on the weights), the group it was timed in (a method column, e.g. "coreset" or "CS+") and what the
    timing found (``result``: see :func:`pyramid_bert.measure.speed.time_against_dense`)."""

    spec: TrialSpec
    group: str
    result: dict[str, Any]
    host: str | None = None
    measured_at: str | None = None
    wall_seconds: float | None = None

    @property
    def key(self) -> str:
        """The :attr:`TrialSpec.config_key` shared by every seed of the configuration."""
        return self.spec.config_key


class ResultsStore:
    """A results file, opened (and created if new) at ``path``.

    Use as a context manager or call :meth:`close`. Only the sweep's driver writes to it.
    """

    def __init__(self, path: str | Path, *, create: bool = True, read_only: bool = False) -> None:
        self.path = Path(path)
        self.read_only = read_only
        if self.path.is_dir():
            raise DataError(f"{self.path} is a folder, not a results store (give the results.sqlite inside it)")
        if not self.path.exists() and (read_only or not create):
            raise DataError(f"results store {self.path} does not exist (no such file)")
        _check_header_before_open(self.path)
        if read_only:
            if self.path.stat().st_size == 0:
                raise DataError(f"{self.path} is an empty file, not a pyramid-bert results store")
            self._connection = sqlite3.connect(read_only_uri(self.path), uri=True, timeout=30.0)
        else:
            if create:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            self._connection = sqlite3.connect(str(self.path), isolation_level=None, timeout=30.0)
        try:
            self._prepare()
        except BaseException:
            self._connection.close()
            raise

    # --- opening -------------------------------------------------------------------------------------
    def _prepare(self) -> None:
        db = self._connection
        try:
            application_id = db.execute("PRAGMA application_id").fetchone()[0]
            user_version = db.execute("PRAGMA user_version").fetchone()[0]
            tables = [row[0] for row in db.execute("SELECT name FROM sqlite_master")]
        except sqlite3.DatabaseError as error:
            raise DataError(f"{self.path} is not a pyramid-bert results store (not an SQLite file: {error})") from None
        if application_id == 0 and user_version == 0 and not tables:
            if self.read_only:
                raise DataError(f"{self.path} is an empty SQLite file, not a pyramid-bert results store")
            self._create_schema()
            return
        if application_id != APPLICATION_ID:
            raise DataError(
                f"{self.path} is an SQLite file but not a pyramid-bert results store "
                f"(application_id {application_id:#x}, expected {APPLICATION_ID:#x}); refusing to touch it: "
                "choose another path"
            )
        if user_version not in READABLE_VERSIONS:
            raise DataError(
                f"{self.path} is a pyramid-bert results store of schema version {user_version}, but this "
                f"pyramid-bert reads version {SCHEMA_VERSION}; it is left as it is: use a matching pyramid-bert "
                "or write to a new path"
            )
        if not self.read_only:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            if user_version != SCHEMA_VERSION:
                self._upgrade_schema()

    def _create_schema(self) -> None:
        db = self._connection
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.execute("BEGIN IMMEDIATE")
        try:
            for statement in filter(None, (s.strip() for s in _SCHEMA.split(";"))):
                db.execute(statement)
            db.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def _upgrade_schema(self) -> None:
        """Version 1 -> 2: the status column also takes ``retryable``. SQLite cannot change a CHECK constraint,
        so the table is copied (rows, their order and the index kept). 2 -> 3: the ``speeds`` table is added.
        One transaction for both."""
        db = self._connection
        db.execute("BEGIN IMMEDIATE")
        try:
            version = db.execute("PRAGMA user_version").fetchone()[0]  # another opener may have upgraded it meanwhile
            if version == 1:
                columns = ", ".join(row[1] for row in db.execute("PRAGMA table_info(trials)"))
                db.execute(_TRIALS_TABLE.replace("CREATE TABLE trials", "CREATE TABLE trials_upgraded", 1))
                db.execute(f"INSERT INTO trials_upgraded (rowid, {columns}) SELECT rowid, {columns} FROM trials")
                db.execute("DROP TABLE trials")
                db.execute("ALTER TABLE trials_upgraded RENAME TO trials")
                db.execute(_TRIALS_INDEX)
            if version < SCHEMA_VERSION:
                db.execute(_SPEEDS_TABLE)
                db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    # --- writing -------------------------------------------------------------------------------------
    def add(self, record: TrialRecord) -> bool:
        """Write one finished trial in a single transaction; False if its key already has a row.

        A trial that failed earlier is replaced by a new outcome of the same key (a retry).
        """
        spec, result = record.spec, record.result or {}
        row = {
            "key": spec.key,
            "config_key": spec.config_key,
            "schedule_key": spec.schedule_key,
            "task": spec.task,
            "model": spec.model,
            "method": spec.method,
            "schedule": spec.schedule,
            "m": format_m(spec.m),
            "position": spec.position,
            "seed": spec.seed,
            "status": record.status,
            "error": record.error,
            **{name: _plain(result.get(name)) for name in RESULT_COLUMNS},
            "lengths_json": _json_or_none(result.get("lengths", spec.lengths)),
            "spec_json": json.dumps(spec.to_dict(), sort_keys=True),
            "result_json": json.dumps(result, sort_keys=True, default=str),
            "versions_json": json.dumps(record.versions, sort_keys=True),
            "host": record.host,
            "started_at": record.started_at,
            "finished_at": record.finished_at,
            "wall_seconds": record.wall_seconds,
        }
        names = ", ".join(row)
        marks = ", ".join(f":{name}" for name in row)
        db = self._connection
        db.execute("BEGIN IMMEDIATE")
        try:
            existing = db.execute("SELECT status FROM trials WHERE key = ?", (spec.key,)).fetchone()
            if existing is not None and existing[0] == STATUS_OK:
                db.execute("ROLLBACK")
                return False
            db.execute(f"INSERT OR REPLACE INTO trials ({names}) VALUES ({marks})", row)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return True

    def add_speed(self, record: SpeedRecord) -> None:
        """Write (or replace) the timing of one configuration, in its own transaction."""
        row = {
            "key": record.key, "grouping": record.group, "task": record.spec.task, "method": record.spec.method,
            "schedule": record.spec.schedule, "spec_json": json.dumps(record.spec.to_dict(), sort_keys=True),
            "result_json": json.dumps(record.result, sort_keys=True, default=str), "host": record.host,
            "measured_at": record.measured_at, "wall_seconds": record.wall_seconds,
        }  # fmt: skip
        names, marks = ", ".join(row), ", ".join(f":{name}" for name in row)
        self._connection.execute(f"INSERT OR REPLACE INTO speeds ({names}) VALUES ({marks})", row)

    def speeds(self) -> dict[str, SpeedRecord]:
        """Every configuration the timing pass timed, by :attr:`SpeedRecord.key` (empty for stores written before the
        pass existed: their trials timed themselves)."""
        tables = {row[0] for row in self._connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if "speeds" not in tables:
            return {}
        query = "SELECT spec_json, grouping, result_json, host, measured_at, wall_seconds FROM speeds ORDER BY rowid"
        records = {}
        for spec_json, group, result_json, host, measured_at, wall in self._connection.execute(query):
            record = SpeedRecord(TrialSpec.from_dict(json.loads(spec_json)), group, json.loads(result_json), host,
                                 measured_at, wall)  # fmt: skip
            records[record.key] = record
        return records

    def set_meta(self, name: str, value: Any) -> None:
        """Store a JSON-able value under ``name`` (sweep settings, for the report)."""
        self._connection.execute(
            "INSERT OR REPLACE INTO meta (name, value) VALUES (?, ?)", (name, json.dumps(value, sort_keys=True))
        )

    # --- reading -------------------------------------------------------------------------------------
    def get_meta(self, name: str, default: Any = None) -> Any:
        row = self._connection.execute("SELECT value FROM meta WHERE name = ?", (name,)).fetchone()
        return default if row is None else json.loads(row[0])

    def finished_keys(self, *, include_failed: bool = True) -> set[str]:
        """Keys of trials that ended for good: successful ones, and (``include_failed``) failed ones. A
        ``retryable`` row is not finished: the trial did not get to run to its end."""
        statuses = (STATUS_OK, STATUS_FAILED) if include_failed else (STATUS_OK,)
        query = f"SELECT key FROM trials WHERE status IN ({', '.join('?' * len(statuses))})"
        return {row[0] for row in self._connection.execute(query, statuses)}

    def __len__(self) -> int:
        return int(self._connection.execute("SELECT COUNT(*) FROM trials").fetchone()[0])

    def records(self) -> Iterator[TrialRecord]:
        """Every row, in insertion order."""
        query = (
            "SELECT spec_json, status, result_json, error, versions_json, host, started_at, finished_at, "
            "wall_seconds FROM trials ORDER BY rowid"
        )
        for (
            spec_json,
            status,
            result_json,
            error,
            versions_json,
            host,
            started,
            finished,
            wall,
        ) in self._connection.execute(query):
            yield TrialRecord(
                spec=TrialSpec.from_dict(json.loads(spec_json)),
                status=status,
                result=json.loads(result_json) if result_json else {},
                error=error,
                versions=json.loads(versions_json) if versions_json else {},
                host=host,
                started_at=started,
                finished_at=finished,
                wall_seconds=wall,
            )

    def close(self) -> None:
        self._connection.close()

    def __enter__(self) -> ResultsStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


_SQLITE_MAGIC = b"SQLite format 3\x00"


def _check_header_before_open(path: Path) -> None:
    """Refuse a non-empty file that is not SQLite before sqlite3 gets a chance to write to it."""
    if not path.exists() or path.stat().st_size == 0:
        return
    with path.open("rb") as handle:
        magic = handle.read(len(_SQLITE_MAGIC))
    if magic != _SQLITE_MAGIC:
        raise DataError(f"{path} is not a pyramid-bert results store (not an SQLite file); refusing to touch it")


def read_only_uri(path: Path) -> str:
    """The SQLite URI that opens ``path`` read-only (``mode=ro``: SQLite refuses every write) without creating
    ``-wal`` / ``-shm`` files: ``immutable=1`` unless a write-ahead log is beside the file (a writer has it open,
    or one died before folding it in), whose rows only a WAL-reading connection sees."""
    uri = f"{path.resolve().as_uri()}?mode=ro"
    return uri if path.with_name(f"{path.name}-wal").exists() else f"{uri}&immutable=1"


def open_existing(path: str | Path) -> ResultsStore:
    """Open, read-only, a store that ``sweep`` / ``reproduce`` created (for reports): anything else is refused."""
    return ResultsStore(path, create=False, read_only=True)


def finished_by_seed(path: str | Path, *, task: str, variant: str | None = None) -> dict[int, TrialRecord]:
    """Seed -> the finished trial on ``task`` of the named configuration ``variant`` of the store at ``path`` (a
    study's ``NAME@GROUP``), or with ``variant`` None of its dense model; read-only."""
    with open_existing(path) as store:
        return {record.spec.seed: record for record in store.records()
                if record.ok and record.spec.task == task
                and (record.spec.method == "dense" if variant is None else record.spec.variant == variant)}  # fmt: skip


def is_results_store(path: str | Path) -> bool:
    """True when ``path`` is an SQLite file carrying the pyramid-bert application id."""
    path = Path(path)
    try:
        _check_header_before_open(path)
        with closing(sqlite3.connect(read_only_uri(path), uri=True)) as db:
            return db.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
    except (DataError, sqlite3.DatabaseError):
        return False




def _plain(value: Any) -> Any:
    if value is None or isinstance(value, (int, float, str)):
        return value
    try:
        return float(value)
    except (TypeError, ValueError):
        return str(value)


def _json_or_none(value: Any) -> str | None:
    return None if value is None else json.dumps(list(value) if isinstance(value, tuple) else value)
