"""Rebuild a trained checkpoint and score faces with the validation transform of training.

``predict_proba`` uses the same input path as validation in training (bilinear resize to
``input.resize`` and the centre crop of the model's input size, computed as one resample at
native resolution), on a plain three-channel model. Training on CUDA feeds one channel to a
folded conv1, which is the same function (see ``gray``): scores agree with training's
validation up to float rounding.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..errors import PipelineError
from ..labels import NUM_CLASSES
from .batches import DeviceImages, SpecLike, centre_crops, check_resize
from .config import InputConfig

CHECKPOINT_KEYS = ("model", "state_dict", "params", "epoch", "best_val_acc", "history", "synthetic",
                   "scheme")


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """The checkpoint dict, loaded with ``weights_only=True`` on the CPU; checked for its keys."""
    path = Path(path)
    if not path.is_file():
        raise PipelineError(f"{path}: checkpoint not found (run `dvc repro` for the stage that writes it)")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several unpickling error types
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""   # torch's text runs to many lines
        raise PipelineError(f"{path}: not a readable checkpoint ({type(exc).__name__}: {first})") from None
    if not isinstance(ckpt, dict):
        raise PipelineError(f"{path}: expected a checkpoint dict, got {type(ckpt).__name__}")
    missing = [k for k in CHECKPOINT_KEYS if k not in ckpt]
    if missing:
        raise PipelineError(f"{path}: checkpoint lacks key `{missing[0]}` (rerun the training stage)")
    return ckpt


def load_checkpoint(path: str | Path, models_cfg, device: str | torch.device
                    ) -> tuple[nn.Module, Any, dict[str, Any]]:
    """(model in eval mode on ``device``, its InputSpec, the checkpoint dict).

    The model named in the checkpoint is rebuilt with ``pretrained=False`` from ``models_cfg``
    (params.yaml's ``models``) and its weights loaded; the input size the checkpoint was trained
    with must be the one ``models_cfg`` gives now.
    """
    from ..models import MODEL_NAMES, build_model, input_spec

    path = Path(path)
    ckpt = read_checkpoint(path)
    name = ckpt["model"]
    if name not in MODEL_NAMES:
        raise PipelineError(f"{path}: holds model {name!r}, which is not registered "
                            f"(registered: {', '.join(MODEL_NAMES)})")
    try:
        spec = input_spec(name, models_cfg)
        model = build_model(name, models_cfg, num_classes=NUM_CLASSES, pretrained=False)
    except (KeyError, ValueError) as exc:
        raise PipelineError(f"{path}: cannot rebuild model {name!r}: {exc}") from None
    trained_size = ckpt["params"].get("models", {}).get(name, {}).get("input_size")
    if trained_size is not None and trained_size != spec.size:
        raise PipelineError(f"{path}: trained at input_size {trained_size} but params.yaml "
                            f"`models.{name}.input_size` is {spec.size}; rerun training")
    try:
        model.load_state_dict(ckpt["state_dict"])
    except RuntimeError as exc:
        raise PipelineError(f"{path}: weights do not fit model {name!r}: {exc}") from None
    return model.to(device).eval(), spec, ckpt


@torch.inference_mode()
def predict_proba(model: nn.Module, spec: SpecLike, images: np.ndarray, input_cfg: InputConfig,
                  device: str | torch.device, batch_size: int = 256) -> np.ndarray:
    """(N, 7) float32 class probabilities of (N, S, S) uint8 faces, centre-cropped as in validation."""
    images = np.asarray(images)
    if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1] != images.shape[2]:
        raise PipelineError(f"predict_proba: expected (N, S, S) uint8 faces, got {images.shape} {images.dtype}")
    check_resize(input_cfg.resize, spec.size)
    out = np.empty((len(images), NUM_CLASSES), dtype=np.float32)
    if len(images) == 0:
        return out
    was_training = model.training
    model.eval()
    try:
        for start in range(0, len(images), batch_size):
            chunk = images[start:start + batch_size]
            bank = DeviceImages([_Faces(chunk)], device)
            crops = centre_crops(len(chunk), input_cfg.resize, spec.size)
            x = bank.batch(torch.arange(len(chunk)), crops, spec, input_cfg.resize, "rgb")
            logits = model(x).float()
            out[start:start + len(chunk)] = torch.softmax(logits, dim=1).cpu().numpy()
    finally:
        model.train(was_training)
    return out


class _Faces:
    """An unlabelled bank for DeviceImages."""

    def __init__(self, images: np.ndarray):
        self.images = images
        self.labels = np.zeros(len(images), dtype=np.int64)
