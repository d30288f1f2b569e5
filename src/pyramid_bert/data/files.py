"""Read the user's own labelled texts: CSV, TSV, JSONL or a ``datasets`` folder into raw columns.

:func:`read_examples` returns the texts (one column, or two for sentence pairs) and the raw labels of one file,
with the line each example came from, so that later checks can name it. Turning raw labels into a task (label
kind, mapping, splits, N) is :mod:`pyramid_bert.data.user_task`.

Formats, by extension: ``.csv`` (comma), ``.tsv`` (tab), ``.jsonl`` / ``.json`` (one JSON object a line); a folder
is read with ``datasets.load_from_disk`` (a ``Dataset`` saved with ``save_to_disk``; needs ``pip install
datasets``). Every problem is a :class:`~pyramid_bert.errors.DataError` naming the flag, the file and, for a
malformed row, its line number.
"""

from __future__ import annotations

import csv
import itertools
import json
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pyramid_bert.errors import DataError

TABLE_FORMATS = {".csv": ",", ".tsv": "\t"}
JSON_FORMATS = (".jsonl", ".json")
FORMATS_TEXT = "CSV (.csv), TSV (.tsv), JSONL (.jsonl/.json) or a folder saved with datasets' save_to_disk"


@dataclass
class RawExamples:
    """One file's examples: ``text_a[i]`` (``text_b[i]`` for pairs), ``labels[i]`` as read (None: no label
    column), ``lines[i]`` the line (or row number of a ``datasets`` folder) it came from."""

    text_a: list[str]
    text_b: list[str] | None
    labels: list[Any] | None
    lines: list[int]
    label_names: list[str] | None = None  # a ``datasets`` ClassLabel column's names, in id order

    def __len__(self) -> int:
        return len(self.text_a)


def read_rows(path: str | Path, flag: str) -> tuple[list[str], list[dict[str, Any]], list[int], list[str] | None]:
    """``(columns, rows, line_numbers, class_names)`` of a data file; ``class_names``: see :class:`RawExamples`.

    Every column of every row is kept (as :func:`~pyramid_bert.compress.predict.predict_file` writes them back);
    :func:`read_examples` keeps only the columns it needs.
    """
    file = _existing(path, flag)
    if file.is_dir():
        return _read_dataset_folder(file, flag)
    columns: dict[str, None] = {}
    rows: list[dict[str, Any]] = []
    lines: list[int] = []
    for line, row in _stream_rows(file, flag, columns):
        rows.append(row)
        lines.append(line)
    return list(columns), rows, lines, None


def stream_rows(path: str | Path, flag: str) -> tuple[list[str], Iterator[tuple[int, dict[str, Any]]]]:
    """``(columns, rows)`` of a data file or ``datasets`` folder, the rows ``(line number, row)`` read one at a time
    (a file never held whole): the formats and errors of :func:`read_rows`. JSONL files are read twice (the first
    pass collects every key, so the columns are known before the first row)."""
    file = _existing(path, flag)
    if file.is_dir():
        return _dataset_folder_rows(file, flag)
    columns: dict[str, None] = {}
    if file.suffix.lower() in TABLE_FORMATS:
        rows = _stream_rows(file, flag, columns)
        first = next(rows, None)  # reads the header into columns
        return list(columns), itertools.chain([first] if first is not None else [], rows)
    for _ in _stream_rows(file, flag, columns):
        pass
    return list(columns), _stream_rows(file, flag, {})


def _dataset_folder_rows(folder: Path, flag: str) -> tuple[list[str], Iterator[tuple[int, dict[str, Any]]]]:
    """The columns and rows of a ``datasets`` save_to_disk folder (memory-mapped, read row by row)."""
    dataset = _load_dataset_folder(folder, flag)
    return list(dataset.column_names), enumerate(dataset, start=1)


def _existing(path: str | Path, flag: str) -> Path:
    """``path`` as a Path; DataError when it does not exist or (a file) has no supported extension."""
    file = Path(path)
    if not file.exists():
        raise DataError(f"{flag}: no such file or folder: {file}")
    suffix = file.suffix.lower()
    if not file.is_dir() and suffix not in TABLE_FORMATS and suffix not in JSON_FORMATS:
        raise DataError(f"{flag}: {file}: unknown format {suffix or '(no extension)'!r}; valid: {FORMATS_TEXT}")
    return file


def _stream_rows(file: Path, flag: str, columns: dict[str, None]) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(line number, row)`` of each row of a CSV, TSV or JSONL file, read one line at a time.

    Adds the columns found to ``columns`` (the header; for JSONL every key, in order of first appearance).
    """
    suffix = file.suffix.lower()
    if suffix in TABLE_FORMATS:
        return _table_rows(file, flag, TABLE_FORMATS[suffix], columns)
    return _jsonl_rows(file, flag, columns)


def _table_rows(
    file: Path, flag: str, delimiter: str, columns: dict[str, None]
) -> Iterator[tuple[int, dict[str, Any]]]:
    with open(file, newline="", encoding="utf-8") as handle, wide_csv_fields():
        reader = csv.reader(handle, delimiter=delimiter)
        try:
            header = next(reader, None)
            if not header or not any(name.strip() for name in header):
                raise DataError(f"{flag}: {file} is empty (no header row)")
            header = [name.strip() for name in header]
            columns.update(dict.fromkeys(header))
            for fields in reader:
                if not fields or (len(fields) == 1 and not fields[0].strip()):
                    continue  # blank line
                if len(fields) != len(header):
                    raise DataError(
                        f"{flag}: {file} line {reader.line_num}: {len(fields)} field(s), the header has "
                        f"{len(header)} ({', '.join(header)}); quote fields that hold the delimiter"
                    )
                yield reader.line_num, dict(zip(header, fields, strict=True))
        except csv.Error as error:
            raise DataError(f"{flag}: {file} line {reader.line_num}: unparseable row ({error})") from None
        except UnicodeDecodeError as error:
            raise DataError(f"{flag}: {file} is not UTF-8 text ({error.reason} at byte {error.start})") from None


def _jsonl_rows(file: Path, flag: str, columns: dict[str, None]) -> Iterator[tuple[int, dict[str, Any]]]:
    found = False
    with open(file, encoding="utf-8") as handle:
        try:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as error:
                    raise DataError(f"{flag}: {file} line {number}: unparseable JSON ({error.msg})") from None
                if not isinstance(row, dict):
                    raise DataError(
                        f"{flag}: {file} line {number}: expected a JSON object per line, got {type(row).__name__}"
                    )
                columns.update(dict.fromkeys(row))
                found = True
                yield number, row
        except UnicodeDecodeError as error:
            raise DataError(f"{flag}: {file} is not UTF-8 text ({error.reason} at byte {error.start})") from None
    if not found:
        raise DataError(f"{flag}: {file} is empty (no JSON rows)")


def _read_dataset_folder(
    folder: Path, flag: str
) -> tuple[list[str], list[dict[str, Any]], list[int], list[str] | None]:
    import datasets  # optional dependency (extra "data"): only datasets folders need it

    dataset = _load_dataset_folder(folder, flag)
    columns = list(dataset.column_names)
    class_names = {name: feature.names for name, feature in dataset.features.items()
                   if isinstance(feature, datasets.ClassLabel)}  # fmt: skip
    rows = list(dataset)
    if not rows:
        raise DataError(f"{flag}: {folder} is empty (no rows)")
    return columns, rows, list(range(1, len(rows) + 1)), class_names or None  # type: ignore[return-value]


def _load_dataset_folder(folder: Path, flag: str) -> Any:
    """The ``datasets.Dataset`` saved in ``folder`` (DataError naming ``flag`` when it is none, or a DatasetDict)."""
    try:
        import datasets  # optional dependency (extra "data"): only datasets folders need it
    except ImportError:
        raise DataError(
            f"{flag}: {folder} is a folder; reading datasets folders needs `pip install datasets`"
        ) from None
    try:
        dataset = datasets.load_from_disk(str(folder))
    except (FileNotFoundError, ValueError) as error:
        raise DataError(f"{flag}: {folder} is not a folder saved with datasets' save_to_disk ({error})") from None
    if isinstance(dataset, datasets.DatasetDict):
        raise DataError(
            f"{flag}: {folder} holds a DatasetDict ({', '.join(dataset)}); give one split's folder, e.g. {folder}/train"
        )
    return dataset


def read_examples(path: str | Path, flag: str, text_columns: tuple[str, ...], label_column: str | None) -> RawExamples:
    """The examples of data file ``path``: its ``text_columns`` (one, or two for pairs) and ``label_column``
    (None: unlabelled, for prediction). Errors name ``flag``, the file, the columns found and bad lines.

    A CSV, TSV or JSONL file is read one row at a time, keeping only these columns' values (no row dicts, no other
    columns), and equal labels share one string: the result costs about 1.5x the file's size in memory.
    """
    file = _existing(path, flag)
    if file.is_dir():
        return examples_from_rows(_read_dataset_folder(file, flag), path, flag, text_columns, label_column)
    columns: dict[str, None] = {}
    kept: dict[str, list[Any]] = {name: [] for name in _wanted(text_columns, label_column)}
    lines: list[int] = []
    shared_labels: dict[str, str] = {}
    for line, row in _stream_rows(file, flag, columns):
        for name, values in kept.items():
            value = row.get(name)
            values.append(_shared(shared_labels, value) if name == label_column else value)
        lines.append(line)
    return _examples(_Kept(list(columns), kept, lines), path, flag, text_columns, label_column)


def examples_from_rows(
    table: tuple[list[str], list[dict[str, Any]], list[int], list[str] | None],
    path: str | Path,
    flag: str,
    text_columns: tuple[str, ...],
    label_column: str | None,
) -> RawExamples:
    """:func:`read_examples` on what :func:`read_rows` returned (for callers that also need the rows)."""
    columns, rows, lines, class_names = table
    kept = {name: [row.get(name) for row in rows] for name in _wanted(text_columns, label_column)}
    return _examples(_Kept(columns, kept, lines, class_names), path, flag, text_columns, label_column)


@dataclass
class _Kept:
    """What was kept of a file: every column found, the wanted columns' values (None where a row lacks the
    column), the line of each row and a ``datasets`` folder's class names by column."""

    columns: list[str]
    values: dict[str, list[Any]]
    lines: list[int]
    class_names: Any = None


def _wanted(text_columns: tuple[str, ...], label_column: str | None) -> list[str]:
    return list(dict.fromkeys([*text_columns, *([label_column] if label_column is not None else [])]))


#: At most this many distinct labels share one string each (beyond it, a regression target, values are kept as read).
_MAX_SHARED_LABELS = 4096


def _shared(cache: dict[str, str], value: Any) -> Any:
    """One string object for equal label strings (labels repeat), so a million rows do not hold a million copies."""
    if not isinstance(value, str):
        return value
    if len(cache) < _MAX_SHARED_LABELS:
        return cache.setdefault(value, value)
    return cache.get(value, value)


def _examples(
    kept: _Kept, path: str | Path, flag: str, text_columns: tuple[str, ...], label_column: str | None
) -> RawExamples:
    if not kept.lines:
        raise DataError(f"{flag}: {path} is empty (a header but no rows)")
    if not 1 <= len(text_columns) <= 2:
        raise DataError(f"--text-column: give one column, or two for sentence pairs; got {len(text_columns)}")
    wanted = [(name, "--text-column") for name in text_columns]
    if label_column is not None:
        wanted.append((label_column, "--label-column"))
    for name, name_flag in wanted:
        if name not in kept.columns:
            found = ", ".join(map(str, kept.columns))
            raise DataError(f"{name_flag}: {path} has no column {name!r}; columns found: {found}")
    texts = [_texts(kept.values[name], kept.lines, name, path, flag) for name in text_columns]
    labels = None
    if label_column is not None:
        labels = []
        for value, line in zip(kept.values[label_column], kept.lines, strict=True):
            if value is None or (isinstance(value, str) and not value.strip()):
                raise DataError(f"{flag}: {path} line {line}: empty label in column {label_column!r}")
            labels.append(value.strip() if isinstance(value, str) else value)
    names = (kept.class_names or {}).get(label_column) if label_column is not None else None
    return RawExamples(texts[0], texts[1] if len(texts) == 2 else None, labels, kept.lines, names)


def _texts(values: list[Any], lines: list[int], column: str, path: str | Path, flag: str) -> list[str]:
    for value, line in zip(values, lines, strict=True):
        if value is None:
            raise DataError(f"{flag}: {path} line {line}: no value in text column {column!r}")
        if not isinstance(value, str):
            raise DataError(
                f"{flag}: {path} line {line}: text column {column!r} holds {type(value).__name__}, not text"
            )
    return values


#: The csv field size limit inside :func:`wide_csv_fields`: corpora and GLUE files hold fields above csv's 128 KiB.
WIDE_FIELD_LIMIT = min(sys.maxsize, 2**31 - 1)
_field_limit_lock = threading.Lock()
_field_limit_holders = 0
_field_limit_before = 0


@contextmanager
def wide_csv_fields() -> Iterator[None]:
    """Let the csv module read fields up to :data:`WIDE_FIELD_LIMIT` inside the block, then restore the limit.

    csv's limit is one per process: nested and concurrent blocks (threads) share one raise; the first to enter
    raises it, the last to leave restores the value found on entry. Code outside the blocks keeps csv's default.
    """
    global _field_limit_holders, _field_limit_before
    with _field_limit_lock:
        if _field_limit_holders == 0:
            _field_limit_before = csv.field_size_limit(WIDE_FIELD_LIMIT)
        _field_limit_holders += 1
    try:
        yield
    finally:
        with _field_limit_lock:
            _field_limit_holders -= 1
            if _field_limit_holders == 0:
                csv.field_size_limit(_field_limit_before)
