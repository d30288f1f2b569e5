"""Byte-level text encoding: UTF-8 bytes shifted by one, padded with 0."""

from __future__ import annotations

import numpy as np
import pytest

from pyramid_bert.data.lra.byte_text import PAD_ID, VOCAB_SIZE, byte_task, decode_bytes, encode_bytes
from pyramid_bert.errors import ConfigError

TEXTS = ["a", "Hello, world!", "naïve café — 東京 🎬", ""]


def test_round_trip_of_texts_that_fit() -> None:
    tokens = encode_bytes(TEXTS, max_length=64)
    assert tokens.shape == (4, 64) and tokens.dtype == np.int64
    assert [decode_bytes(row) for row in tokens] == TEXTS


def test_bytes_are_shifted_by_one_and_padded_with_zero() -> None:
    tokens = encode_bytes(["AB", "é"], max_length=4)
    assert tokens.tolist() == [[66, 67, PAD_ID, PAD_ID], [0xC3 + 1, 0xA9 + 1, PAD_ID, PAD_ID]]
    assert tokens.max() < VOCAB_SIZE == 257


def test_truncation_keeps_the_first_bytes_and_drops_a_cut_character() -> None:
    tokens = encode_bytes(["abcé"], max_length=4)  # 'é' is two bytes: only its first fits
    assert (tokens != PAD_ID).sum() == 4
    assert decode_bytes(tokens[0]) == "abc"
    assert decode_bytes(encode_bytes(["x" * 5000], max_length=4000)[0]) == "x" * 4000


@pytest.mark.parametrize("max_length", [0, -3, 2.5])
def test_bad_length_is_named(max_length) -> None:
    with pytest.raises(ConfigError, match="max_length"):
        encode_bytes(["a"], max_length=max_length)


def test_decode_rejects_ids_outside_the_vocabulary() -> None:
    with pytest.raises(ConfigError, match="token ids"):
        decode_bytes(np.array([300, 5]))


def test_byte_task_keeps_splits_labels_and_padding_mask() -> None:
    task = byte_task(
        {"train": (["good", "bad film"], [1, 0]), "dev": (["ok"], [1]), "test": (["meh"], [0])},
        ["negative", "positive"],
        max_length=6,
    )
    assert task.seq_len == 6 and task.pad_id == PAD_ID and task.vocab_size == 257 and task.num_labels == 2
    assert task.labels("train").tolist() == [1, 0]
    assert task.attention_mask("train").sum(axis=1).tolist() == [4, 6]
    assert task.label_counts()["train"] == {"negative": 1, "positive": 1}
    with pytest.raises(ConfigError, match="valid splits"):
        task.tokens("validation")
