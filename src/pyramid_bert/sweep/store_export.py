"""A results store as a small text file to commit: one JSON object per trial (spec, status, result), the store's
settings first, then one per configuration the separate timing pass timed (``{"speed": ...}``; version 2). ``pyramid-bert report trials.jsonl`` rebuilds every table and plot from such a file alone, so the
numbers of a write-up can be re-checked from the repository without the runs that made them.

Local paths in results (checkpoint folders) are kept as the run wrote them, relative to where it ran.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

from pyramid_bert.errors import DataError
from pyramid_bert.io import atomic_write_text
from pyramid_bert.sweep.spec import TrialSpec
from pyramid_bert.sweep.store import ResultsStore, SpeedRecord, TrialRecord, open_existing

EXPORT_FORMAT = "pyramid-bert trials"
EXPORT_VERSION = 2
#: Versions :func:`read_export` reads (1: before the timing pass; its trials timed themselves).
READABLE_EXPORT_VERSIONS = (1, 2)
META_NAMES = ("sweep", "speed_choice")


def export_store(store_path: str | Path, out: str | Path) -> Path:
    """Write every trial of the store at ``store_path`` to ``out`` (JSON lines); returns ``out``."""
    with open_existing(store_path) as store:
        header = {"format": EXPORT_FORMAT, "version": EXPORT_VERSION,
                  "meta": {name: store.get_meta(name) for name in META_NAMES if store.get_meta(name) is not None}}  # fmt: skip
        lines = [json.dumps(header, sort_keys=True)] + [json.dumps(_record_dict(r), sort_keys=True) for r in store.records()]
        lines += [json.dumps({"speed": _speed_dict(record)}, sort_keys=True) for record in store.speeds().values()]
    return atomic_write_text(out, "\n".join(lines) + "\n")


def _speed_dict(record: SpeedRecord) -> dict[str, Any]:
    data = asdict(record)
    data["spec"] = record.spec.to_dict()
    return data


def _record_dict(record: TrialRecord) -> dict[str, Any]:
    data = asdict(record)
    data["spec"] = record.spec.to_dict()
    return data


def read_export(path: str | Path) -> tuple[dict[str, Any], list[TrialRecord], list[SpeedRecord]]:
    """The settings, the trials and the timing pass of an export written by :func:`export_store` (DataError naming
    what is wrong)."""
    file = Path(path)
    try:
        lines = [json.loads(line) for line in file.read_text().splitlines() if line.strip()]
    except (OSError, json.JSONDecodeError) as error:
        raise DataError(f"{file}: not a trials export ({error})") from None
    if not lines or lines[0].get("format") != EXPORT_FORMAT:
        raise DataError(f"{file}: not a trials export (its first line should name the format {EXPORT_FORMAT!r})")
    if lines[0].get("version", 1) not in READABLE_EXPORT_VERSIONS:
        raise DataError(f"{file}: a trials export of version {lines[0].get('version')}; this pyramid-bert reads "
                        f"versions {', '.join(map(str, READABLE_EXPORT_VERSIONS))}")  # fmt: skip
    records = [TrialRecord(**{**line, "spec": TrialSpec.from_dict(line["spec"])}) for line in lines[1:] if "speed" not in line]
    speeds = [SpeedRecord(**{**line["speed"], "spec": TrialSpec.from_dict(line["speed"]["spec"])})
              for line in lines[1:] if "speed" in line]  # fmt: skip
    return lines[0].get("meta") or {}, records, speeds


@contextmanager
def store_from_export(path: str | Path) -> Iterator[Path]:
    """A temporary results store holding the trials of the export at ``path`` (removed on leaving)."""
    meta, records, speeds = read_export(path)
    with TemporaryDirectory(prefix="pyramid-bert-export-") as folder:
        store_path = Path(folder) / "results.sqlite"
        with ResultsStore(store_path) as store:
            for name, value in meta.items():
                store.set_meta(name, value)
            for record in records:
                store.add(record)
            for speed in speeds:
                store.add_speed(speed)
        yield store_path
