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
