"""Turn a split of a :class:`~pyramid_bert.data.tasks.TaskData` into model inputs: :func:`tokenize_split`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

from pyramid_bert.errors import ConfigError

if TYPE_CHECKING:
    from pyramid_bert.data.tasks import TaskData


def tokenize_split(
    tokenizer: Any, task: TaskData, split: str, max_length: int | None = None, *, truncate_to: int | None = None
) -> dict[str, torch.Tensor]:
    """Tokenize ``task.splits[split]`` with a Hugging Face tokenizer.

    Sentence pairs are tokenized as pairs (``[CLS] a [SEP] b [SEP]``, truncating the longer side first).
    Every sequence is truncated and padded to ``max_length`` (default ``task.max_length``, the task's N).
    ``truncate_to`` (Input-first-k's k): truncate to k tokens instead, by the tokenizer itself (so the final
    [SEP] stays, and a pair keeps part of its second segment: ``longest_first``), then pad to ``max_length``.

    Returns ``input_ids`` and ``attention_mask`` (LongTensor [n, max_length]), ``token_type_ids``
    (LongTensor [n, max_length], when the tokenizer produces them) and ``labels`` (LongTensor [n], or
    FloatTensor [n] for regression).
    """

    if split not in task.splits:
        raise ConfigError(f"unknown split {split!r} (parameter 'split'); valid splits: {', '.join(task.splits)}")
    length = task.max_length if max_length is None else max_length
    if not isinstance(length, int) or length < 2:
        raise ConfigError(f"max_length must be an int >= 2, got {length!r}")
    data = task.splits[split]
    arguments = (data.text_a,) if data.text_b is None else (data.text_a, data.text_b)
    keep = length if truncate_to is None else min(length, truncate_to)
    if keep < length and keep > tokenizer.num_special_tokens_to_add(pair=data.text_b is not None):
        encoded = tokenizer(*arguments, truncation="longest_first", max_length=keep)
        encoded = tokenizer.pad(encoded, padding="max_length", max_length=length, return_tensors="pt")
    else:  # too short a k for the special tokens: the model's own cut after k positions is the fallback
        encoded = tokenizer(*arguments, padding="max_length", truncation=True, max_length=length, return_tensors="pt")
    batch = {key: encoded[key] for key in ("input_ids", "attention_mask", "token_type_ids") if key in encoded}
    batch["labels"] = torch.tensor(data.labels, dtype=torch.float32 if task.is_regression else torch.long)
    return batch
