from pathlib import Path

import pytest
import torch

from train_fixtures import make_keyword_task, write_tiny_bert


@pytest.fixture
def one_thread():
    """One intra-op thread: tiny tensors run fastest so, results repeat exactly, and no core is fought over."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    """A random 2-layer BERT without a head, with its WordPiece tokenizer (see train_fixtures)."""
    return write_tiny_bert(tmp_path_factory.mktemp("tiny") / "bert")


@pytest.fixture(scope="module")
def task():
    """The keyword fixture task: 64 train, 32 dev, 32 test examples."""
    return make_keyword_task(sizes=(64, 32, 32))
