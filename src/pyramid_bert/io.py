"""Atomic file writes: every file goes to a temporary sibling first, is synced to disk and renamed into place, and
the folder holding it is synced after the rename, so that a crash leaves either the old file or the new one.

Output guards: :func:`check_output_file` and :func:`check_output_dir` are the one rule of every command that writes
results where a flag says: an existing file is replaced only with ``--force``; an existing folder is written into
only when it is empty or pyramid-bert marked it (:data:`OUTPUT_MARKER`) as an output of the same command, so that
re-runs refresh and resume their own outputs, or with ``--force``.
"""

from __future__ import annotations

import csv
import io
import json
import os
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from pyramid_bert.errors import ConfigError


def _default_file_mode() -> int:
    """The mode ``open()`` gives a new file: 0666 less the process umask."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


_DEFAULT_FILE_MODE = _default_file_mode()


def fsync_file(path: str | os.PathLike[str]) -> None:
    """Flush the content of the file ``path`` to disk."""
    handle = os.open(path, os.O_RDONLY)
    try:
        os.fsync(handle)
    finally:
        os.close(handle)


def fsync_dir(folder: str | os.PathLike[str]) -> None:
    """Flush the entries of ``folder`` (a rename into it, a new file) to disk; nothing on Windows, where a folder
    cannot be opened for syncing."""
    if os.name == "nt":
        return
    fsync_file(folder)


def fsync_tree(folder: str | os.PathLike[str]) -> None:
    """Flush every file and folder under ``folder`` (and ``folder`` itself) to disk, before it is renamed into place."""
    for root, _, files in os.walk(folder):
        for name in files:
            fsync_file(os.path.join(root, name))
        fsync_dir(root)


@contextmanager
def atomic_stream(path: str | os.PathLike[str], mode: str = "wb", **open_kwargs: Any) -> Iterator[IO]:
    """A stream to a temporary file in ``path``'s folder, synced and renamed to ``path`` when the block ends (the
    folder synced after); on any failure the old ``path`` is untouched and the temporary file removed. For outputs
    written as they are produced (``mode="w"`` and ``encoding=`` for text)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{target.name}-", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(handle, mode, **open_kwargs) as stream:
            yield stream
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(temporary, _DEFAULT_FILE_MODE)  # mkstemp's 0600 would hide the results from everyone else
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    fsync_dir(target.parent)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` through a synced temporary file in the same folder and a rename (the folder is
    synced after it). On any failure the old ``path`` is untouched and the temporary file is removed."""
    with atomic_stream(path) as stream:
        stream.write(data)
    return Path(path)


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write UTF-8 ``text`` to ``path`` atomically."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike[str], data: Any) -> Path:
    """Write ``data`` as indented JSON to ``path`` atomically."""
    return atomic_write_text(path, json.dumps(data, indent=2) + "\n")


def read_csv_rows(*paths: str | os.PathLike[str]) -> list[dict[str, str]]:
    """The rows of each CSV file (a header line, then one row per line) in turn, as dicts of strings."""
    rows: list[dict[str, str]] = []
    for path in paths:
        with open(path, newline="", encoding="utf-8") as stream:
            rows += list(csv.DictReader(stream))
    return rows


def write_csv_atomic(path: str | os.PathLike[str], rows: Sequence[Mapping[str, Any]]) -> Path:
    """Write dict rows (columns from the first row) as CSV to ``path`` atomically."""
    buffer = io.StringIO()
    if rows:
        writer = csv.DictWriter(buffer, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return atomic_write_text(path, buffer.getvalue())


# ------------------------------------------------------------------------------------------- output guards
#: The file by which pyramid-bert marks a folder it created for a command's outputs (JSON: the kind of output and,
#: for a folder replaced as a whole, the files written into it).
OUTPUT_MARKER = ".pyramid-bert-output.json"


def check_output_file(path: str | os.PathLike[str], flag: str, *, force: bool) -> Path:
    """The output file ``path`` named by ``flag``, refused (ConfigError naming ``flag`` and ``--force``) when it is a
    folder, or when it exists and ``force`` is not given: a file of the user's is never replaced unasked."""
    target = Path(path)
    if target.is_dir():
        raise ConfigError(f"{flag}: {target} is a folder; give the name of a file to write")
    if target.exists() and not force:
        raise ConfigError(f"{flag}: {target} exists; choose another file or give --force to replace it")
    return target


def output_marker(folder: str | os.PathLike[str]) -> dict[str, Any] | None:
    """What the marker of ``folder`` says (``kind``, and ``files`` for a folder replaced as a whole), or None when
    pyramid-bert did not mark it (or the marker is unreadable)."""
    try:
        marker = json.loads((Path(folder) / OUTPUT_MARKER).read_text())
    except (OSError, ValueError):
        return None
    return marker if isinstance(marker, dict) else None


def check_output_dir(folder: str | os.PathLike[str], flag: str, *, kind: str, force: bool, whole: bool = False) -> Path:
    """Refuse the output folder ``folder`` named by ``flag`` unless it is absent, empty, marked as an output of
    ``kind`` by :func:`mark_output_dir` (a re-run of the same command refreshes its own files), or ``force`` is given.

    ``whole``: the folder will be replaced as a whole, so a marked folder is also refused when it holds a file that
    pyramid-bert did not write there (listed in the marker), which the replacement would delete.
    """
    target = Path(folder)
    if target.exists() and not target.is_dir():
        raise ConfigError(f"{flag}: {target} is a file; give the name of a folder to write into")
    if force or not target.exists():
        return target
    present = sorted(str(path.relative_to(target)) for path in target.rglob("*") if not path.is_dir())
    marker = output_marker(target)
    verb = "replace it" if whole else "write into it"
    if present and (marker is None or marker.get("kind") != kind):
        raise ConfigError(
            f"{flag}: {target} exists and was not written by `pyramid-bert {kind}`; choose another {flag} or give "
            f"--force to {verb}"
        )
    foreign = [name for name in present if name not in {OUTPUT_MARKER, *(marker or {}).get("files", [])}]
    if whole and foreign:
        raise ConfigError(
            f"{flag}: {target} holds files `pyramid-bert {kind}` did not write ({', '.join(foreign[:5])}"
            f"{', ...' if len(foreign) > 5 else ''}); move them away, choose another {flag} or give --force to {verb}"
        )
    return target


def mark_output_dir(folder: str | os.PathLike[str], kind: str, *, whole: bool = False) -> Path:
    """Create ``folder`` if needed and mark it as an output of ``kind``; ``whole``: also list the files in it now
    (a folder written in full before it is renamed into place, see :func:`check_output_dir`)."""
    target = Path(folder)
    target.mkdir(parents=True, exist_ok=True)
    marker: dict[str, Any] = {"kind": kind}
    if whole:
        marker["files"] = sorted(str(path.relative_to(target)) for path in target.rglob("*") if not path.is_dir())
    atomic_write_json(target / OUTPUT_MARKER, marker)
    return target


def prepare_output_dir(folder: str | os.PathLike[str], flag: str, *, kind: str, force: bool) -> Path:
    """:func:`check_output_dir`, then :func:`mark_output_dir`: the folder ``folder`` is ready for outputs of ``kind``."""
    check_output_dir(folder, flag, kind=kind, force=force)
    return mark_output_dir(folder, kind)
