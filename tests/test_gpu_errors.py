"""The one-line errors of the GPU paths, checked on any machine: a device key asking for CUDA
where there is none, and a batch that runs out of GPU memory (the error simulated at the
training step, the one seam where a real GPU raises it)."""
import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from staged_fer.cli import run_stage
from staged_fer.data.splits import Bank, Split, save_split
from staged_fer.training.loop import Trainer
from tests.params_baseline import baseline_params

ROOT = Path(__file__).resolve().parents[1]
no_cuda_here = pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")


def _script(name):
    spec = importlib.util.spec_from_file_location(f"{name}_stage", ROOT / "stages" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _params(tmp: Path, **sections) -> Path:
    params = baseline_params()
    for name, values in sections.items():
        params[name].update(values)
    path = tmp / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    return path


def _phase1(tmp: Path, batch_size: int, **runtime) -> list[str]:
    rng = np.random.default_rng(0)
    bank = lambda name, n: Bank(name, rng.integers(0, 256, (n, 48, 48), dtype=np.uint8), rng.integers(0, 7, n))
    save_split(tmp / "phase1", Split("fer28", (bank("FER Training", 16),), (bank("FER PublicTest", 4),), True), {})
    params = _params(tmp, models={"alexnet": {"weights": "none", "input_size": 64, }},
                     input={"resize": 72}, phase1={"epochs": 1, "batch_size": batch_size},
                     runtime={"device": "cpu", **runtime})
    return ["phase1", "--params", str(params), "--split", str(tmp / "phase1"), "--out", str(tmp / "phase1.pt"),
            "--live", str(tmp / "live")]


@no_cuda_here
def test_train_device_cuda_without_cuda_names_the_key(tmp_path, capsys):
    assert run_stage(_script("train").main, _phase1(tmp_path, 16, device="cuda")) == 1
    err = capsys.readouterr().err.strip()
    assert "`runtime.device` is 'cuda' but no CUDA device is available" in err and "\n" not in err


@no_cuda_here
def test_align_device_cuda_without_cuda_names_the_key(tmp_path, capsys):
    (tmp_path / "SFEW" / "Train").mkdir(parents=True)
    params = _params(tmp_path, target={"source": "dir", "root": str(tmp_path / "SFEW")},
                     align={"landmarks": "fan", "device": "cuda"})
    out = tmp_path / "out"
    argv = ["--params", str(params), "--out", str(out / "e.npz"), "--log", str(out / "log.csv"),
            "--reports", str(out / "reports"), "--metrics", str(out / "align.json")]
    assert run_stage(_script("align_target").main, argv) == 1
    err = capsys.readouterr().err.strip()
    assert "`align.device` is 'cuda' but no CUDA device is available" in err and "\n" not in err
    assert not out.exists()


def _out_of_memory_above(limit: int):
    """A training step that runs out of GPU memory for batches larger than ``limit``."""
    real = Trainer._step

    def step(self, net, x, y):
        if len(x) > limit:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real(self, net, x, y)
    return step


@pytest.mark.parametrize("limit,fits", [(5, 4), (0, 0)])
def test_a_batch_too_large_for_the_gpu_names_the_key_and_a_size_that_fits(tmp_path, capsys, monkeypatch,
                                                                          one_thread, limit, fits):
    monkeypatch.setattr(Trainer, "_step", _out_of_memory_above(limit))
    assert run_stage(_script("train").main, _phase1(tmp_path, 16)) == 1
    stderr = capsys.readouterr().err
    errors = [line for line in stderr.splitlines() if "error" in line.lower()]
    assert len(errors) == 1 and "Traceback" not in stderr, stderr
    err = errors[0].strip()
    assert err.startswith("error: params.yaml: `phase1.batch_size` 16 runs out of memory on cpu")
    if fits:
        assert err.endswith(f"{fits} fits: set `phase1.batch_size: {fits}`")   # 16 -> 8 fails -> 4 runs
    else:
        assert "a batch of one image per device" in err
    assert not (tmp_path / "phase1.pt").exists()
