"""Checkpoints: the one file format a training phase writes and evaluation, prediction and
export read back.

A checkpoint is the fields of ``Checkpoint`` as a dict, saved with ``torch.save`` and read with
``weights_only=True``: the model name, its weights, the params sections the run read, the kept
epoch and its history, whether any of its data were synthetic, its data scheme, the sets that
chose its epoch, the align record of the faces it is meant for (staged_fer/faces/record.py) and
the GPU slots of its run. ``staged_fer/models/trained.py`` rebuilds the network from one.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import torch

from ..params import read_stage_params
from ..errors import PipelineError
from ..inputs.input_params import InputConfig
from ..io import atomic_path
from . import ModelName, ModelsConfig


def save_atomic(obj: Any, path: str | Path) -> None:
    """``torch.save`` of ``obj`` to ``path``, written under a temporary name and renamed. It goes
    through a file object: given a path, torch names the records inside the file after it, so the
    random temporary name would make the same object give different bytes (and DVC a new output)."""
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        torch.save(obj, f)


@dataclass(frozen=True)
class RunParams:
    """The params sections every checkpoint records that its readers use: how to rebuild the
    network (``model``, ``models``), how faces reach it (``input``) and the run's ``seed``."""
    seed: int
    model: ModelName
    models: ModelsConfig
    input: InputConfig


@dataclass(frozen=True)
class Checkpoint:
    """A checkpoint's contents: each field is a key of the saved dict, in the file's order."""
    model: str                             # a registered model's name
    state_dict: Mapping[str, torch.Tensor]
    params: dict[str, Any]                 # the params sections the run read, as params.yaml gave them
    epoch: int                             # the kept epoch (0: nothing trained)
    best_val_acc: float | None
    history: list[dict[str, float]]        # one entry per epoch
    synthetic: bool                        # whether any of its data (or its starting point's) were synthetic
    scheme: str                            # the data scheme it was trained on
    # Keys added to the format later: a file written before them lacks them, read as None.
    selected_on: list[str] | None = None   # the sets whose accuracy picked the kept epoch; None: no choice made
    align: dict[str, Any] | None = None    # the align record of its faces; None: it met no aligned faces
    gpus: dict[str, Any] | None = None     # the GPU slots of its run (staged_fer/gpus.py); None: it took none

    def write(self, path: str | Path) -> None:
        saved = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        saved["state_dict"] = dict(self.state_dict)   # a plain dict, whatever mapping was passed (OrderedDict...)
        save_atomic(saved, path)

    @classmethod
    def read(cls, path: str | Path, *, align_required: bool = False) -> Checkpoint:
        """The checkpoint at ``path``, loaded on the CPU; checked for its keys.

        ``align_required``: the caller prepares faces with the run's align record (predict,
        export), so a checkpoint without one is refused, saying why it has none.
        """
        path = Path(path)
        if not path.is_file():
            raise PipelineError(f"{path}: checkpoint not found (run `dvc repro` for the stage that writes it)")
        try:
            saved = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # torch raises several unpickling error types
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""   # torch's text runs to many lines
            raise PipelineError(f"{path}: not a readable checkpoint ({type(exc).__name__}: {first})") from None
        if not isinstance(saved, dict):
            raise PipelineError(f"{path}: expected a checkpoint dict, got {type(saved).__name__}")
        keys = dataclasses.fields(cls)
        missing = [f.name for f in keys if f.default is dataclasses.MISSING and f.name not in saved]
        if missing:
            raise PipelineError(f"{path}: checkpoint lacks key `{missing[0]}` (rerun the training phase)")
        checkpoint = cls(**{f.name: saved.get(f.name, f.default) for f in keys})
        if align_required:
            if "align" not in saved:
                raise PipelineError(f"{path}: older checkpoint format, without the align params of its run; "
                                    "rerun `dvc repro` (align_target onwards) to write it in the current format")
            if checkpoint.align is None:
                raise PipelineError(f"{path}: this {checkpoint.scheme!r} model never met aligned faces, so its run "
                                    "recorded no align params; predict with the final model (train_phase2's checkpoint)")
        return checkpoint

    def run_params(self, where: str | Path) -> RunParams:
        """The typed ``RunParams`` of the run; ``where`` names the checkpoint in the error."""
        try:
            return read_stage_params(self.params, RunParams)
        except PipelineError as exc:
            raise PipelineError(f"{where}: the checkpoint's params do not fit this version "
                                f"({str(exc).removeprefix('params.yaml: ')})") from None
