"""The model a real `dvc repro` trained, used: predict on a photo, the model card, and the
optional export stage switched on and off, through the real `dvc` CLI (tiny configuration)."""
from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import cv2
import pytest

from faces_samples import astronaut_rgb, write_jpeg
from tests.dvc_project import TINY_PARAMS, DvcProject

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def project(module_tmp):
    project = DvcProject.copy_of_repo(module_tmp("repo"), TINY_PARAMS)
    project.repro()
    return project


def test_predict_uses_the_trained_model_and_its_align_params(project):
    photo = Path("photos") / "astronaut.jpg"   # given relative to the project, as `make predict` users do
    write_jpeg(project.path / photo, cv2.cvtColor(astronaut_rgb(), cv2.COLOR_RGB2BGR))
    result = project.run(sys.executable, "-m", "staged_fer.predict", str(photo.parent), "--out", "predictions.csv",
                         "--annotate", "annotated", "--device", "cpu", "--quiet")
    assert "faces aligned with its run's align params (dlib landmarks" in result.stderr
    with open(project.path / "predictions.csv", newline="") as fh:
        (row,) = list(csv.DictReader(fh))
    assert row["outcome"] == "aligned" and row["predicted"]
    assert (project.path / "annotated" / photo).is_file()
    card = (project.path / "reports" / "model_card.md").read_text()
    assert "**Synthetic data.**" in card and "dlib 68-point landmarks" in card


def test_export_stage_runs_only_when_switched_on(project):
    assert project.dvc("stage", "list").stdout.count("export") == 0
    project.set_params(export__onnx=["phase2"])
    assert project.repro() == ["export@phase2"]
    sidecar = json.loads((project.path / "models" / "phase2.json").read_text())
    assert sidecar["align"]["landmarks"] == "dlib" and sidecar["metrics"]["synthetic"] is True
    assert (project.path / "models" / "phase2.onnx").stat().st_size > 1_000_000
    project.set_params(export__onnx=[])
    assert project.repro() == []
    assert "up to date" in project.dvc("status").stdout
