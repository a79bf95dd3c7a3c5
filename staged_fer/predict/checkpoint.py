"""The model predict and export use, rebuilt as the run that made it recorded it.

The network is rebuilt from the `models` section stored in the checkpoint (not from
params.yaml, which may have moved on), fed through its `input` section, and faces are prepared
with its `align` record (staged_fer/faces/record.py).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from ..faces.record import align_config_from_record
from ..models.checkpoint import Checkpoint
from ..models.trained import TrainedModel


def load_as_recorded(path: str | Path, device: torch.device, align_runtime: dict[str, Any]) -> TrainedModel:
    """The checkpoint's model on ``device`` with its run's input and align params.

    ``align_runtime`` sets the align knobs that do not change a face (``{"workers": 0}``).
    """
    path = Path(path)
    checkpoint = Checkpoint.read(path, align_required=True)
    recorded = checkpoint.run_params(path)
    align = align_config_from_record(checkpoint.align, str(path), **align_runtime)
    return TrainedModel.from_checkpoint(path, checkpoint, device, recorded.models, recorded.input, align)
