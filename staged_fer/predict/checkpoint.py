"""The model to predict with and the face preparation of the run that made it, from one checkpoint.

This is the one place that knows where the checkpoint keeps things: the network and its
weights are rebuilt by ``models.checkpoint.load_checkpoint`` from the `models` section stored in the
checkpoint (not from params.yaml, which may have moved on), the input path is its `input`
section and faces are prepared with its `align` record (staged_fer/faces/record.py).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..errors import PipelineError
from ..faces.config import AlignConfig
from ..faces.record import align_config_from_record
from ..inputs.config import InputConfig
from ..models.checkpoint import load_checkpoint, read_checkpoint, run_params
from ..models.inference import predict_proba

# Checkpoint entries that describe the run (everything but the weights).
RUN_KEYS = ("model", "scheme", "synthetic", "epoch", "best_val_acc", "params", "align")


@dataclass(frozen=True)
class Classifier:
    path: Path
    model: nn.Module          # eval mode, on ``device``
    spec: Any                 # the model's InputSpec
    input: InputConfig        # the run's `input` section: resize, then centre crop to spec.size
    align: AlignConfig        # the run's align params (runtime knobs as the caller chose)
    run: dict[str, Any]       # RUN_KEYS of the checkpoint
    device: torch.device

    @property
    def face_side(self) -> int:
        """Side of the aligned faces the model takes (the run's align.size)."""
        return self.align.size

    def predict(self, faces: np.ndarray, batch_size: int) -> np.ndarray:
        """(N, 7) probabilities of (N, S, S) uint8 aligned faces."""
        return predict_proba(self.model, self.spec, faces, self.input, self.device, batch_size=batch_size)


def read_run(path: str | Path) -> dict[str, Any]:
    """The checkpoint's run description, with one clear line for a checkpoint predict cannot use."""
    path = Path(path)
    ckpt = read_checkpoint(path)
    if "align" not in ckpt:
        raise PipelineError(f"{path}: older checkpoint format, without the align params of its run; "
                            "rerun `dvc repro` (align_emotiw onwards) to write it in the current format")
    if ckpt["align"] is None:
        raise PipelineError(f"{path}: this {ckpt['scheme']!r} model never met aligned faces, so its run "
                            "recorded no align params; predict with the final model (train_stage2's checkpoint)")
    return {k: ckpt.get(k) for k in RUN_KEYS}


def load_classifier(path: str | Path, device: torch.device, align_runtime: dict[str, Any]) -> Classifier:
    """Rebuild the checkpoint's model on ``device`` with its run's input and align params.

    ``align_runtime`` sets the align knobs that do not change a face (``{"workers": 0}``).
    """
    path = Path(path)
    run = read_run(path)
    recorded = run_params(run, path)
    align = align_config_from_record(run["align"], str(path), **align_runtime)
    try:
        model, spec, _ = load_checkpoint(path, recorded.models, device)
    except PipelineError as exc:
        message = str(exc)
        raise PipelineError(message if message.startswith(str(path)) else f"{path}: {message}") from None
    return Classifier(path, model, spec, recorded.input, align, run, torch.device(device))
