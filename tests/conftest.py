"""Fixtures shared by several test files."""
import itertools
import shutil

import pytest
import torch


def use_torch_home(monkeypatch, home):
    """Point TORCH_HOME at ``home`` for the test; returns its hub/checkpoints folder."""
    monkeypatch.setenv("TORCH_HOME", str(home))
    monkeypatch.setattr(torch.hub, "_hub_dir", None)  # honour TORCH_HOME even after a set_dir
    return home / "hub" / "checkpoints"


@pytest.fixture
def torch_home(tmp_path, monkeypatch):
    """An empty TORCH_HOME; returns the hub/checkpoints folder where weights are cached."""
    return use_torch_home(monkeypatch, tmp_path / "torch_home")


@pytest.fixture(scope="module")
def module_tmp(tmp_path_factory, request):
    """``module_tmp(name)`` makes a new folder for a module-scoped fixture, as
    ``tmp_path_factory.mktemp`` does, but all of them are deleted when the module's tests end,
    unless one of its tests failed. Kept to the session's end, the modules' checkpoints (about
    230 MB each for AlexNet) and DVC project copies added up to over 3 GB."""
    root = tmp_path_factory.mktemp(request.module.__name__.rpartition(".")[2])
    failed_before = request.session.testsfailed
    numbers = itertools.count()

    def mktemp(name: str):
        path = root / f"{name}{next(numbers)}"
        path.mkdir()
        return path

    yield mktemp
    if request.session.testsfailed == failed_before:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def one_thread():
    """One torch thread for the test (tiny networks lose time to thread hand-offs)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def random_fan_file(tmp_path_factory):
    """A randomly initialised FAN(4) state dict in face-alignment's weight format, made once."""
    from face_alignment.models import FAN
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("fan") / "fan4.pth"
    torch.save(FAN(4).state_dict(), path)
    return path


def place_fan_weights(source):
    """Put ``source`` where face-alignment loads its FAN weights from (under TORCH_HOME)."""
    import os
    import shutil
    from staged_fer.faces.landmarks import fan_weights_path
    _, path = fan_weights_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(source, path)   # 96 MB: a hard link where the file system allows
    except OSError:
        shutil.copyfile(source, path)
    return path


@pytest.fixture
def fan_weights(torch_home, random_fan_file):
    """The random FAN weights at the path face-alignment loads them from, under ``torch_home``."""
    path = place_fan_weights(random_fan_file)
    assert path.parent == torch_home
    return path


@pytest.fixture(scope="module")
def fan_cpu(module_tmp, random_fan_file):
    """face-alignment's real FAN with the random weights, on the CPU, loaded once per module."""
    from staged_fer.faces.landmarks import load_fan
    with pytest.MonkeyPatch.context() as mp:
        use_torch_home(mp, module_tmp("torch_home"))
        place_fan_weights(random_fan_file)
        yield load_fan("cpu")
