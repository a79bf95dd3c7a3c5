"""The two checkpoints `evaluate` scores, behind one ``predict(role, images)`` call, and the
params the stage reads."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np

from ..devices import resolve_device
from ..errors import PipelineError
from ..inputs.input_params import InputConfig
from ..models import ModelName, ModelsConfig
from ..models.checkpoint import Checkpoint
from ..models.trained import TrainedModel
from .metrics import EvaluateConfig


@dataclass(frozen=True)
class EvaluateParams:
    """What the evaluate stage reads, parsed once (staged_fer.params.read_stage_params)."""
    seed: int                  # the bootstrap's resampling
    model: ModelName           # the model the checkpoints must hold
    models: ModelsConfig       # to rebuild them
    input: InputConfig         # the validation input path
    evaluate: EvaluateConfig


class Predictor:
    """Loads the phase-1 ("phase1") and final ("final") models once; checks they are the
    model params.yaml names, so a stale checkpoint is never scored under another name."""

    def __init__(self, params: EvaluateParams, params_path: str, checkpoints: Mapping[str, str]):
        self.model_name = params.model
        self.batch_size = params.evaluate.batch_size
        self.device = resolve_device(params.evaluate.device, "evaluate.device")
        self.models: dict[str, TrainedModel] = {}
        for role, path in checkpoints.items():
            model = TrainedModel.load(path, self.device, params.models, params.input)
            if model.run.model != self.model_name:
                raise PipelineError(f"{path}: checkpoint holds model {model.run.model!r} but {params_path} "
                                    f"`model` is {self.model_name!r}; run `dvc repro` to retrain")
            self.models[role] = model

    def __call__(self, role: str, images: np.ndarray) -> np.ndarray:
        return self.models[role].predict_proba(images, batch_size=self.batch_size)

    def synthetic(self, role: str) -> bool:
        """Whether the model was trained on any synthetic data."""
        return bool(self.models[role].run.synthetic)

    @property
    def runs(self) -> dict[str, Checkpoint]:
        """Each role's record of its run (the model card's facts)."""
        return {role: model.run for role, model in self.models.items()}

    def info(self, gpus: dict | None = None) -> dict:
        """Run facts for the reports: which model and schemes were scored, and the GPU slots
        each step was given (``gpus``: this evaluation's; staged_fer/gpus.py)."""
        runs = self.runs
        return {"model": self.model_name,
                "schemes": f"{runs['phase1'].scheme} -> {runs['final'].scheme}",
                "selected_on": {role: run.selected_on for role, run in runs.items()},
                "gpus": {"train_phase1": runs["phase1"].gpus, "train_phase2": runs["final"].gpus,
                         "evaluate": gpus}}
