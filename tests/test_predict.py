"""python -m staged_fer.predict on real faces (scikit-image's astronaut, LFW faces, a video of
the astronaut written here) and on every kind of bad input, with a small random checkpoint."""
from __future__ import annotations

import csv
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from faces_samples import astronaut_gray, astronaut_rgb, lfw_canvas, write_jpeg, write_png
from model_samples import align_record_dlib, small_checkpoint, small_weights, write_small_checkpoint  # noqa: F401
from staged_fer.cli import run_stage
from staged_fer.labels import EMOTIONS
from staged_fer.predict.__main__ import main
from staged_fer.predict.run import COLUMNS

LFW = (0, 1, 2, 3)
VIDEO_FRAMES, VIDEO_FPS, SAMPLE_FPS = 8, 8.0, 4.0    # 1 s of video, every other frame sampled


def write_video(path: Path) -> Path:
    """The astronaut at half size drifting right by 4 px a frame, as an MPEG-4 file."""
    bgr = cv2.resize(cv2.cvtColor(astronaut_rgb(), cv2.COLOR_RGB2BGR), (256, 256), interpolation=cv2.INTER_AREA)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), VIDEO_FPS, (bgr.shape[1], bgr.shape[0]))
    for i in range(VIDEO_FRAMES):
        writer.write(np.roll(bgr, 4 * i, axis=1))
    writer.release()
    assert path.stat().st_size > 0
    return path


@pytest.fixture(scope="module")
def inputs(module_tmp, small_checkpoint):
    root = module_tmp("predict")
    write_jpeg(root / "astronaut.jpg", cv2.cvtColor(astronaut_rgb(), cv2.COLOR_RGB2BGR))
    for i in LFW:   # nested, to be found recursively
        write_png(root / "lfw" / ("a" if i < 2 else "b/c") / f"lfw{i}.png", lfw_canvas(i))
    write_video(root / "clip.mp4")
    bad = root / "bad"
    write_png(bad / "gradient.png", np.tile(np.arange(200, dtype=np.uint8), (200, 1)))
    (bad / "empty.png").write_bytes(b"")
    png = cv2.imencode(".png", astronaut_gray())[1].tobytes()
    (bad / "truncated.png").write_bytes(png[: len(png) // 2])
    (bad / "notes.txt").write_text("not a picture\n")
    (bad / "broken.mp4").write_bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    (bad / ".DS_Store").write_bytes(b"\0\0")
    return root, small_checkpoint


def read_rows(path: Path) -> list[dict]:
    with open(path, newline="") as fh:
        reader = csv.DictReader(fh)
        assert tuple(reader.fieldnames) == COLUMNS
        return list(reader)


@pytest.fixture(scope="module")
def predicted(inputs):
    root, ckpt = inputs
    out, notes = root / "out" / "predictions.csv", root / "out" / "annotated"
    argv = [str(root / "astronaut.jpg"), str(root / "lfw"), str(root / "clip.mp4"), str(root / "bad"),
            "--model", str(ckpt), "--out", str(out), "--annotate", str(notes), "--fps", str(SAMPLE_FPS),
            "--device", "cpu", "--workers", "1", "--batch-size", "3", "--quiet"]
    assert run_stage(main, argv) == 0
    return root, read_rows(out), notes, argv


def by_source(rows, name):
    return [r for r in rows if r["source"].endswith(name)]


def test_every_face_is_found_aligned_and_classified(predicted):
    root, rows, _, _ = predicted
    faces = [r for r in rows if r["outcome"] == "aligned"]
    # The astronaut, four LFW faces and the astronaut in each of the 4 sampled frames: no more.
    assert len(by_source(faces, "astronaut.jpg")) == 1
    for i in LFW:
        (row,) = by_source(rows, f"lfw{i}.png")
        assert row["outcome"] == "aligned", row
    video = by_source(faces, "clip.mp4")
    assert [r["frame"] for r in video] == ["0", "2", "4", "6"]
    assert [r["time_s"] for r in video] == ["0.000", "0.250", "0.500", "0.750"]
    assert all(r["outcome"] == "aligned" and r["face"].isdigit() for r in video)
    assert len(faces) == 1 + len(LFW) + 4
    for r in faces:
        p = np.array([float(r[f"p_{e}"]) for e in EMOTIONS])
        assert p.sum() == pytest.approx(1.0, abs=1e-5) and (p >= 0).all()
        assert r["predicted"] == EMOTIONS[int(p.argmax())]
        assert float(r["fit"]) >= 0.3 and r["detector"] and float(r["box_w"]) > 24


def test_bad_inputs_are_listed_with_their_reason(predicted):
    _, rows, _, _ = predicted
    expect = {"gradient.png": ("no_face", "no face detected"), "empty.png": ("unreadable", "empty file"),
              "truncated.png": ("unreadable", "truncated"),
              "notes.txt": ("unreadable", "neither an image nor a video"),
              "broken.mp4": ("unreadable", "video")}
    for name, (outcome, reason) in expect.items():
        (row,) = by_source(rows, name)
        assert row["outcome"] == outcome and reason in row["reason"], row
    assert not by_source(rows, ".DS_Store")


def test_annotated_copies_are_written(predicted):
    root, _, notes, _ = predicted
    files = sorted(p.relative_to(notes).as_posix() for p in notes.rglob("*") if p.is_file())
    names = [Path(f).name for f in files]
    assert "astronaut.jpg" in names and "clip.mp4" in names
    assert sum(n.startswith("lfw") for n in names) == len(LFW)
    astro = cv2.imread(str(next(notes.rglob("astronaut.jpg"))))
    assert astro.shape == (512, 512, 3)
    # The box is drawn in the accepted colour (green) somewhere on the copy.
    green = (astro[:, :, 1] > 170) & (astro[:, :, 0] < 110) & (astro[:, :, 2] < 110)
    assert green.sum() > 200
    cap = cv2.VideoCapture(str(next(notes.rglob("clip.mp4"))))
    n = 0
    while cap.read()[0]:
        n += 1
    cap.release()
    assert n == 4


def test_outputs_are_refused_unless_overwrite_and_align_comes_from_the_checkpoint(
        predicted, tmp_path, capsys, small_weights):
    """An existing CSV or folder stops the run; --overwrite replaces both. The faces are
    prepared with the checkpoint's own align record: one that asks for a fit of 1 rejects them."""
    root, _, notes, argv = predicted
    out, copy = tmp_path / "predictions.csv", tmp_path / "annotated"
    shutil.copy(root / "out" / "predictions.csv", out)
    shutil.copytree(notes, copy)
    strict = write_small_checkpoint(tmp_path / "strict.pt", small_weights, align=align_record_dlib(min_fit=1.0, confident_fit=1.0, whole_photo_min_fit=1.0))
    run = [str(root / "astronaut.jpg"), "--model", str(strict), "--out", str(out), "--annotate", str(copy),
           "--device", "cpu", "--workers", "1", "--quiet"]
    before = out.read_bytes()
    assert run_stage(main, run) == 1
    assert "exists; pass --overwrite" in capsys.readouterr().err
    assert out.read_bytes() == before
    assert run_stage(main, run + ["--overwrite"]) == 0
    (row,) = read_rows(out)
    assert row["outcome"] == "rejected" and "below align.min_fit 1.0" in row["reason"]
    assert row["p_Happy"] == "" and row["predicted"] == "" and float(row["box_w"]) > 0
    assert [p.name for p in copy.rglob("*") if p.is_file()] == ["astronaut.jpg"]
    astro = cv2.imread(str(next(copy.rglob("astronaut.jpg"))))
    red = (astro[:, :, 2] > 170) & (astro[:, :, 0] < 110) & (astro[:, :, 1] < 110)
    assert red.sum() > 200


@pytest.mark.parametrize("make, message", [
    (lambda p: torch.save({"conv.weight": torch.zeros(1)}, p), "lacks key `model`"),
    (lambda p: write_small_checkpoint(p, {}, model="resnet50"), "resnet50"),
    (lambda p: p.write_bytes(b"not a checkpoint"), "not a readable checkpoint"),
    (lambda p: write_small_checkpoint(p, {}) and _drop_align(p), "older checkpoint format"),
    (lambda p: write_small_checkpoint(p, {}, align=None, scheme="fer28"), "never met aligned faces"),
])
def test_a_checkpoint_predict_cannot_use_is_one_line(inputs, tmp_path, capsys, make, message):
    root, _ = inputs
    ckpt = tmp_path / "other.pt"
    make(ckpt)
    assert run_stage(main, [str(root / "astronaut.jpg"), "--model", str(ckpt), "--out", str(tmp_path / "p.csv"),
                            "--device", "cpu", "--quiet"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: {ckpt}") and message in err[0], err
    assert not (tmp_path / "p.csv").exists()


def test_without_model_predict_takes_the_final_model_where_dvc_yaml_puts_it(inputs, tmp_path, capsys, monkeypatch):
    root, _ = inputs
    monkeypatch.chdir(tmp_path)
    argv = [str(root / "astronaut.jpg"), "--out", "p.csv", "--device", "cpu", "--quiet"]
    assert run_stage(main, argv) == 1
    assert "dvc.yaml: not found; run this from the repository root" in capsys.readouterr().err
    (tmp_path / "dvc.yaml").write_text("vars:\n  - phase2_model: elsewhere/final.pt\n")
    assert run_stage(main, argv) == 1
    assert "error: elsewhere/final.pt: checkpoint not found" in capsys.readouterr().err


def _drop_align(path: Path) -> bool:
    ckpt = torch.load(path, weights_only=True)
    del ckpt["align"]
    torch.save(ckpt, path)
    return True
