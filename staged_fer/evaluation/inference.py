"""The two checkpoints `evaluate` scores, behind one ``predict(role, images)`` call, and the
params the stage reads."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np

from ..devices import resolve_device
from ..errors import PipelineError
from ..models import ModelName, ModelsConfig
from ..inputs.config import InputConfig
from ..models.checkpoint import load_checkpoint
from ..models.inference import predict_proba
from .metrics import EvaluateConfig


@dataclass(frozen=True)
class EvaluateParams:
    """What the evaluate stage reads, parsed once (staged_fer.config.read_stage_params)."""
    seed: int                  # the bootstrap's resampling
    model: ModelName           # the model the checkpoints must hold
    models: ModelsConfig       # to rebuild them
    input: InputConfig         # the validation input path
    evaluate: EvaluateConfig


class Predictor:
    """Loads the stage-1 ("stage1") and final ("final") models once; checks they are the
    model params.yaml names, so a stale checkpoint is never scored under another name."""

    def __init__(self, params: EvaluateParams, params_path: str, checkpoints: Mapping[str, str]):
        self.models_cfg = params.models
        self.input_cfg = params.input
        self.model_name = params.model
        self.batch_size = params.evaluate.batch_size
        self.device = resolve_device(params.evaluate.device, "evaluate.device")
        self.models = {}
        for role, path in checkpoints.items():
            model, spec, ckpt = load_checkpoint(path, self.models_cfg, self.device)
            if ckpt["model"] != self.model_name:
                raise PipelineError(f"{path}: checkpoint holds model {ckpt['model']!r} but {params_path} "
                                    f"`model` is {self.model_name!r}; run `dvc repro` to retrain")
            self.models[role] = (model, spec, ckpt)

    def __call__(self, role: str, images: np.ndarray) -> np.ndarray:
        model, spec, _ = self.models[role]
        return predict_proba(model, spec, images, self.input_cfg, self.device, batch_size=self.batch_size)

    def synthetic(self, role: str) -> bool:
        """Whether the model was trained on any synthetic data."""
        return bool(self.models[role][2]["synthetic"])

    def info(self, gpus: dict | None = None) -> dict:
        """Run facts for the reports: which model and schemes were scored, and the GPU slots
        each step was given (``gpus``: this evaluation's; staged_fer/gpus.py)."""
        return {"model": self.model_name,
                "scheme": f"{self.models['stage1'][2]['scheme']} -> {self.models['final'][2]['scheme']}",
                "selected_on": {role: ckpt.get("selected_on") for role, (_, _, ckpt) in self.models.items()},
                "gpus": {"train_stage1": self.models["stage1"][2].get("gpus"),
                         "train_stage2": self.models["final"][2].get("gpus"), "evaluate": gpus}}
