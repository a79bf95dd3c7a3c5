"""Score faces with a rebuilt model through the validation transform of training.

``predict_proba`` uses the same input path as validation in training (bilinear resize to
``input.resize`` and the centre crop of the model's input size, computed as one resample at
native resolution, staged_fer/inputs/batches.py), on a plain three-channel model. Training on
CUDA feeds one channel to a folded conv1, which is the same function (staged_fer/inputs/gray.py):
scores agree with training's validation up to float rounding.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..errors import PipelineError
from ..inputs.batches import DeviceImages, SpecLike, centre_crops, check_resize
from ..inputs.config import InputConfig
from ..labels import NUM_CLASSES
from ..store import FaceRows


@torch.inference_mode()
def predict_proba(model: nn.Module, spec: SpecLike, images: np.ndarray | FaceRows, input_cfg: InputConfig,
                  device: str | torch.device, batch_size: int = 256) -> np.ndarray:
    """(N, 7) float32 class probabilities of (N, S, S) uint8 faces, centre-cropped as in validation;
    rows of a face store (FaceRows) are read a batch at a time."""
    images = images if isinstance(images, FaceRows) else np.asarray(images)
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
