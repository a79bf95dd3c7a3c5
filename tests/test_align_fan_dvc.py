"""align_target with the default `align.landmarks: fan`, through the real `dvc` CLI, offline:
face-alignment loads the random FAN(4) weights placed under TORCH_HOME (conftest's
``fan_weights``), and `align.min_fit: 0` lets their fits pass (the geometry check may still reject their
random shapes), so the plumbing is tested."""
import csv
import json

import cv2

from faces_samples import astronaut_gray, write_png
from tests.dvc_project import TINY_PARAMS, DvcProject


def test_align_target_with_fan_through_dvc(tmp_path, fan_weights):
    root = tmp_path / "SFEW_2.0"
    face = astronaut_gray()[20:280, 120:340]                 # one detection each
    write_png(root / "Train" / "Happy" / "a.png", face)
    write_png(root / "Val" / "Sad" / "b.png", cv2.flip(face, 1))
    params = {**TINY_PARAMS, "target.source": "dir", "target.root": str(root),
              "align.landmarks": "fan", "align.min_fit": 0.0, "align.device": "cpu"}
    (tmp_path / "repo").mkdir()
    project = DvcProject.copy_of_repo(tmp_path / "repo", params)   # its env carries TORCH_HOME
    assert project.repro("align_target") == ["align_target"]
    metrics = json.loads((project.path / "reports" / "target" / "alignment.json").read_text())
    assert metrics["landmarks"] == "fan" and metrics["synthetic"] is False
    assert metrics["detection_rate"]["all"] == 1.0
    # Random weights give random points: a fit passes min_fit 0, then the geometry check may
    # reject the shape. Either way FAN fitted each detected face and the stage logged the result.
    with open(project.path / "data" / "interim" / "target_log.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 2, rows
    for row in rows:
        assert row["fit"] and float(row["fit"]) >= 0.0, row
        assert row["outcome"] == "aligned" or "not a plausible face" in row["reason"], row
