"""Parsers of the six text corpora, each from the file (or folder) its catalog source extracts.

Every parser returns the raw examples as ``(texts, labels)``: ``texts`` a list of str, ``labels`` a list
of label names (str) for classification or of float scores for regression, one per text, in file order.
Mapping label names to ids, de-duplication and splitting happen in :mod:`pyramid_bert.data.tasks`.
A file that does not have the expected layout raises DataError naming the file and what is missing.
"""

from __future__ import annotations

import bz2
import csv
import io
from collections.abc import Iterable
from pathlib import Path

from pyramid_bert.data.files import wide_csv_fields
from pyramid_bert.errors import DataError

RawExamples = tuple[list[str], list[str] | list[float]]


def _require_columns(path: Path, header: Iterable[str] | None, required: Iterable[str]) -> None:
    present = list(header or [])
    missing = [column for column in required if column not in present]
    if missing:
        raise DataError(f"{path}: missing column(s) {', '.join(map(repr, missing))}; found {present}")


def read_rt_polarity(path: Path) -> RawExamples:
    """Rotten Tomatoes snippets: bz2 CSV with columns ``category`` (fresh | rotten | plot) and ``text``.

    The 'plot' rows are movie synopses, not reviews, and are dropped.
    """
    with io.TextIOWrapper(bz2.open(path), encoding="utf-8", newline="") as stream, wide_csv_fields():
        reader = csv.DictReader(stream)
        _require_columns(path, reader.fieldnames, ("category", "text"))
        rows = [(row["text"], row["category"]) for row in reader if row["category"] != "plot"]
    return [text for text, _ in rows], [category for _, category in rows]


def read_trec(path: Path) -> RawExamples:
    """TREC questions: lines ``COARSE:fine question text``; the label is the coarse class."""
    texts, labels = [], []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        tag, _, question = line.partition(" ")
        coarse, colon, _fine = tag.partition(":")
        if not colon or not question.strip():
            raise DataError(f"{path}, line {number}: expected 'COARSE:fine question', got {line[:60]!r}")
        texts.append(question)
        labels.append(coarse)
    return texts, labels


def read_sms_spam(path: Path) -> RawExamples:
    """SMS Spam Collection: CSV with columns ``spam`` (1 = spam, 0 = ham) and ``text``."""
    with path.open(encoding="utf-8", newline="") as stream, wide_csv_fields():
        reader = csv.DictReader(stream)
        _require_columns(path, reader.fieldnames, ("spam", "text"))
        rows = list(reader)
    names = {"0": "ham", "1": "spam"}
    return [row["text"] for row in rows], [names.get(row["spam"].strip(), row["spam"]) for row in rows]


def read_movie_sentiment_score(path: Path) -> RawExamples:
    """Hutto & Gilbert (ICWSM 2014) movie snippets: TSV ``id, sentiment, text``; sentiment in [-4, 4]."""
    lines = path.read_text(encoding="utf-8").splitlines()
    header = lines[0].split("\t") if lines else []
    _require_columns(path, header, ("sentiment", "text"))
    score_column, text_column = header.index("sentiment"), header.index("text")
    texts, scores = [], []
    for number, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        fields = line.split("\t")
        try:
            score = float(fields[score_column])
            text = fields[text_column]
        except (IndexError, ValueError) as error:
            raise DataError(f"{path}, line {number}: expected 'id<TAB>score<TAB>text', got {line[:60]!r}") from error
        texts.append(text)
        scores.append(score)
    return texts, scores


def read_pang_lee_reviews(path: Path) -> RawExamples:
    """Pang & Lee full reviews: headerless CSV (UTF-8 with BOM) of rows ``polarity, review``; 1 / -1."""
    with path.open(encoding="utf-8-sig", newline="") as stream, wide_csv_fields():
        rows = list(csv.reader(stream))
    names = {"1": "positive", "-1": "negative"}
    texts, labels = [], []
    for number, row in enumerate(rows, start=1):
        if len(row) != 2:
            raise DataError(f"{path}, row {number}: expected 2 columns (polarity, review), got {len(row)}")
        labels.append(names.get(row[0].strip(), row[0]))
        texts.append(row[1])
    return texts, labels


def read_bbc_news(folder: Path) -> RawExamples:
    """BBC News: one folder per topic holding one ``.txt`` file per article; topics in sorted order."""
    topics = sorted(entry.name for entry in folder.iterdir() if entry.is_dir()) if folder.is_dir() else []
    if not topics:
        raise DataError(f"{folder}: expected one sub-folder of .txt articles per topic, found none")
    texts, labels = [], []
    for topic in topics:
        for article in sorted((folder / topic).glob("*.txt")):
            raw = article.read_bytes()
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                text = raw.decode("latin-1")  # one article of the corpus is not UTF-8
            texts.append(text)
            labels.append(topic)
    return texts, labels
