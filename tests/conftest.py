"""Fixtures shared by several test files."""
import pytest
import torch


@pytest.fixture
def torch_home(tmp_path, monkeypatch):
    """An empty TORCH_HOME; returns the hub/checkpoints folder where weights are cached."""
    home = tmp_path / "torch_home"
    monkeypatch.setenv("TORCH_HOME", str(home))
    monkeypatch.setattr(torch.hub, "_hub_dir", None)  # honour TORCH_HOME even after a set_dir
    return home / "hub" / "checkpoints"


@pytest.fixture
def one_thread():
    """One torch thread for the test (tiny networks lose time to thread hand-offs)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
