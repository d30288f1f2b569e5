"""A :class:`~pyramid_bert.data.tasks.TaskData` from the user's own data files: :func:`load_user_task`.

Rules:

* **Label kind** (decided on the train file): every label an integer (``3``, ``"3"``) -> classes named by the
  sorted integers; any label a non-integer number (``0.5``, ``"1.0"``) while all are numbers -> regression
  (metric Spearman); otherwise classes named by the sorted label strings. A ``datasets`` ClassLabel column keeps
  its own names. The mapping is ``label_names`` (id -> name), stored in the model config as ``id2label`` /
  ``label2id`` by fine-tuning.
* **Splits**: ``--dev`` and ``--test`` files when given; what is missing is held out of ``--train``, seeded and
  stratified (10% each; the test draw uses a fixed seed, as for the built-in corpora). ``notes["held_out"]`` says so.
* **N** (``max_length``): ``--max-length``, else the 95th percentile of the tokenized train lengths (special
  tokens included), capped at the model's input limit.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from transformers import AutoConfig, AutoTokenizer

from pyramid_bert.data.files import RawExamples, read_examples
from pyramid_bert.data.models import resolve_model
from pyramid_bert.data.splits import DEV_FRACTION, TEST_FRACTION, TEST_SPLIT_SEED, holdout
from pyramid_bert.data.tasks import Split, TaskData
from pyramid_bert.errors import CheckpointError, ConfigError, DataError

LENGTH_PERCENTILE = 95
_INTEGER = re.compile(r"[+-]?\d+")


@dataclass(frozen=True)
class DataFiles:
    """Where the user's data is and which columns hold text and label (``text_columns``: one, or two for pairs)."""

    train: str
    dev: str | None = None
    test: str | None = None
    text_columns: tuple[str, ...] = ("text",)
    label_column: str = "label"

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "text_columns": list(self.text_columns)}

    @property
    def name(self) -> str:
        """The task's name in messages and reports: the train file's name."""
        return Path(self.train).name

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DataFiles:
        """The inverse of :meth:`to_dict` (extra keys, such as a sweep's ``max_length``, are ignored)."""
        return cls(data["train"], data.get("dev"), data.get("test"), tuple(data.get("text_columns") or ("text",)),
                   data.get("label_column", "label"))  # fmt: skip


def _number(value: Any) -> int | float | None:
    """``value`` as an int or a finite float when it is one (or spells one), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return value if math.isfinite(value) else None
    if isinstance(value, str):
        text = value.strip()
        if _INTEGER.fullmatch(text):
            return int(text)
        try:
            number = float(text)
        except ValueError:
            return None
        return number if math.isfinite(number) else None
    return None


def label_kind(labels: list[Any]) -> str:
    """``"int"``, ``"float"`` (regression) or ``"str"`` for a train file's raw labels (see the module docstring)."""
    numbers = [_number(value) for value in labels]
    if any(number is None for number in numbers):
        return "str"
    return "int" if all(isinstance(number, int) for number in numbers) else "float"


def _class_name(value: Any, kind: str) -> str:
    if kind == "int":
        number = _number(value)
        if isinstance(number, int):
            return str(number)
    return str(value)


def _label_names(raw: RawExamples, kind: str) -> list[str]:
    assert raw.labels is not None
    if raw.label_names is not None:
        return list(raw.label_names)
    names = {_class_name(value, kind) for value in raw.labels}
    return sorted(names, key=int) if kind == "int" else sorted(names)


def _label_ids(raw: RawExamples, names: list[str], kind: str, flag: str, path: str) -> list[int] | list[float]:
    """Raw labels of one file -> float scores (regression) or ids into ``names``; unseen classes are an error."""
    assert raw.labels is not None
    if kind == "float":
        scores = []
        for value, line in zip(raw.labels, raw.lines, strict=True):
            number = _number(value)
            if number is None:
                raise DataError(f"{flag}: {path} line {line}: label {value!r} is not a number (train labels are scores)")
            scores.append(float(number))
        return scores
    if raw.label_names is not None:  # a ClassLabel column: ids into its own names
        values = [raw.label_names[value] for value in raw.labels]
    else:
        values = [_class_name(value, kind) for value in raw.labels]
    index = {name: i for i, name in enumerate(names)}
    unseen = sorted(set(values) - set(index))
    if unseen:
        raise DataError(
            f"{flag}: {path}: label(s) {unseen[:5]} do not occur in the train file; train labels: {', '.join(names)}"
        )
    return [index[value] for value in values]


def _split(raw: RawExamples, labels: list) -> Split:
    return Split(list(raw.text_a), None if raw.text_b is None else list(raw.text_b), labels)


def load_user_task(
    files: DataFiles,
    *,
    tokenizer: Any = None,
    max_length: int | None = None,
    input_limit: int = 512,
    seed: int = 0,
) -> TaskData:
    """Read ``files`` into a TaskData with ``train``/``dev``/``test`` splits (see the module docstring).

    ``tokenizer`` measures the train lengths for the default N (needed unless ``max_length`` is given);
    ``input_limit`` is the model's longest input; ``seed`` chooses the dev hold-out.
    """
    raws = {"train": read_examples(files.train, "--train", files.text_columns, files.label_column)}
    for split_name, path in (("dev", files.dev), ("test", files.test)):
        if path is not None:
            raws[split_name] = read_examples(path, f"--{split_name}", files.text_columns, files.label_column)
    train = raws["train"]
    assert train.labels is not None
    kind = label_kind(train.labels) if train.label_names is None else "int"
    names = [] if kind == "float" else _label_names(train, kind)
    if kind != "float":
        present = sorted({_class_name(v, kind) if train.label_names is None else train.label_names[v] for v in train.labels})
        if len(present) < 2:
            raise DataError(
                f"--label-column: {files.train} has a single class ({present[0]!r}) in column {files.label_column!r}; "
                "a classifier needs at least two"
            )
    paths = {"train": files.train, "dev": files.dev, "test": files.test}
    splits = {name: _split(raw, _label_ids(raw, names, kind, f"--{name}", str(paths[name]))) for name, raw in raws.items()}
    held_out = _hold_out(splits, regression=kind == "float", seed=seed)
    length = _resolve_max_length(splits["train"], tokenizer, max_length, input_limit)
    notes: dict[str, object] = {"files": files.to_dict(), "seed": seed, "label_kind": kind, **length}
    if held_out:
        notes["held_out"] = (
            f"{' and '.join(sorted(held_out))} split{'s' if len(held_out) > 1 else ''}: seeded, stratified "
            f"{round(100 * TEST_FRACTION)}% each of {files.train} (seed {seed})"
        )
    return TaskData(
        name=files.name, metric="spearman" if kind == "float" else "accuracy", is_regression=kind == "float",
        num_labels=1 if kind == "float" else len(names), label_names=names, max_length=int(length["max_length"]),
        splits={name: splits[name] for name in ("train", "dev", "test")}, notes=notes,
    )  # fmt: skip


def _hold_out(splits: dict[str, Split], *, regression: bool, seed: int) -> list[str]:
    """Fill the missing ``test`` / ``dev`` splits from train (in place); returns the names of those held out."""
    held_out = []
    total = len(splits["train"])
    for name, fraction, draw_seed in (("test", TEST_FRACTION, TEST_SPLIT_SEED), ("dev", DEV_FRACTION, seed)):
        if name in splits:
            continue
        train = splits["train"]
        size = max(1, round(fraction * total))
        if len(train) - size < 2:
            raise DataError(f"--train: {len(train)} examples are too few to hold out a {name} split; give --{name}")
        kept, held = holdout(train.labels, size, seed=draw_seed, regression=regression)
        splits[name], splits["train"] = train.subset(held), train.subset(kept)
        held_out.append(name)
    return held_out


def _resolve_max_length(train: Split, tokenizer: Any, max_length: int | None, input_limit: int) -> dict[str, object]:
    """``{"max_length": N, "max_length_rule": why}``."""
    if max_length is not None:
        if isinstance(max_length, bool) or not isinstance(max_length, int) or not 2 <= max_length <= input_limit:
            raise ConfigError(f"--max-length: must be an int in 2..{input_limit} (the model's limit), got {max_length!r}")
        return {"max_length": max_length, "max_length_rule": "--max-length"}
    if tokenizer is None:
        raise ConfigError("--max-length: give it, or a tokenizer to measure the train lengths")
    lengths = token_lengths(tokenizer, train, input_limit)
    percentile = math.ceil(float(np.percentile(lengths, LENGTH_PERCENTILE)))
    length = max(2, min(input_limit, percentile))
    return {
        "max_length": length,
        "max_length_rule": f"{LENGTH_PERCENTILE}th percentile of the tokenized train lengths ({percentile}), "
        f"capped at the model's limit {input_limit}",
    }


def token_lengths(tokenizer: Any, split: Split, limit: int) -> list[int]:
    """Tokens per example (special tokens included, at most ``limit``)."""
    arguments = (split.text_a,) if split.text_b is None else (split.text_a, split.text_b)
    encoded = tokenizer(*arguments, truncation=True, max_length=limit)
    return [len(ids) for ids in encoded["input_ids"]]


def input_limit(model_config: Any, tokenizer: Any) -> int:
    """The longest input the model takes: its position embeddings (less RoBERTa's padding offset) and the
    tokenizer's ``model_max_length`` when that is set to a real value."""
    limit = int(getattr(model_config, "max_position_embeddings", 512))
    if getattr(model_config, "model_type", "") in ("roberta", "xlm-roberta", "camembert"):
        limit -= 2
    tokenizer_limit = getattr(tokenizer, "model_max_length", None)
    if isinstance(tokenizer_limit, int) and 0 < tokenizer_limit < 100_000:
        limit = min(limit, tokenizer_limit)
    return limit


def is_default_label_map(id2label: dict[Any, str] | None) -> bool:
    """Whether a config's ``id2label`` is transformers' placeholder (``LABEL_0``, ``LABEL_1``, ...)."""
    return not id2label or all(str(name) == f"LABEL_{int(i)}" for i, name in id2label.items())


def align_labels(task: TaskData, id2label: dict[Any, str] | None, where: str) -> TaskData:
    """``task`` with its label ids renumbered to a model's ``id2label`` (when it holds real names).

    A model trained on other label names is a DataError; placeholder names (``LABEL_i``) leave ``task`` as is.
    """
    if task.is_regression or is_default_label_map(id2label):
        return task
    assert id2label is not None
    model_names = [str(id2label[key]) for key in sorted(id2label, key=int)]
    if model_names == task.label_names:
        return task
    if sorted(model_names) != sorted(task.label_names):
        raise DataError(
            f"labels: the data has labels {', '.join(task.label_names)} but {where} was trained on "
            f"{', '.join(model_names)}"
        )
    renumber = {old: model_names.index(name) for old, name in enumerate(task.label_names)}
    splits = {
        name: Split(split.text_a, split.text_b, [renumber[label] for label in split.labels])
        for name, split in task.splits.items()
    }
    return TaskData(
        task.name, task.metric, task.is_regression, task.num_labels, model_names, task.max_length, splits, task.notes
    )


def load_for_model(files: DataFiles, model: str, *, max_length: int | None, seed: int) -> TaskData:
    """Read ``files`` into a TaskData, N measured with the tokenizer of ``model`` (a folder or catalog name)."""

    source = resolve_model(model)
    try:
        tokenizer = AutoTokenizer.from_pretrained(source)
        config = AutoConfig.from_pretrained(source)
    except (OSError, ValueError) as error:
        raise CheckpointError(f"--model: cannot load the tokenizer and config of {model} ({error})") from None
    return load_user_task(
        files, tokenizer=tokenizer, max_length=max_length, input_limit=input_limit(config, tokenizer), seed=seed
    )


def files_fingerprint(files: DataFiles) -> str:
    """SHA-256 of the bytes of every file given (a folder: of its files, by relative path) and of the columns:
    what a sweep on ``files`` was planned on, independent of the seeded hold-outs."""

    digest = hashlib.sha256(json.dumps([files.text_columns, files.label_column]).encode())
    for path in (files.train, files.dev, files.test):
        if path is None:
            digest.update(b"-")
            continue
        root = Path(path)
        members = sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else [root]
        for member in members:
            digest.update(str(member.relative_to(root) if root.is_dir() else member.name).encode())
            digest.update(member.read_bytes())
    return digest.hexdigest()


def files_identity(files: DataFiles, max_length: int) -> dict[str, Any]:
    """What a run on ``files`` was trained on, without local paths: the file names, the columns, N and
    :func:`files_fingerprint` (the bytes of every file and the columns). Stored in a fine-tune's run config."""
    names = {split: Path(path).name if path is not None else None for split, path in
             (("train", files.train), ("dev", files.dev), ("test", files.test))}  # fmt: skip
    return {**names, "text_columns": list(files.text_columns), "label_column": files.label_column,
            "max_length": int(max_length), "sha256": files_fingerprint(files)}  # fmt: skip
