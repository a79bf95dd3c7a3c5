"""The two checkpoints `evaluate` scores, behind one ``predict(role, images)`` call."""
from __future__ import annotations

from typing import Mapping

import numpy as np

from ..config import section
from ..devices import resolve_device
from ..errors import PipelineError
from ..models import ModelsConfig, entry
from ..inputs.config import InputConfig
from ..models.checkpoint import load_checkpoint
from ..models.inference import predict_proba
from .metrics import EvaluateConfig


class Predictor:
    """Loads the stage-1 ("stage1") and final ("final") models once; checks they are the
    model params.yaml names, so a stale checkpoint is never scored under another name."""

    def __init__(self, params: Mapping, params_path: str, checkpoints: Mapping[str, str], cfg: EvaluateConfig):
        self.models_cfg = section(params, "models", ModelsConfig)
        self.input_cfg = section(params, "input", InputConfig)
        self.model_name = entry(params.get("model")).name
        self.batch_size = cfg.batch_size
        self.device = resolve_device(cfg.device, "evaluate.device")
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

    def info(self) -> dict:
        """Run facts for the metrics file: which model and schemes were scored."""
        return {"model": self.model_name,
                "scheme": f"{self.models['stage1'][2]['scheme']} -> {self.models['final'][2]['scheme']}",
                "selected_on": {role: ckpt.get("selected_on") for role, (_, _, ckpt) in self.models.items()}}
