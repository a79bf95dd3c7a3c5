"""The per-image pipeline (read, detect, landmarks, fit test, align or fall back) and its
parallel driver.

Each image is handled independently and the results come back in the order of the tasks
(sorted by path by the caller), so the output does not depend on the number of workers.
Detection and dlib landmarks run in a process pool whose workers load the cascades and the
shape predictor once. With FAN, workers only read and detect; the landmark network runs in
the main process (on `align.device`), each forward pass holding the candidate boxes of several images.
"""
from __future__ import annotations

import multiprocessing
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence

import cv2
import numpy as np

from . import geometry
from .config import AlignConfig
from .decode import Unreadable, read_gray
from .detection import Detection, FaceDetector
from .landmarks import DlibLandmarker, FanLandmarker, Landmarker

# Candidates tried per image, largest first: a large false positive (a poster, a pattern)
# must not hide the real face behind it, but a crowd must not cost a landmark fit per face.
MAX_CANDIDATES = 3
THUMB = 96   # side of the thumbnails kept for the report of failed images

ALIGNED, FALLBACK, DROPPED, UNREADABLE = "aligned", "fallback", "dropped", "unreadable"
OUTCOMES = (ALIGNED, FALLBACK, DROPPED, UNREADABLE)


@dataclass(frozen=True)
class ImageTask:
    path: str            # relative to the dataset root, POSIX separators
    split: str           # Train | Val | Test
    label: int           # FER order; -1 when unlabeled
    # Set for a file that cannot be labelled (found outside the emotion folders): logged, not read.
    skip_reason: str = ""


@dataclass
class Result:
    task: ImageTask
    outcome: str
    reason: str = ""
    detector: str = ""
    box: tuple[float, float, float, float] | None = None
    fit: float | None = None
    eyes: np.ndarray | None = None       # (2, 2): subject's right eye, subject's left eye
    angle_deg: float | None = None
    face: np.ndarray | None = None       # (size, size) uint8 for aligned and fallback
    thumb: np.ndarray | None = None      # small view of the whole photo, for dropped images
    shape: tuple[int, int] | None = None


@dataclass
class Detected:
    """What a detection worker hands to the landmark step."""
    task: ImageTask
    gray: np.ndarray
    detections: list[Detection] = field(default_factory=list)


def _thumb(gray: np.ndarray) -> np.ndarray:
    h, w = gray.shape
    s = THUMB / max(h, w)
    return cv2.resize(gray, (max(1, round(w * s)), max(1, round(h * s))),
                      interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_NEAREST)


def detect_one(task: ImageTask, root: Path, detector: FaceDetector) -> Detected | Result:
    if task.skip_reason:
        return Result(task, DROPPED, task.skip_reason)
    try:
        gray = read_gray(root / task.path)
    except Unreadable as exc:
        return Result(task, UNREADABLE, str(exc))
    return Detected(task, gray, detector.detect(gray))


def finish_one(det: Detected, landmarker: Landmarker, cfg: AlignConfig) -> Result:
    """Landmarks on the candidates, the first (largest) one that fits is aligned; else fall back."""
    task, gray = det.task, det.gray
    candidates = det.detections[:MAX_CANDIDATES]
    fits = landmarker(gray, [d.box for d in candidates]) if candidates else []
    best = None
    for cand, (points, fit) in zip(candidates, fits):
        if fit >= cfg.min_fit:
            try:
                alignment = geometry.align(points, cfg.size, cfg.box_from)
            except ValueError:
                continue   # degenerate landmarks (coinciding eyes): not a usable fit
            face = geometry.stretch(geometry.warp(gray, alignment.matrix, cfg.size))
            return Result(task, ALIGNED, "", cand.kind, cand.box, fit, alignment.eyes, alignment.angle_deg,
                          face=face, shape=gray.shape)
        if best is None or fit > best[1][1]:
            best = (cand, (points, fit))
    if not candidates:
        reason = "no face detected"
        if min(gray.shape) < cfg.detector.min_size:
            reason += f" (image {gray.shape[1]}x{gray.shape[0]} is smaller than detector.min_size)"
        cand, fit = None, None
    else:
        cand, fit = best[0], best[1][1]
        reason = f"best landmark fit {fit:.3f} below align.min_fit {cfg.min_fit}"
    common = dict(detector=cand.kind if cand else "", box=cand.box if cand else None, fit=fit, shape=gray.shape)
    if task.split == "Train":
        # An unaligned face would teach the network the wrong geometry: never trained on.
        return Result(task, DROPPED, reason, thumb=_thumb(gray), **common)
    matrix = geometry.fallback_matrix(cand.box if cand else None, gray.shape, cfg.size)
    face = geometry.stretch(geometry.warp(gray, matrix, cfg.size))
    where = "crop around the detection box" if cand else "centred square crop"
    return Result(task, FALLBACK, f"{reason}; {where}", face=face, **common)


# --- worker processes -------------------------------------------------------------------

_worker: dict = {}


def _init_worker(root: str, cfg: AlignConfig, with_dlib: bool) -> None:
    cv2.setNumThreads(1)   # one process per core already; OpenCV's own threads would oversubscribe
    _worker["root"] = Path(root)
    _worker["cfg"] = cfg
    _worker["detector"] = FaceDetector(cfg.detector)
    _worker["landmarker"] = DlibLandmarker() if with_dlib else None


def _work(task: ImageTask) -> Detected | Result:
    det = detect_one(task, _worker["root"], _worker["detector"])
    if isinstance(det, Result) or _worker["landmarker"] is None:
        return det
    return finish_one(det, _worker["landmarker"], _worker["cfg"])


def worker_count(requested: int) -> int:
    return requested if requested > 0 else len(os.sched_getaffinity(0))


def _fan_faces(item: Detected | Result) -> tuple[np.ndarray, list] | None:
    """The image and candidate boxes FAN fits for one worker result (None: nothing to fit)."""
    return None if isinstance(item, Result) else (item.gray, [d.box for d in item.detections[:MAX_CANDIDATES]])


def align_all(tasks: Sequence[ImageTask], root: str | Path, cfg: AlignConfig,
              fan: FanLandmarker | None = None,
              progress: Callable[[int, int], None] | None = None) -> list[Result]:
    """Run every task; ``fan`` given: workers detect and FAN runs here on the faces of several
    images at once, else dlib runs in the workers."""
    n = worker_count(cfg.workers)
    results: list[Result] = []
    stream = _run(tasks, str(root), cfg, fan is None, n)
    fitted = fan.in_batches(stream, _fan_faces) if fan is not None else ((item, None) for item in stream)
    for i, (item, landmarker) in enumerate(fitted):
        results.append(item if isinstance(item, Result) else finish_one(item, landmarker, cfg))
        if progress:
            progress(i + 1, len(tasks))
    return results


def _run(tasks: Sequence[ImageTask], root: str, cfg: AlignConfig, with_dlib: bool, n: int) -> Iterator:
    if n <= 1 or len(tasks) <= 1:
        _init_worker(root, cfg, with_dlib)
        try:
            yield from map(_work, tasks)
        finally:
            _worker.clear()
        return
    # spawn: workers never inherit CUDA state or the threads of torch/OpenCV from this process.
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(min(n, len(tasks)), initializer=_init_worker, initargs=(root, cfg, with_dlib)) as pool:
        yield from pool.imap(_work, tasks, chunksize=max(1, min(16, len(tasks) // (4 * n))))


def summarize(results: Iterable[Result]) -> dict:
    """Counts per split and outcome, and detection/alignment rates over the readable images."""
    results = list(results)
    splits = [s for s in ("Train", "Val", "Test") if any(r.task.split == s for r in results)]
    counts, det_rate, align_rate = {}, {}, {}

    def rates(rs):
        readable = [r for r in rs if r.outcome != UNREADABLE and not r.task.skip_reason]
        if not readable:
            return None, None
        detected = sum(r.box is not None for r in readable)
        aligned = sum(r.outcome == ALIGNED for r in readable)
        return round(detected / len(readable), 6), round(aligned / len(readable), 6)

    for split in splits:
        rs = [r for r in results if r.task.split == split]
        counts[split] = {o: sum(r.outcome == o for r in rs) for o in OUTCOMES} | {"total": len(rs)}
        det_rate[split], align_rate[split] = rates(rs)
    counts["all"] = {o: sum(r.outcome == o for r in results) for o in OUTCOMES} | {"total": len(results)}
    det_rate["all"], align_rate["all"] = rates(results)
    return {"counts": counts, "detection_rate": det_rate, "alignment_rate": align_rate}
