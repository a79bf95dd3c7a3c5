"""Export a trained checkpoint to ONNX, with the input path inside the graph and a JSON sidecar.

``python -m staged_fer.export models/phase2.pt --onnx phase2.onnx [--metrics metrics/eval.json]``

The graph takes what the pipeline's aligner produces and returns what evaluate scores:

  input  ``faces``          uint8, (N, S, S): aligned grayscale faces, S the run's ``align.size``
                            (256), made with the `align` params listed in the sidecar
  output ``probabilities``  float32, (N, 7): softmax over the classes in the sidecar's order

N is dynamic. Inside the graph: the bilinear resize to ``input.resize`` and the centre crop to
the model's input size (one resample of the native face, the same interpolation weights as
training's validation path in staged_fer/inputs/batches.py), the per-channel ImageNet
normalisation of the grey value replicated to three channels, the network and the softmax. A
consumer needs nothing but an aligned face; onnxruntime agrees with ``predict_proba`` to 1e-4.

The sidecar (``--onnx`` with ``.json`` in place of ``.onnx``) records the class order, the input
and output specs, the align params and data scheme of the run, its training params and
checkpoint facts, the evaluation metrics when ``--metrics`` is given, and the checkpoint's
SHA-256.
"""
from __future__ import annotations

import argparse
import hashlib
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import torch
from torch import nn

from .cli import run_stage
from .errors import PipelineError
from .io import atomic_path, read_json_object, write_json
from .labels import EMOTIONS, NUM_CLASSES

if TYPE_CHECKING:   # export() imports the model code when it runs, as it does the predict package
    from .models.trained import TrainedModel

FORMAT = "staged_fer-onnx-1"
OPSET = 18


@dataclass(frozen=True)
class ExportConfig:
    """params.yaml's `export` section. No stage reads it: dvc.yaml makes one optional export
    stage per checkpoint listed here, so the default (none) adds nothing to `dvc repro`."""
    onnx: tuple[Literal["phase1", "phase2"], ...]


class FacesToProbabilities(nn.Module):
    """(N, S, S) uint8 aligned faces -> (N, 7) probabilities, the validation input path included."""

    def __init__(self, model: nn.Module, spec, resize: int, side: int):
        super().__init__()
        from .inputs.batches import centre_crops, check_resize, interpolation_matrices

        check_resize(resize, spec.size)
        crop = centre_crops(1, resize, spec.size)
        # (size, side) weights of the crop's rows and columns in the native face: the matrices
        # training builds per batch, fixed here since every face gets the same centre crop.
        self.register_buffer("rows", interpolation_matrices(crop.top, None, side, resize, spec.size)[0])
        self.register_buffer("cols_t", interpolation_matrices(crop.left, None, side, resize, spec.size)[0].T.contiguous())
        mean = torch.tensor(spec.mean, dtype=torch.float32)
        std = torch.tensor(spec.std, dtype=torch.float32)
        self.register_buffer("scale", (1 / std).view(1, 3, 1, 1))
        self.register_buffer("shift", (-mean / std).view(1, 3, 1, 1))
        self.model = model

    def forward(self, faces: torch.Tensor) -> torch.Tensor:
        x = torch.matmul(self.rows, torch.matmul(faces.to(torch.float32), self.cols_t))   # (N, size, size)
        x = x.unsqueeze(1) * self.scale + self.shift                                     # (N, 3, size, size)
        return torch.softmax(self.model(x).float(), dim=1)


def sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def sidecar_path(onnx_path: str | Path) -> Path:
    return Path(onnx_path).with_suffix(".json")


def _metrics(path: str | Path | None, model: str) -> dict | None:
    """The metrics file at ``path`` (None: none), checked to be of ``model``."""
    if path is None:
        return None
    metrics = read_json_object(path, "metrics file", "run `dvc repro evaluate`, or leave out --metrics")
    if metrics.get("model", model) != model:
        raise PipelineError(f"{path}: metrics of model {metrics['model']!r}, but the checkpoint holds "
                            f"{model!r}; pass the metrics of the same run")
    return metrics


def sidecar(model: TrainedModel, metrics: dict | None, onnx_name: str) -> dict:
    run, spec, side = model.run, model.spec, model.align.size
    return {
        "format": FORMAT,
        "onnx": onnx_name,
        "classes": list(EMOTIONS),
        "input": {"name": "faces", "dtype": "uint8", "shape": ["N", side, side],
                  "description": "aligned grayscale faces, as staged_fer's aligner makes them with the `align` "
                                 "params below; resize, crop and normalisation are inside the graph"},
        "output": {"name": "probabilities", "dtype": "float32", "shape": ["N", NUM_CLASSES],
                   "description": "softmax probabilities, in the order of `classes`"},
        "in_graph": {"resize": model.input.resize, "centre_crop": spec.size,
                     "mean": list(spec.mean), "std": list(spec.std), "channels": "grey replicated to RGB"},
        "align": run.align,
        "model": run.model,
        "scheme": run.scheme,
        "synthetic": bool(run.synthetic),
        "training": {"epoch": run.epoch, "best_val_acc": run.best_val_acc, "params": run.params},
        "metrics": metrics,
        "checkpoint": {"file": model.path.name, "sha256": sha256(model.path)},
        "opset": OPSET,
    }


def export(checkpoint: str | Path, onnx_path: str | Path, metrics_path: str | Path | None = None) -> dict:
    """Write the ONNX model and its sidecar (each under a temporary name, then renamed); returns the sidecar."""
    import warnings

    from .predict.checkpoint import load_as_recorded

    onnx_path = Path(onnx_path)
    model = load_as_recorded(checkpoint, torch.device("cpu"), {"workers": 1, "device": "cpu"})
    info = sidecar(model, _metrics(metrics_path, model.run.model), onnx_path.name)
    side = model.align.size
    graph = FacesToProbabilities(model.network, model.spec, model.input.resize, side).eval()
    example = torch.zeros(2, side, side, dtype=torch.uint8)   # 2, not 1: a batch of 1 would be specialised
    with atomic_path(onnx_path) as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")   # the exporter's notes on its own internals
        program = torch.onnx.export(graph, (example,), dynamo=True, opset_version=OPSET,
                                    input_names=["faces"], output_names=["probabilities"],
                                    dynamic_shapes={"faces": {0: torch.export.Dim("N")}}, verbose=False)
        program.save(str(tmp))
    write_json(sidecar_path(onnx_path), info)
    return info


def main(argv=None) -> None:
    p = argparse.ArgumentParser(prog="python -m staged_fer.export", description=__doc__.splitlines()[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("checkpoint", help="checkpoint written by a training phase (the final model: train_phase2's)")
    p.add_argument("--onnx", required=True, help="ONNX file to write; the sidecar goes beside it as .json")
    p.add_argument("--metrics", help="the run's metrics JSON (evaluate's --metrics) to copy into the sidecar")
    p.add_argument("--overwrite", action="store_true", help="replace the ONNX file and sidecar if they exist")
    args = p.parse_args(argv)
    onnx_path = Path(args.onnx)
    if onnx_path.suffix != ".onnx":
        raise PipelineError(f"--onnx {onnx_path}: expected a file name ending in .onnx")
    for path in (onnx_path, sidecar_path(onnx_path)):
        if path.exists() and not args.overwrite:
            raise PipelineError(f"{path}: exists; pass --overwrite to replace it")
    info = export(args.checkpoint, onnx_path, args.metrics)
    print(f"wrote {onnx_path} ({info['model']}, {info['scheme']}; input faces uint8 (N, {info['input']['shape'][1]}, "
          f"{info['input']['shape'][2]}), output probabilities (N, 7)) and {sidecar_path(onnx_path)}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(run_stage(main))
