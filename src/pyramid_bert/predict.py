"""Label a file of texts with a (pyramid) classifier folder: :func:`predict_file`.

The input is read with the same rules as training data (:mod:`pyramid_bert.data.files`: CSV, TSV, JSONL or a
``datasets`` folder; ``text_columns`` one, or two for pairs; no label needed). The output (CSV, TSV or JSONL, by its
extension) holds every input column plus ``label`` (the class name from ``id2label``; the predicted value for
regression) and ``score`` (the softmax probability of that class; the value for regression); when the input already
has such a column the new ones are ``predicted_label`` / ``predicted_score``. Written to a temporary file, renamed.
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path
from typing import Any

from pyramid_bert.errors import ConfigError
from pyramid_bert.io import check_output_file

OUTPUT_FORMATS = (".csv", ".tsv", ".jsonl", ".json")


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
) -> int:
    """Predict every row of ``input_path`` with the model in ``folder``; write ``output_path`` (an existing file only
    with ``replace``); returns the row count."""
    from pyramid_bert.data.files import examples_from_rows, read_rows

    output = Path(output_path)
    _check_output(Path(input_path), output)
    check_output_file(output, "--output", force=replace)
    table = read_rows(input_path, "--input")
    examples = examples_from_rows(table, input_path, "--input", text_columns, None)
    model, tokenizer = _load(folder)
    labels, scores = predict_texts(model, tokenizer, examples.text_a, examples.text_b, batch_size=batch_size,
                                   max_length=max_length, device=device, progress=progress)  # fmt: skip
    columns, rows = table[0], table[1]
    label_name, score_name = ("label", "score") if not {"label", "score"} & set(columns) else ("predicted_label", "predicted_score")
    out_rows = [{**row, label_name: label, score_name: score} for row, label, score in zip(rows, labels, scores, strict=True)]
    _write_rows(output, [*columns, label_name, score_name], out_rows)
    return len(out_rows)


def _check_output(input_path: Path, output: Path) -> None:
    if output.suffix.lower() not in OUTPUT_FORMATS:
        raise ConfigError(f"--output: {output}: unknown format {output.suffix or '(none)'!r}; valid: {', '.join(OUTPUT_FORMATS)}")
    if output.exists() and input_path.exists() and output.resolve() == input_path.resolve():
        raise ConfigError(f"--output: {output} is the input file; write the predictions to another file")
    if output.is_dir():
        raise ConfigError(f"--output: {output} is a folder; give a file name ending in {', '.join(OUTPUT_FORMATS)}")


def _load(folder: str | Path) -> tuple[Any, Any]:
    from transformers import AutoTokenizer

    from pyramid_bert import load_pyramid_model
    from pyramid_bert.errors import CheckpointError
    from pyramid_bert.model_folder import validate_model_folder

    validate_model_folder(folder)
    try:
        return load_pyramid_model(str(folder)), AutoTokenizer.from_pretrained(folder)
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
    import torch
    from tqdm.auto import tqdm

    from pyramid_bert.batching import make_batches, restore_order
    from pyramid_bert.data.user_task import input_limit

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


def _write_rows(output: Path, columns: list[str], rows: list[dict[str, Any]]) -> None:
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_name(f".{output.name}.tmp-{os.getpid()}")
    with open(tmp, "w", newline="", encoding="utf-8") as handle:
        if output.suffix.lower() in (".jsonl", ".json"):
            for row in rows:
                handle.write(json.dumps(row, ensure_ascii=False) + "\n")
        else:
            writer = csv.DictWriter(handle, fieldnames=columns, delimiter="\t" if output.suffix.lower() == ".tsv" else ",")
            writer.writeheader()
            writer.writerows(rows)
    os.replace(tmp, output)
