"""The ONNX export: onnxruntime agrees with the PyTorch input path on every prediction."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from faces_samples import align_config
from model_samples import PARAMS, align_record_dlib, small_checkpoint, small_weights, write_small_checkpoint  # noqa: F401
from staged_fer.cli import run_stage
from staged_fer.export import main, sidecar_path
from staged_fer.labels import EMOTIONS
from staged_fer.predict.checkpoint import load_as_recorded


@pytest.fixture(scope="module")
def exported(module_tmp, small_checkpoint):
    """The small checkpoint, exported with a metrics file."""
    root = module_tmp("export")
    ckpt = small_checkpoint
    metrics = root / "eval.json"
    metrics.write_text(json.dumps({"model": "alexnet", "target_val": {"accuracy": 0.5, "n": 10}}))
    onnx_path = root / "phase2.onnx"
    assert run_stage(main, [str(ckpt), "--onnx", str(onnx_path), "--metrics", str(metrics)]) == 0
    return ckpt, onnx_path


def faces(n: int, seed: int) -> np.ndarray:
    """Face-like test images: smooth random fields plus noise, full 0..255 range like aligned crops."""
    rng = np.random.default_rng(seed)
    low = rng.random((n, 8, 8))
    yy = np.linspace(0, 7, 256)
    smooth = np.stack([np.interp(yy, np.arange(8), row) for img in low for row in img]).reshape(n, 8, 256)
    smooth = np.stack([np.stack([np.interp(yy, np.arange(8), img[:, j]) for j in range(256)], axis=1)
                       for img in smooth])
    img = smooth * 200 + rng.normal(0, 20, smooth.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def test_onnxruntime_agrees_with_pytorch_on_every_prediction(exported):
    import onnxruntime as ort

    ckpt, onnx_path = exported
    model = load_as_recorded(ckpt, torch.device("cpu"), {"workers": 1})
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    (inp,), (out,) = session.get_inputs(), session.get_outputs()
    assert (inp.name, inp.type, inp.shape[1:]) == ("faces", "tensor(uint8)", [256, 256])
    assert (out.name, out.type, out.shape[1:]) == ("probabilities", "tensor(float)", [7])
    batch = faces(24, seed=1)
    torch_p = model.predict_proba(batch, batch_size=24)
    for part in (slice(0, 1), slice(1, 6), slice(None)):      # the batch size is dynamic
        onnx_p = session.run(None, {"faces": batch[part]})[0]
        np.testing.assert_allclose(onnx_p, torch_p[part], atol=1e-4, rtol=0)
        assert (onnx_p.argmax(1) == torch_p[part].argmax(1)).all()
    # Every top class leads the runner-up by more than twice the tolerance, so agreeing on the
    # argmax is no float tie; and the faces get different scores, so the input path is exercised.
    top2 = np.sort(torch_p, 1)[:, -2:]
    assert (top2[:, 1] - top2[:, 0]).min() > 2e-4, (top2[:, 1] - top2[:, 0]).min()
    assert torch_p.std(axis=0).max() > 1e-3


def test_sidecar_describes_the_run(exported):
    ckpt, onnx_path = exported
    info = json.loads(sidecar_path(onnx_path).read_text())
    assert info["classes"] == list(EMOTIONS)
    assert info["input"] == {**info["input"], "name": "faces", "dtype": "uint8", "shape": ["N", 256, 256]}
    assert info["output"]["shape"] == ["N", 7]
    assert info["align"] == align_record_dlib() and info["align"]["size"] == align_config().size
    assert info["in_graph"]["resize"] == PARAMS["input"]["resize"] and info["in_graph"]["centre_crop"] == 64
    assert info["model"] == "alexnet" and info["scheme"] == "target" and info["synthetic"] is True
    assert info["training"]["params"] == PARAMS and info["metrics"]["target_val"]["accuracy"] == 0.5
    assert len(info["checkpoint"]["sha256"]) == 64


def test_existing_output_is_refused_and_older_checkpoints_are_named(exported, tmp_path, capsys):
    ckpt, onnx_path = exported
    assert run_stage(main, [str(ckpt), "--onnx", str(onnx_path)]) == 1
    assert "exists; pass --overwrite" in capsys.readouterr().err
    old = write_small_checkpoint(tmp_path / "old.pt", {})
    data = torch.load(old, weights_only=True)
    del data["align"]
    torch.save(data, old)
    assert run_stage(main, [str(old), "--onnx", str(tmp_path / "x.onnx")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "older checkpoint format" in err[0]
    assert not (tmp_path / "x.onnx").exists()
