"""Byte-level text classification, LRA's "IMDB bytes" task with offline data.

Each document becomes its UTF-8 bytes, one token per byte: token = byte value + 1, so that id 0 is free
for padding (vocabulary 257). Documents are truncated to ``max_length`` bytes (1000 by default, as LRA;
4000 is the long option) and right-padded with 0. The documents and their splits are those of the text
task ``pang-lee-reviews`` (1,500 full movie reviews, negative vs positive) from :mod:`pyramid_bert.data`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from pyramid_bert import data  # data.load_task, looked up at call time (tests replace it)
from pyramid_bert.data.lra.sequence_task import SequenceTask
from pyramid_bert.errors import ConfigError

NAME = "lra-bytes"
TEXT_TASK = "pang-lee-reviews"
PAD_ID = 0
BYTE_OFFSET = 1
VOCAB_SIZE = 256 + BYTE_OFFSET
DEFAULT_MAX_LENGTH = 1000
LONG_MAX_LENGTH = 4000


def encode_bytes(texts: Sequence[str], max_length: int = DEFAULT_MAX_LENGTH) -> np.ndarray:
    """Token ids int64 ``[len(texts), max_length]``: UTF-8 byte + 1, truncated, right-padded with 0."""
    if not isinstance(max_length, int) or max_length < 1:
        raise ConfigError(f"max_length={max_length!r} is invalid: use an int >= 1 (LRA uses 1000 or 4000)")
    tokens = np.full((len(texts), max_length), PAD_ID, dtype=np.int64)
    for row, text in enumerate(texts):
        data = np.frombuffer(text.encode("utf-8")[:max_length], dtype=np.uint8)
        tokens[row, : len(data)] = data.astype(np.int64) + BYTE_OFFSET
    return tokens


def decode_bytes(tokens: np.ndarray) -> str:
    """The text of one row of token ids ``[max_length]`` (padding dropped; a multi-byte character cut by
    truncation is dropped too)."""
    ids = np.asarray(tokens, dtype=np.int64)
    ids = ids[ids != PAD_ID]
    if ids.size and (ids.min() < BYTE_OFFSET or ids.max() >= VOCAB_SIZE):
        raise ConfigError(f"token ids must lie in [{BYTE_OFFSET}, {VOCAB_SIZE}) or be the pad id {PAD_ID}")
    return (ids - BYTE_OFFSET).astype(np.uint8).tobytes().decode("utf-8", errors="ignore")


def byte_task(
    text_splits: dict[str, tuple[Sequence[str], Sequence[int]]],
    label_names: Sequence[str],
    *,
    max_length: int = DEFAULT_MAX_LENGTH,
) -> SequenceTask:
    """The byte-level task from text splits: split -> (texts, integer labels)."""
    splits = {
        split: (encode_bytes(texts, max_length), np.asarray(labels, dtype=np.int64))
        for split, (texts, labels) in text_splits.items()
    }
    return SequenceTask(
        name=NAME,
        splits=splits,
        vocab_size=VOCAB_SIZE,
        num_labels=len(label_names),
        seq_len=max_length,
        pad_id=PAD_ID,
        label_names=list(label_names),
        info={"text_task": TEXT_TASK, "encoding": "UTF-8 byte + 1, pad 0", "max_length": max_length},
    )


def load_byte_task(*, seed: int = 0, max_length: int = DEFAULT_MAX_LENGTH) -> SequenceTask:
    """Fetch (when needed) ``pang-lee-reviews`` and build its byte-level task with its own splits."""

    text = data.load_task(TEXT_TASK, seed=seed)
    text_splits = {name: (split.text_a, split.labels) for name, split in text.splits.items()}
    task = byte_task(text_splits, text.label_names, max_length=max_length)
    task.info["seed"] = seed
    return task
