"""IDX reader and the Fashion-MNIST task on fixture files that the tests write."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest

from pyramid_bert.data.lra.fashion_mnist import LABEL_NAMES, image_task, load_fashion_mnist
from pyramid_bert.data.lra.idx import encode_idx, parse_idx, read_idx
from pyramid_bert.errors import ConfigError, DataError


def _idx_bytes(type_code: int, shape: tuple[int, ...], payload: bytes) -> bytes:
    return struct.pack(f">BBBB{len(shape)}I", 0, 0, type_code, len(shape), *shape) + payload


def test_parses_hand_written_uint8_images() -> None:
    data = _idx_bytes(0x08, (2, 2, 3), bytes(range(12)))
    images = parse_idx(data)
    assert images.dtype == np.uint8 and images.shape == (2, 2, 3)
    assert images[1, 0].tolist() == [6, 7, 8]


def test_parses_big_endian_int32_into_native_order() -> None:
    data = _idx_bytes(0x0C, (3,), struct.pack(">3i", 1, -2, 70000))
    values = parse_idx(data)
    assert values.tolist() == [1, -2, 70000] and values.dtype.isnative


def test_reads_gzip_compressed_files(tmp_path: Path) -> None:
    path = tmp_path / "labels-idx1-ubyte.gz"
    path.write_bytes(gzip.compress(_idx_bytes(0x08, (4,), bytes([9, 0, 3, 3]))))
    assert read_idx(path).tolist() == [9, 0, 3, 3]


@pytest.mark.parametrize(
    "values",
    [
        np.arange(24, dtype=np.uint8).reshape(2, 3, 4),
        np.array([[1.5, -2.0]], dtype=np.float32),
        np.array([-7, 300], dtype=np.int16),
    ],
)
def test_encode_then_parse_round_trips(values: np.ndarray) -> None:
    parsed = parse_idx(encode_idx(values))
    assert parsed.dtype == values.dtype and np.array_equal(parsed, values)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x01\x00\x08\x01\x00\x00\x00\x01\x05", "not an IDX file"),
        (_idx_bytes(0x07, (1,), b"\x00"), "unknown IDX type code 0x07"),
        (_idx_bytes(0x08, (2, 2), b"\x00\x01\x02"), "payload is 3 bytes"),
        (b"\x00\x00\x08\x03\x00\x00", "header truncated"),
        (b"\x1f\x8bnot really gzip", "corrupted gzip"),
    ],
)
def test_malformed_files_raise_a_clear_error(data: bytes, message: str) -> None:
    with pytest.raises(DataError, match=message):
        parse_idx(data, name="fixture")


def _write_fashion_fixture(folder: Path, n_train: int, n_test: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        labels = (np.arange(n) % 10).astype(np.uint8)
        (folder / f"{prefix}-images-idx3-ubyte.gz").write_bytes(gzip.compress(encode_idx(images)))
        (folder / f"{prefix}-labels-idx1-ubyte.gz").write_bytes(gzip.compress(encode_idx(labels)))
        if prefix == "train":
            train = (images, labels)
    return train


def test_fashion_task_on_fixture_files(tmp_path: Path) -> None:
    train_images, train_labels = _write_fashion_fixture(tmp_path, n_train=100, n_test=30)
    task = image_task(load_fashion_mnist(tmp_path), seed=0, dev_size=20)
    assert task.seq_len == 784 and task.vocab_size == 256 and task.num_labels == 10 and task.pad_id is None
    assert {name: tokens.shape for name, (tokens, _) in task.splits.items()} == {
        "train": (80, 784),
        "dev": (20, 784),
        "test": (30, 784),
    }
    assert task.label_counts()["dev"] == dict.fromkeys(LABEL_NAMES, 2)
    # One token per pixel, row-major: each train/dev sequence is one of the fixture images, flattened.
    originals = {bytes(image.reshape(-1)): int(label) for image, label in zip(train_images, train_labels, strict=True)}
    for tokens, labels in (task.splits["train"], task.splits["dev"]):
        assert tokens.dtype == np.int64
        for row, label in zip(tokens, labels, strict=True):
            assert originals[bytes(row.astype(np.uint8))] == label
    other = image_task(load_fashion_mnist(tmp_path), seed=1, dev_size=20)
    assert not np.array_equal(task.labels("dev"), other.labels("dev")) or not np.array_equal(
        task.tokens("dev"), other.tokens("dev")
    )
    assert np.array_equal(task.tokens("test"), other.tokens("test"))


def test_fashion_labels_out_of_range_are_rejected(tmp_path: Path) -> None:
    _write_fashion_fixture(tmp_path, n_train=10, n_test=10)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(encode_idx(np.full(10, 12, np.uint8))))
    with pytest.raises(DataError, match="t10k-labels"):
        load_fashion_mnist(tmp_path)


def test_bad_dev_size_is_named(tmp_path: Path) -> None:
    _write_fashion_fixture(tmp_path, n_train=20, n_test=10)
    with pytest.raises(ConfigError, match="dev_size"):
        image_task(load_fashion_mnist(tmp_path), dev_size=0)
