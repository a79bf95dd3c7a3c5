"""Checkpoints: the one file format a training stage writes and evaluation, prediction and
export read back.

A checkpoint is a dict (``CHECKPOINT_KEYS`` plus ``selected_on``, ``align`` and ``gpus``) saved with
``torch.save`` and read with ``weights_only=True``: the model name, its weights, the params
sections the run read, the kept epoch and its history, whether any of its data were
synthetic, its data scheme, the sets that chose its epoch and the align record of the faces
it is meant for (staged_fer/faces/record.py). ``load_checkpoint`` rebuilds the network from
the registry and loads the weights.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import torch
from torch import nn

from ..config import read_stage_params
from ..errors import PipelineError
from ..inputs.config import InputConfig
from ..io import atomic_path
from ..labels import NUM_CLASSES
from . import MODEL_NAMES, InputSpec, ModelName, ModelsConfig, build_model, input_spec

CHECKPOINT_KEYS = ("model", "state_dict", "params", "epoch", "best_val_acc", "history", "synthetic",
                   "scheme")


@dataclass(frozen=True)
class RunParams:
    """The params sections every checkpoint records that its readers use: how to rebuild the
    network (``model``, ``models``), how faces reach it (``input``) and the run's ``seed``."""
    seed: int
    model: ModelName
    models: ModelsConfig
    input: InputConfig


def run_params(ckpt: Mapping[str, Any], path: str | Path) -> RunParams:
    """The typed ``RunParams`` of checkpoint ``ckpt`` (read from ``path``)."""
    try:
        return read_stage_params(ckpt["params"], RunParams)
    except PipelineError as exc:
        raise PipelineError(f"{path}: the checkpoint's params do not fit this version "
                            f"({str(exc).removeprefix('params.yaml: ')})") from None


def write_checkpoint(path: str | Path, *, model: str, state_dict: Mapping[str, torch.Tensor],
                     params: dict[str, Any], epoch: int, best_val_acc: float | None,
                     history: list[dict[str, float]], synthetic: bool, scheme: str,
                     selected_on: list[str] | None = None, align: dict[str, Any] | None = None,
                     gpus: dict[str, Any] | None = None) -> None:
    """``selected_on``: the sets whose accuracy picked the kept epoch (None: no choice was made);
    ``align``: the align params of the faces the model is meant for (None: it met none);
    ``gpus``: the GPU slots the run was given (staged_fer/gpus.py; None: it took none)."""
    ckpt = {"model": model, "state_dict": dict(state_dict), "params": params, "epoch": epoch,
            "best_val_acc": best_val_acc, "history": history, "synthetic": synthetic,
            "scheme": scheme, "selected_on": selected_on, "align": align, "gpus": gpus}
    with atomic_path(path) as tmp:
        torch.save(ckpt, tmp)


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
                    ) -> tuple[nn.Module, InputSpec, dict[str, Any]]:
    """(model in eval mode on ``device``, its InputSpec, the checkpoint dict).

    The model named in the checkpoint is rebuilt with ``pretrained=False`` from ``models_cfg``
    (params.yaml's ``models``) and its weights loaded; the input the checkpoint was trained on
    (size and normalisation) must be the one ``models_cfg`` gives now.
    """
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
    trained = input_spec(name, run_params(ckpt, path).models)
    if trained.size != spec.size:
        raise PipelineError(f"{path}: trained at input_size {trained.size} but params.yaml "
                            f"`models.{name}.input_size` is {spec.size}; rerun training")
    if trained != spec:   # VGG-CNN-M-2048's normalisation follows its `weights`
        raise PipelineError(f"{path}: trained on inputs (pixel - {trained.mean}) / {trained.std} but "
                            f"params.yaml `models.{name}` gives (pixel - {spec.mean}) / {spec.std}; "
                            f"rerun training")
    try:
        model.load_state_dict(ckpt["state_dict"])
    except RuntimeError as exc:
        raise PipelineError(f"{path}: weights do not fit model {name!r}: {exc}") from None
    return model.to(device).eval(), spec, ckpt
