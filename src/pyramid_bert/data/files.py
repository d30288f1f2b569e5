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
import json
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
    """``(columns, rows, line_numbers, class_names)`` of a data file; ``class_names``: see :class:`RawExamples`."""
    file = Path(path)
    if not file.exists():
        raise DataError(f"{flag}: no such file or folder: {file}")
    if file.is_dir():
        return _read_dataset_folder(file, flag)
    suffix = file.suffix.lower()
    if suffix in TABLE_FORMATS:
        return (*_read_table(file, flag, TABLE_FORMATS[suffix]), None)
    if suffix in JSON_FORMATS:
        return (*_read_jsonl(file, flag), None)
    raise DataError(f"{flag}: {file}: unknown format {suffix or '(no extension)'!r}; valid: {FORMATS_TEXT}")


def _read_table(file: Path, flag: str, delimiter: str) -> tuple[list[str], list[dict[str, Any]], list[int]]:
    rows, lines = [], []
    with open(file, newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle, delimiter=delimiter)
        try:
            header = next(reader, None)
            if not header or not any(name.strip() for name in header):
                raise DataError(f"{flag}: {file} is empty (no header row)")
            header = [name.strip() for name in header]
            for fields in reader:
                if not fields or (len(fields) == 1 and not fields[0].strip()):
                    continue  # blank line
                if len(fields) != len(header):
                    raise DataError(
                        f"{flag}: {file} line {reader.line_num}: {len(fields)} field(s), the header has "
                        f"{len(header)} ({', '.join(header)}); quote fields that hold the delimiter"
                    )
                rows.append(dict(zip(header, fields, strict=True)))
                lines.append(reader.line_num)
        except csv.Error as error:
            raise DataError(f"{flag}: {file} line {reader.line_num}: unparseable row ({error})") from None
        except UnicodeDecodeError as error:
            raise DataError(f"{flag}: {file} is not UTF-8 text ({error.reason} at byte {error.start})") from None
    return header, rows, lines


def _read_jsonl(file: Path, flag: str) -> tuple[list[str], list[dict[str, Any]], list[int]]:
    rows, lines, columns = [], [], {}
    try:
        text = file.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise DataError(f"{flag}: {file} is not UTF-8 text ({error.reason} at byte {error.start})") from None
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as error:
            raise DataError(f"{flag}: {file} line {number}: unparseable JSON ({error.msg})") from None
        if not isinstance(row, dict):
            raise DataError(f"{flag}: {file} line {number}: expected a JSON object per line, got {type(row).__name__}")
        columns.update(dict.fromkeys(row))
        rows.append(row)
        lines.append(number)
    if not rows:
        raise DataError(f"{flag}: {file} is empty (no JSON rows)")
    return list(columns), rows, lines


def _read_dataset_folder(folder: Path, flag: str) -> tuple[list[str], list[dict[str, Any]], list[int], list[str] | None]:
    try:
        import datasets
    except ImportError:
        raise DataError(f"{flag}: {folder} is a folder; reading datasets folders needs `pip install datasets`") from None
    try:
        dataset = datasets.load_from_disk(str(folder))
    except (FileNotFoundError, ValueError) as error:
        raise DataError(f"{flag}: {folder} is not a folder saved with datasets' save_to_disk ({error})") from None
    if isinstance(dataset, datasets.DatasetDict):
        raise DataError(
            f"{flag}: {folder} holds a DatasetDict ({', '.join(dataset)}); give one split's folder, e.g. {folder}/train"
        )
    columns = list(dataset.column_names)
    class_names = {name: feature.names for name, feature in dataset.features.items()
                   if isinstance(feature, datasets.ClassLabel)}  # fmt: skip
    rows = list(dataset)
    if not rows:
        raise DataError(f"{flag}: {folder} is empty (no rows)")
    return columns, rows, list(range(1, len(rows) + 1)), class_names or None  # type: ignore[return-value]


def read_examples(
    path: str | Path, flag: str, text_columns: tuple[str, ...], label_column: str | None
) -> RawExamples:
    """The examples of data file ``path``: its ``text_columns`` (one, or two for pairs) and ``label_column``
    (None: unlabelled, for prediction). Errors name ``flag``, the file, the columns found and bad lines."""
    return examples_from_rows(read_rows(path, flag), path, flag, text_columns, label_column)


def examples_from_rows(
    table: tuple[list[str], list[dict[str, Any]], list[int], list[str] | None],
    path: str | Path,
    flag: str,
    text_columns: tuple[str, ...],
    label_column: str | None,
) -> RawExamples:
    """:func:`read_examples` on what :func:`read_rows` returned (for callers that also need the rows)."""
    columns, rows, lines, class_names = table
    if not rows:
        raise DataError(f"{flag}: {path} is empty (a header but no rows)")
    if not 1 <= len(text_columns) <= 2:
        raise DataError(f"--text-column: give one column, or two for sentence pairs; got {len(text_columns)}")
    wanted = [(name, "--text-column") for name in text_columns]
    if label_column is not None:
        wanted.append((label_column, "--label-column"))
    for name, name_flag in wanted:
        if name not in columns:
            raise DataError(f"{name_flag}: {path} has no column {name!r}; columns found: {', '.join(map(str, columns))}")
    texts = [_texts(rows, lines, name, path, flag) for name in text_columns]
    labels = None
    if label_column is not None:
        labels = []
        for row, line in zip(rows, lines, strict=True):
            value = row.get(label_column)
            if value is None or (isinstance(value, str) and not value.strip()):
                raise DataError(f"{flag}: {path} line {line}: empty label in column {label_column!r}")
            labels.append(value.strip() if isinstance(value, str) else value)
    names = (class_names or {}).get(label_column) if label_column is not None else None
    return RawExamples(texts[0], texts[1] if len(texts) == 2 else None, labels, lines, names)


def _texts(rows: list[dict[str, Any]], lines: list[int], column: str, path: str | Path, flag: str) -> list[str]:
    texts = []
    for row, line in zip(rows, lines, strict=True):
        value = row.get(column)
        if value is None:
            raise DataError(f"{flag}: {path} line {line}: no value in text column {column!r}")
        if not isinstance(value, str):
            raise DataError(f"{flag}: {path} line {line}: text column {column!r} holds {type(value).__name__}, not text")
        texts.append(value)
    return texts
