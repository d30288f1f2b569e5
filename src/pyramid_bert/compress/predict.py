"""Label a file of texts with a (pyramid) classifier folder: :func:`predict_file`.

The input is read with the same rules as training data (:mod:`pyramid_bert.data.files`: CSV, TSV, JSONL or a
``datasets`` folder; ``text_columns`` one, or two for pairs; no label needed). The output (CSV, TSV or JSONL, by its
extension) holds every input column plus ``label`` (the class name from ``id2label``; the predicted value for
regression) and ``score`` (the softmax probability of that class; the value for regression); when the input already
has such a column the new ones are ``predicted_label`` / ``predicted_score``. Written to a temporary file, renamed.
"""

from __future__ import annotations

import csv
import itertools
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm
from transformers import AutoTokenizer

from pyramid_bert.compiling import compile_model
from pyramid_bert.data.files import examples_from_rows, stream_rows
from pyramid_bert.data.user_task import input_limit
from pyramid_bert.errors import CheckpointError, ConfigError
from pyramid_bert.io import atomic_stream, check_output_file
from pyramid_bert.patch.hf import load_pyramid_model
from pyramid_bert.patch.quantize import quantize
from pyramid_bert.precision import check_precision, stored_precision
from pyramid_bert.training.batching import make_batches, restore_order
from pyramid_bert.training.model_folder import validate_model_folder

OUTPUT_FORMATS = (".csv", ".tsv", ".jsonl", ".json")
#: Batches read, predicted and written at a time: sorting a chunk by length keeps padding low, memory stays flat.
CHUNK_BATCHES = 8
#: A row of an input file: ``(line number, {column: value})``.
Row = tuple[int, dict[str, Any]]


def predict_file(
    folder: str | Path,
    input_path: str | Path,
    output_path: str | Path,
    *,
    text_columns: tuple[str, ...] = ("text",),
    batch_size: int = 128,
    max_length: int | None = None,
    device: str = "cpu",
    progress: bool = True,
    replace: bool = False,
    precision: str | None = None,
    compile: bool = False,
) -> int:
    """Predict every row of ``input_path`` with the model in ``folder``; write ``output_path`` (an existing file only
    with ``replace``); returns the row count. ``precision``: ``fp32`` or ``int8`` (None: the one the folder's config
    names, else fp32; see :mod:`pyramid_bert.precision`).

    Streams: rows are read :data:`CHUNK_BATCHES` batches at a time, predicted (sorted by length, padded per batch)
    and written as they come, so memory does not grow with the file. The first chunk is checked before the model is
    loaded; a bad row further on stops the run and leaves ``output_path`` as it was. ``compile``: predict under
    ``torch.compile`` (:func:`pyramid_bert.compiling.compile_model`).
    """

    output = Path(output_path)
    if precision is not None:
        check_precision(precision)
    _check_output(Path(input_path), output)
    check_output_file(output, "--output", force=replace)
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ConfigError(f"--batch-size: must be an int >= 1, got {batch_size!r}")
    columns, rows = stream_rows(input_path, "--input")  # read lazily, a chunk at a time
    chunks = _chunks(rows, batch_size * CHUNK_BATCHES)
    first = next(chunks, [])
    _chunk_texts(columns, first, input_path, text_columns)  # an empty file or a missing column: before loading
    model, tokenizer = _load(folder, precision, device)
    if compile:
        compile_model(model)
    length = _input_length(model, tokenizer, max_length)
    label_name, score_name = _output_names(columns)
    count = 0
    with _atomic_row_writer(output, [*columns, label_name, score_name]) as write, tqdm(
        desc="predict", unit="row", disable=not progress, dynamic_ncols=True
    ) as bar:
        for chunk in itertools.chain([first], chunks):
            text_a, text_b = _chunk_texts(columns, chunk, input_path, text_columns)
            labels, scores = predict_texts(model, tokenizer, text_a, text_b, batch_size=batch_size,
                                           max_length=length, device=device)  # fmt: skip
            write([{**row, label_name: label, score_name: score}
                   for (_, row), label, score in zip(chunk, labels, scores, strict=True)])  # fmt: skip
            count += len(chunk)
            bar.update(len(chunk))
    return count


def _output_names(columns: list[str]) -> tuple[str, str]:
    """``label``/``score``, or ``predicted_label``/``predicted_score`` when the input has either name."""
    return ("label", "score") if not {"label", "score"} & set(columns) else ("predicted_label", "predicted_score")


def _chunks(rows: Iterator[Row], size: int) -> Iterator[list[Row]]:
    """``rows`` in lists of ``size`` (the last one shorter), read lazily."""
    while chunk := list(itertools.islice(rows, size)):
        yield chunk


def _chunk_texts(
    columns: list[str], chunk: list[Row], path: str | Path, text_columns: tuple[str, ...]
) -> tuple[list[str], list[str] | None]:
    """``(text_a, text_b)`` of a chunk, with the data files' checks (DataError naming the line)."""
    lines, rows = [line for line, _ in chunk], [row for _, row in chunk]
    examples = examples_from_rows((columns, rows, lines, None), path, "--input", text_columns, None)
    return examples.text_a, examples.text_b


def _input_length(model: Any, tokenizer: Any, max_length: int | None) -> int:
    """N: ``max_length`` (at most the model's limit, ConfigError otherwise) or the model's limit."""
    limit = input_limit(model.config, tokenizer)
    if max_length is not None and not 2 <= max_length <= limit:
        raise ConfigError(f"--max-length: must be an int in 2..{limit} (the model's limit), got {max_length!r}")
    return max_length or limit


def _check_output(input_path: Path, output: Path) -> None:
    if output.suffix.lower() not in OUTPUT_FORMATS:
        raise ConfigError(f"--output: {output}: unknown format {output.suffix or '(none)'!r}; valid: {', '.join(OUTPUT_FORMATS)}")
    if output.exists() and input_path.exists() and output.resolve() == input_path.resolve():
        raise ConfigError(f"--output: {output} is the input file; write the predictions to another file")
    if output.is_dir():
        raise ConfigError(f"--output: {output} is a folder; give a file name ending in {', '.join(OUTPUT_FORMATS)}")


def _load(folder: str | Path, precision: str | None, device: str) -> tuple[Any, Any]:
    """The (pyramid) model at ``precision`` (None: its config's), on ``device``, and its tokenizer."""
    config = validate_model_folder(folder)
    wanted = precision or stored_precision(config)
    try:
        model = load_pyramid_model(str(folder), precision="fp32").to(device)
        return quantize(model, wanted), AutoTokenizer.from_pretrained(folder)
    except (OSError, ValueError) as error:
        raise CheckpointError(f"model folder {folder}: cannot load ({error})") from None


def predict_texts(
    model: Any,
    tokenizer: Any,
    text_a: list[str],
    text_b: list[str] | None = None,
    *,
    batch_size: int = 128,
    max_length: int | None = None,
    device: str = "cpu",
    progress: bool = False,
) -> tuple[list[Any], list[float]]:
    """``(labels, scores)`` for the texts: batches sorted by length, padded per batch, in the input order."""

    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ConfigError(f"--batch-size: must be an int >= 1, got {batch_size!r}")
    length = max_length or input_limit(model.config, tokenizer)
    arguments = (text_a,) if text_b is None else (text_a, text_b)
    encodings = dict(tokenizer(*arguments, padding="max_length", truncation=True, max_length=length, return_tensors="pt"))
    model.eval().to(device)
    batches = make_batches(encodings, batch_size, "sorted")
    chunks = []
    with torch.inference_mode():
        for batch in tqdm(batches, desc="predict", unit="batch", disable=not progress, dynamic_ncols=True):
            chunks.append(model(**batch.to(device).inputs).logits.float().cpu())
    logits = restore_order(batches, chunks) if chunks else torch.zeros(0, model.config.num_labels)
    if model.config.num_labels == 1:
        values = logits[:, 0].tolist()
        return values, values
    probabilities = logits.softmax(dim=-1)
    scores, ids = probabilities.max(dim=-1)
    names = model.config.id2label
    return [names[int(i)] for i in ids], [round(float(s), 6) for s in scores]


@contextmanager
def _atomic_row_writer(output: Path, columns: list[str]) -> Iterator[Callable[[list[dict[str, Any]]], None]]:
    """A function writing rows (CSV/TSV with a header, or JSONL, by ``output``'s extension) through
    :func:`pyramid_bert.io.atomic_stream`: ``output`` appears, synced, only when the block ends without an error."""
    with atomic_stream(output, "w", newline="", encoding="utf-8") as stream:
        if output.suffix.lower() in (".jsonl", ".json"):
            yield lambda rows: stream.writelines(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
        else:
            delimiter = "\t" if output.suffix.lower() == ".tsv" else ","
            writer = csv.DictWriter(stream, fieldnames=columns, delimiter=delimiter)
            writer.writeheader()
            yield writer.writerows

