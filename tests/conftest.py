import pytest
import torch


@pytest.fixture
def one_thread():
    """One intra-op thread: tiny tensors run fastest so, results repeat exactly, and no core is fought over."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
