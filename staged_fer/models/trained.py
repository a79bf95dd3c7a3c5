"""A trained model loaded from its checkpoint, ready to score faces: what evaluation, predict,
export and the model card use.

``TrainedModel`` holds the rebuilt network, its input spec, the input path it is fed through,
the checkpoint's record of its run and, when loaded for photos, the face preparation of that
run. ``TrainedModel.load`` rebuilds it with the `models` and `input` sections given (evaluate:
params.yaml's); ``from_checkpoint`` does so for a checkpoint already read, which is how predict
and export rebuild it with the run's own sections (staged_fer/predict/checkpoint.py).

``predict_proba`` uses the same input path as validation in training (bilinear resize to
``input.resize`` and the centre crop of the model's input size, computed as one resample at
native resolution, staged_fer/inputs/batches.py), on a plain three-channel model. Training on
CUDA feeds one channel to a folded conv1, which is the same function (staged_fer/inputs/gray.py):
scores agree with training's validation up to float rounding.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

from ..errors import PipelineError
from ..inputs.batches import DeviceImages, centre_crops, check_resize
from ..inputs.input_params import InputConfig
from ..labels import NUM_CLASSES
from ..store import FaceRows
from . import MODEL_NAMES, InputSpec, ModelsConfig, build_model, input_spec
from .checkpoint import Checkpoint

if TYPE_CHECKING:   # only predict and export, which build the AlignConfig, import staged_fer.faces
    from ..faces.align_params import AlignConfig


@dataclass(frozen=True)
class TrainedModel:
    path: Path                 # the checkpoint it was loaded from
    network: nn.Module         # in eval mode, on ``device``
    spec: InputSpec            # the network's crop side and normalisation
    input: InputConfig         # the `input` section it is fed through: resize, then centre crop to spec.size
    run: Checkpoint            # the checkpoint's record of its run; the weights live in ``network`` only
    device: torch.device
    align: AlignConfig | None = None   # its run's face preparation, when loaded for photos (predict, export)

    @classmethod
    def load(cls, path: str | Path, device: str | torch.device, models_cfg: ModelsConfig,
             input_cfg: InputConfig) -> TrainedModel:
        """The checkpoint at ``path`` rebuilt from ``models_cfg`` and fed through ``input_cfg``."""
        return cls.from_checkpoint(path, Checkpoint.read(path), device, models_cfg, input_cfg)

    @classmethod
    def from_checkpoint(cls, path: str | Path, checkpoint: Checkpoint, device: str | torch.device,
                        models_cfg: ModelsConfig, input_cfg: InputConfig,
                        align: AlignConfig | None = None) -> TrainedModel:
        """The model named in ``checkpoint`` (read from ``path``), rebuilt with ``pretrained=False``
        from ``models_cfg``, its weights loaded, in eval mode on ``device``.

        The input the checkpoint was trained on (size and normalisation) must be the one
        ``models_cfg`` gives.
        """
        path = Path(path)
        name = checkpoint.model
        if name not in MODEL_NAMES:
            raise PipelineError(f"{path}: holds model {name!r}, which is not registered "
                                f"(registered: {', '.join(MODEL_NAMES)})")
        try:
            spec = input_spec(name, models_cfg)
            network = build_model(name, models_cfg, num_classes=NUM_CLASSES, pretrained=False)
        except (KeyError, ValueError) as exc:
            raise PipelineError(f"{path}: cannot rebuild model {name!r}: {exc}") from None
        trained = input_spec(name, checkpoint.run_params(path).models)
        if trained.size != spec.size:
            raise PipelineError(f"{path}: trained at input_size {trained.size} but params.yaml "
                                f"`models.{name}.input_size` is {spec.size}; rerun training")
        if trained != spec:   # VGG-CNN-M-2048's normalisation follows its `weights`
            raise PipelineError(f"{path}: trained on inputs (pixel - {trained.mean}) / {trained.std} but "
                                f"params.yaml `models.{name}` gives (pixel - {spec.mean}) / {spec.std}; "
                                f"rerun training")
        try:
            network.load_state_dict(checkpoint.state_dict)
        except RuntimeError as exc:
            raise PipelineError(f"{path}: weights do not fit model {name!r}: {exc}") from None
        return cls(path, network.to(device).eval(), spec, input_cfg, replace(checkpoint, state_dict={}),
                   torch.device(device), align)

    @torch.inference_mode()
    def predict_proba(self, images: np.ndarray | FaceRows, batch_size: int = 256) -> np.ndarray:
        """(N, 7) float32 class probabilities of (N, S, S) uint8 faces, centre-cropped as in
        validation; rows of a face store (FaceRows) are read a batch at a time."""
        images = images if isinstance(images, FaceRows) else np.asarray(images)
        if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1] != images.shape[2]:
            raise PipelineError(f"predict_proba: expected (N, S, S) uint8 faces, got {images.shape} {images.dtype}")
        check_resize(self.input.resize, self.spec.size)
        out = np.empty((len(images), NUM_CLASSES), dtype=np.float32)
        if len(images) == 0:
            return out
        was_training = self.network.training
        self.network.eval()
        try:
            for start in range(0, len(images), batch_size):
                chunk = images[start:start + batch_size]
                bank = DeviceImages([_Faces(chunk)], self.device)
                crops = centre_crops(len(chunk), self.input.resize, self.spec.size)
                x = bank.batch(torch.arange(len(chunk)), crops, self.spec, self.input.resize, "rgb")
                logits = self.network(x).float()
                out[start:start + len(chunk)] = torch.softmax(logits, dim=1).cpu().numpy()
        finally:
            self.network.train(was_training)
        return out


class _Faces:
    """An unlabelled bank for DeviceImages."""

    def __init__(self, images: np.ndarray):
        self.images = images
        self.labels = np.zeros(len(images), dtype=np.int64)
