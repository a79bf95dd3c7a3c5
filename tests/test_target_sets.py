"""Any class-folder tree as the target set: RAF-DB's numbered folders through a label map."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from staged_fer.params import load_params, parse
from staged_fer.data.target import TargetConfig, scan_sfew
from staged_fer.errors import PipelineError
from staged_fer.labels import LABEL_OF
from staged_fer.synthetic.sfew import write_sfew_tree
from tests.dvc_project import TINY_PARAMS, DvcProject

# RAF-DB (basic): train/ and test/, class folders 1..7.
RAF_LABELS = {1: "Surprise", 2: "Fear", 3: "Disgust", 4: "Happy", 5: "Sad", 6: "Angry", 7: "Neutral", 8: None}
RAF_SPLITS = {"Train": "train", "Val": "test", "Test": None}


def target_config(**overrides) -> TargetConfig:
    raw = {**load_params("params.yaml")["target"], **overrides}
    return parse(TargetConfig, raw, "target")


def raf_tree(root: Path, per_class: tuple[int, int], seed: int = 0, extra: int = 2) -> Path:
    """A synthetic SFEW tree renamed to RAF-DB's layout, plus an eighth class folder `8`."""
    sfew = root.parent / f".{root.name}-sfew"
    write_sfew_tree(sfew, per_class[0], per_class[1], 0, seed)
    number = {emotion: str(k) for k, emotion in RAF_LABELS.items() if emotion}
    for split, raf_split in (("Train", "train"), ("Val", "test")):
        for emotion_folder in (sfew / split).iterdir():
            target = root / raf_split / number[emotion_folder.name]
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(str(emotion_folder), target)
        eighth = root / raf_split / "8"
        eighth.mkdir()
        for i, src in enumerate(sorted((root / raf_split / "7").iterdir())[:extra]):
            shutil.copy(src, eighth / f"contempt_{i}.png")
    shutil.rmtree(sfew)
    return root


def test_label_map_reads_raf_db_folders_and_skips_the_eighth_class(tmp_path):
    root = raf_tree(tmp_path / "RAF", (2, 2))
    cfg = target_config(root=str(root), splits=RAF_SPLITS, labels=RAF_LABELS)
    assert cfg.labels["1"] == "Surprise"   # YAML's integer keys read as folder names
    scan = scan_sfew(root, "target.root", cfg.splits, cfg.label_of())
    labelled = [t for t in scan.tasks if not t.skip_reason]
    assert {(t.split, t.path.split("/")[1], t.label) for t in labelled} == {
        (split, str(k), LABEL_OF[e]) for split in ("Train", "Val") for k, e in RAF_LABELS.items() if e}
    assert scan.skipped == {"test/8": 2, "train/8": 2}
    assert all("outside the seven" in t.skip_reason for t in scan.tasks if t.skip_reason)


def test_label_map_errors_name_the_folder(tmp_path):
    with pytest.raises(PipelineError, match=r"`target`: labels: folder '8' maps to 'Contempt', not one of the seven"):
        target_config(labels={**RAF_LABELS, 8: "Contempt"})
    root = raf_tree(tmp_path / "RAF", (1, 0), extra=1)
    cfg = target_config(root=str(root), splits=RAF_SPLITS, labels={k: v for k, v in RAF_LABELS.items() if k != 8})
    with pytest.raises(PipelineError, match=r"RAF/train/8: unknown emotion folder '8'; expected an `target.labels` entry"):
        scan_sfew(root, "target.root", cfg.splits, cfg.label_of())


@pytest.mark.slow
def test_pipeline_trains_on_a_raf_db_style_tree(tmp_path):
    """The whole pipeline through `dvc repro`, the target set a RAF-DB-style tree."""
    root = raf_tree(tmp_path / "RAF-DB" / "basic", (4, 3))
    project = DvcProject.copy_of_repo(tmp_path / "repo", {
        **TINY_PARAMS, "target.source": "dir", "target.root": str(root), "target.splits": RAF_SPLITS,
        "target.labels": RAF_LABELS})
    assert "build_splits" in project.repro()
    align = json.loads((project.path / "reports" / "target" / "alignment.json").read_text())
    assert align["skipped_classes"] == {"test/8": 2, "train/8": 2}
    log = (project.path / "data" / "interim" / "target_log.csv").read_text()
    assert "train/1/" in log and "test/7/" in log
    assert (project.path / "models" / "phase2.pt").is_file()
    metrics = json.loads((project.path / "metrics" / "eval.json").read_text())
    # Val faces whose detection fails are dropped; the others are scored.
    assert 0 < metrics["target_val"]["n"] <= 7 * 3 and 0 <= metrics["target_val"]["accuracy"] <= 1
