"""A small, randomly initialised checkpoint in the format the training phases write.

AlexNet at 64 px (its smallest input) with `models.alexnet.weights: none`, so nothing is ever
downloaded; the run's `align` record says dlib landmarks, so faces are prepared offline.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch

from faces_samples import align_config
from staged_fer.params import parse
from staged_fer.faces.record import align_record
from staged_fer.models import ModelsConfig, build_model
from staged_fer.models.checkpoint import Checkpoint
from tests.params_baseline import baseline_params

# Every registered model from random weights; AlexNet at its smallest input.
MODELS = {name: {**values, "weights": "none"} for name, values in baseline_params()["models"].items()}
MODELS["alexnet"]["input_size"] = 64
PARAMS = {
    "seed": 0, "model": "alexnet", "models": MODELS, "input": {"resize": 72, "flip": True},
    "runtime": {"devices": 1, "device": "cpu", "deterministic": False, "bf16": False},
    "phase2": {"data": "target", "epochs": 1, "batch_size": 16, "lr": 0.005, "lr_step": 4, "momentum": 0.9,
               "weight_decay": 0.0005, "keep": "best", "class_weights": False},
}


def align_record_dlib(**overrides) -> dict:
    return align_record(dataclasses.replace(align_config(), **overrides))


def small_state_dict(seed: int = 0) -> dict:
    """Random AlexNet weights whose 7-way head is scaled up 40x: a freshly initialised head gives
    near-uniform probabilities (top two within 2e-4), a trained one decisive ones, as these do."""
    torch.manual_seed(seed)
    state = build_model("alexnet", parse(ModelsConfig, MODELS, "models"), pretrained=False).state_dict()
    state["classifier.6.weight"] = state["classifier.6.weight"] * 40
    return state


def write_small_checkpoint(path: Path, state_dict: dict, **fields) -> Path:
    """A checkpoint of ``state_dict`` (an empty dict serves tests that fail before the weights)."""
    values = dict(model="alexnet", state_dict=state_dict, params=PARAMS, epoch=1, best_val_acc=0.4,
                  history=[{"epoch": 1, "val_acc": 0.4}], synthetic=True, scheme="target",
                  align=align_record_dlib())
    values.update(fields)
    Checkpoint(**values).write(path)
    return path


@pytest.fixture(scope="session")
def small_weights() -> dict:
    """AlexNet's 57M random parameters, made once per test session (seconds on a busy CPU)."""
    return small_state_dict()


@pytest.fixture(scope="session")
def small_checkpoint(tmp_path_factory, small_weights) -> Path:
    return write_small_checkpoint(tmp_path_factory.mktemp("checkpoint") / "phase2.pt", small_weights)
