"""The align_target stage end to end: its outputs and contracts, its errors, its determinism."""
import csv
import importlib.util
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from faces_samples import write_png, astronaut_gray, write_sfew_fixture
from staged_fer.cli import run_stage
from staged_fer.faces.outputs import LOG_COLUMNS
from staged_fer.store import open_store
from tests.params_baseline import baseline_params

REPO = Path(__file__).resolve().parents[1]


def _stage():
    spec = importlib.util.spec_from_file_location("align_target_stage", REPO / "stages" / "align_target.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _params(tmp_path, root, **align):
    params = baseline_params()
    params["target"]["root"] = str(root)
    params["align"].update({"landmarks": "dlib", "workers": 1, **align})
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    return path, params


def _run(params_path, out: Path):
    argv = ["--params", str(params_path), "--out", str(out / "target"), "--log", str(out / "log.csv"),
            "--reports", str(out / "reports"), "--metrics", str(out / "align.json")]
    return run_stage(_stage().main, argv)


def test_stage_writes_the_contract_log_metrics_and_sheets(tmp_path):
    root = tmp_path / "SFEW"
    expected = write_sfew_fixture(root)
    params_path, _ = _params(tmp_path, root)
    out = tmp_path / "out"
    assert _run(params_path, out) == 0

    npz = open_store(out / "target")
    assert set(npz) == {"images", "labels", "split", "paths", "outcome", "source", "align"}
    assert sorted(p.name for p in (out / "target").iterdir()) == ["faces-00000.npy", "index.npz"]
    # The align params travel with the faces (into the splits and checkpoints), without `workers`/`device`.
    params = yaml.safe_load(params_path.read_text())["align"]
    assert json.loads(str(npz["align"])) == {k: v for k, v in params.items() if k not in ("workers", "device")}
    assert npz["images"].dtype == np.uint8 and npz["images"].shape[1:] == (256, 256)
    assert npz["labels"].dtype == np.int64 and str(npz["source"]) == "dir"
    kept = sorted(p for p, (o, _, _) in expected.items() if o == "aligned" or o == "fallback")
    assert npz["paths"].tolist() == kept
    assert all(npz["labels"][i] == expected[p][1] for i, p in enumerate(kept))

    with open(out / "log.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert tuple(rows[0]) == LOG_COLUMNS and len(rows) == len(expected)
    by_path = {r["path"]: r for r in rows}
    assert by_path["Train/Angry/zero.png"]["reason"].startswith("empty file")
    gray = by_path["Train/Happy/gray.png"]
    assert gray["detector"] == "frontal" and gray["label"] == "Happy" and float(gray["fit"]) >= 0.3
    assert abs(float(gray["angle_deg"]) - 3.1) < 1.5 and float(gray["left_eye_x"]) > float(gray["right_eye_x"])

    rates = json.loads((out / "align.json").read_text())
    metrics = json.loads((out / "reports" / "alignment.json").read_text())
    assert rates == {"alignment_rate": metrics["alignment_rate"]["all"], "aligned_by": metrics["aligned_by"]}
    assert metrics["synthetic"] is False and metrics["landmarks"] == "dlib"
    assert metrics["counts"]["Train"] == {"aligned": 4, "fallback": 0, "dropped": 3, "unreadable": 4, "total": 11}
    assert metrics["counts"]["Val"]["fallback"] == 1 and metrics["alignment_rate"]["Test"] == 1.0
    assert metrics["detection_rate"]["Train"] == pytest.approx(4 / 6, abs=1e-6)
    assert "Val/Disgust" in metrics["empty_folders"]
    # The astronaut's face is under a quarter of the photo's side: the second frontal attempt finds it.
    assert metrics["aligned_by"]["frontal_small"] == pytest.approx(metrics["alignment_rate"]["all"])
    assert sum(metrics["aligned_by"].values()) == pytest.approx(metrics["alignment_rate"]["all"])
    assert sorted(p.name for p in (out / "reports").iterdir()) == ["aligned.png", "alignment.json", "failures.png"]


@pytest.mark.slow
def test_stage_outputs_do_not_depend_on_the_number_of_workers(tmp_path):
    root = tmp_path / "SFEW"
    for k, rel in enumerate(("Train/Happy/a.png", "Val/Fear/b.png", "Test/c.png")):
        write_png(root / rel, cv2.resize(astronaut_gray(rotate_deg=4 * k), (320, 320), interpolation=cv2.INTER_AREA))
    outs = []
    for workers in (1, 2):
        params_path, _ = _params(tmp_path, root, workers=workers)
        out = tmp_path / f"out{workers}"
        assert _run(params_path, out) == 0
        outs.append(out)
    assert_same_outputs(outs[0], outs[1])


def assert_same_outputs(a: Path, b: Path) -> None:
    """Every file of the two runs' outputs (the store's shards and index, the log, the metrics,
    the report) has the same bytes."""
    files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    assert Path("target/index.npz") in files and Path("log.csv") in files
    for name in files:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name


@pytest.mark.parametrize("edit,message", [
    (lambda p: p["target"].update(root="/nonexistent/SFEW_2.0"), "target.root: folder /nonexistent/SFEW_2.0 not found"),
    (lambda p: p["target"].update(source="web"), "`target.source` is 'web'; expected one of: 'dir', 'synthetic'"),
    (lambda p: p["align"].update(box_from="chin"), "`align.box_from` is 'chin'"),
    (lambda p: p["align"]["detector"].update(scale_factor=1.0), "scale_factor must be > 1"),
    (lambda p: p["align"]["pad"].update(fill="wrap"), "`align.pad.fill` is 'wrap'"),
    (lambda p: p["align"]["pad"].update(margin=0.0), "pad.margin must be within (0, 2]"),
    (lambda p: p["align"].update(confident_fit=0.1), "confident_fit must be within [min_fit, 1]"),
])
def test_bad_configuration_is_one_clear_line_and_no_output(tmp_path, capsys, edit, message):
    root = tmp_path / "SFEW"
    write_png(root / "Train" / "Happy" / "a.png", astronaut_gray())
    (root / "Val").mkdir()
    params_path, params = _params(tmp_path, root)
    edit(params)
    params_path.write_text(yaml.safe_dump(params))
    out = tmp_path / "out"
    assert _run(params_path, out) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and message in err[0], err
    assert not out.exists()


def test_unknown_emotion_folder_stops_the_stage_before_writing(tmp_path, capsys):
    root = tmp_path / "SFEW"
    write_png(root / "Train" / "Happy" / "a.png", astronaut_gray())
    (root / "Train" / "Contempt").mkdir()
    (root / "Val").mkdir()
    params_path, _ = _params(tmp_path, root)
    out = tmp_path / "out"
    assert _run(params_path, out) == 1
    assert "unknown emotion folder 'Contempt'" in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.slow
def test_synthetic_source_is_aligned_like_a_real_tree_and_removed(tmp_path):
    params_path, params = _params(tmp_path, tmp_path / "unused", workers=2)
    params["target"].update(source="synthetic", synthetic={"train_per_class": 1, "val_per_class": 1, "test": 1})
    params_path.write_text(yaml.safe_dump(params))
    out = tmp_path / "out"
    assert _run(params_path, out) == 0
    metrics = json.loads((out / "reports" / "alignment.json").read_text())
    npz = open_store(out / "target")
    assert metrics["synthetic"] is True and str(npz["source"]) == "synthetic"
    assert metrics["counts"]["all"]["total"] == 15 and metrics["counts"]["all"]["unreadable"] == 0
    # The synthetic faces are drawn for the real detector and landmark model: most must align.
    assert metrics["alignment_rate"]["all"] >= 0.7
    assert not any(p.startswith("/") for p in npz["paths"].tolist())
