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
from .decode import Unreadable, decode_gray
from .detection import ATTEMPTS, Detection, FaceDetector, Scene
from .landmarks import DlibLandmarker, FanLandmarker, Landmarker
from .photos import Photos

# Candidates tried per attempt, largest first: a large false positive (a poster, a pattern)
# must not hide the real face behind it, but a crowd must not cost a landmark fit per face.
MAX_CANDIDATES = 3
THUMB = 96   # side of the thumbnails kept for the report of failed images
WHOLE_PHOTO = "whole_photo"   # the attempt that fits landmarks to the whole photo, no detector
ATTEMPT_NAMES = (*ATTEMPTS, WHOLE_PHOTO)
IN_FLIGHT = 256   # photos per window handed to the worker pool (two windows at most in flight)

ALIGNED, FALLBACK, DROPPED, UNREADABLE = "aligned", "fallback", "dropped", "unreadable"
OUTCOMES = (ALIGNED, FALLBACK, DROPPED, UNREADABLE)


@dataclass(frozen=True)
class ImageTask:
    path: str            # relative to the dataset root, POSIX separators
    split: str           # Train | Val | Test
    label: int           # FER order; -1 when unlabeled
    # Set for a file that cannot be labelled (found outside the class folders): logged, not read.
    skip_reason: str = ""


@dataclass
class Result:
    task: ImageTask
    outcome: str
    reason: str = ""
    detector: str = ""                   # what found the face: Detection.name, or whole_photo
    box: tuple[float, float, float, float] | None = None
    fit: float | None = None
    eyes: np.ndarray | None = None       # (2, 2): subject's right eye, subject's left eye
    angle_deg: float | None = None
    face: np.ndarray | None = None       # (size, size) uint8 for aligned and fallback
    thumb: np.ndarray | None = None      # small view of the whole photo, for dropped images
    shape: tuple[int, int] | None = None
    attempt: str = ""                    # the attempt (ATTEMPT_NAMES) that gave ``box``
    landmarks: np.ndarray | None = None  # (68, 2) in the photo, for aligned faces


@dataclass
class Detected:
    """What a detection worker hands to the landmark step: the first attempt that found boxes."""
    task: ImageTask
    gray: np.ndarray
    detections: list[Detection] = field(default_factory=list)
    attempt: int = len(ATTEMPTS)         # index in ATTEMPTS of ``detections``; len(ATTEMPTS): none found


@dataclass
class _Rejected:
    candidate: Detection
    attempt: str
    fit: float
    why: str             # the geometry check's reason; "" when the fit itself was too low


def _thumb(gray: np.ndarray) -> np.ndarray:
    h, w = gray.shape
    s = THUMB / max(h, w)
    return cv2.resize(gray, (max(1, round(w * s)), max(1, round(h * s))),
                      interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_NEAREST)


def _first_found(detector: FaceDetector, scene: Scene, start: int,
                 padded_only: bool = False) -> tuple[int, list[Detection]]:
    """The first attempt from ``start`` on (only padded ones if asked) that finds any box, and its boxes."""
    for i in range(start, len(ATTEMPTS)):
        if padded_only and not ATTEMPTS[i].endswith("_padded"):
            continue
        found = detector.detect(scene, ATTEMPTS[i])
        if found:
            return i, found
    return len(ATTEMPTS), []


def _read_and_detect(task: ImageTask, photos: Photos, detector: FaceDetector) -> tuple[Detected | Result, Scene | None]:
    """The first attempt's finds, and the photo's working copies for the attempts after it."""
    if task.skip_reason:
        return Result(task, DROPPED, task.skip_reason), None
    try:
        gray = decode_gray(photos.read(task.path))
    except Unreadable as exc:
        return Result(task, UNREADABLE, str(exc)), None
    return detect_gray(task, gray, detector)


def detect_gray(task: ImageTask, gray: np.ndarray, detector: FaceDetector) -> tuple[Detected, Scene]:
    scene = detector.scene(gray)
    attempt, found = _first_found(detector, scene, 0)
    return Detected(task, gray, found, attempt), scene


def detect_one(task: ImageTask, root: str | Path | Photos, detector: FaceDetector) -> Detected | Result:
    return _read_and_detect(task, Photos.of(root), detector)[0]


def _shift(box, by: float):
    return (box[0] + by, box[1] + by, box[2], box[3])


def _fit(scene: Scene, candidates: list[Detection], attempt: str, landmarker: Landmarker, cfg: AlignConfig,
         task: ImageTask, rejected: list[_Rejected]) -> Result | None:
    """The first candidate whose landmark fit and geometry pass, aligned; None when none does.

    A padded find is fitted and cropped on the padded photo (its fill, not the crop's own
    border rule, supplies the pixels outside the photo); box and eyes are logged in the
    original photo's coordinates.
    """
    source, offset = (scene.full_padded, scene.pad_full) if candidates[0].padded else (scene.gray, 0)
    boxes = [_shift(c.box, offset) for c in candidates]
    for cand, box, (points, fit) in zip(candidates, boxes, landmarker(source, boxes)):
        result = _accept(scene, source, offset, cand, attempt, points, fit, cfg, task, rejected)
        if result is not None:
            return result
    return None


def _accept(scene: Scene, source: np.ndarray, offset: float, cand: Detection, attempt: str, points: np.ndarray,
            fit: float, cfg: AlignConfig, task: ImageTask, rejected: list[_Rejected]) -> Result | None:
    """The aligned face of one fitted candidate (``points`` in ``source``, the photo shifted by
    ``offset``), or None (logged in ``rejected``) when its fit or geometry fails."""
    box = _shift(cand.box, offset)
    why = geometry.implausible(points, box) if fit >= cfg.min_fit else ""
    if fit < cfg.min_fit or why:
        rejected.append(_Rejected(cand, attempt, fit, why))
        return None
    try:
        alignment = geometry.align(points, cfg.size, cfg.box_from)
    except ValueError:
        return None   # degenerate landmarks (coinciding eyes): not a usable fit
    face = geometry.stretch(geometry.warp(source, alignment.matrix, cfg.size))
    return Result(task, ALIGNED, "", cand.name, cand.box, fit, alignment.eyes - offset, alignment.angle_deg,
                  face=face, shape=scene.gray.shape, attempt=attempt, landmarks=points - offset)


def _whole_photo(scene: Scene, landmarker: Landmarker, cfg: AlignConfig, task: ImageTask,
                 box: tuple[float, float, float, float] | None = None) -> tuple[Result | None, np.ndarray]:
    """Landmarks fitted in ``box`` (default: the photo's frame): the aligned face when their fit
    and geometry pass (else None), and the points either way."""
    h, w = scene.gray.shape
    cand = Detection(box or (0.0, 0.0, float(w), float(h)), WHOLE_PHOTO)
    (points, fit), = landmarker(scene.gray, [cand.box])
    return _accept(scene, scene.gray, 0, cand, WHOLE_PHOTO, points, fit, cfg, task, []), points


def finish_one(det: Detected, landmarker: Landmarker, cfg: AlignConfig, detector: FaceDetector,
               scene: Scene | None = None) -> Result:
    """Attempts in order until a candidate's landmarks fit; else the whole photo; else fall back.

    A fit below ``align.confident_fit`` does not end the search: a part of a face (a mouth and
    nose, an eye) can pass the fit and the geometry check when the face it belongs to is too
    large for the frame. The attempts that look for such a face (the padded one and the whole
    photo) still run, and the best fit of all is taken, except that a find whose points all lie
    within the outline of another candidate's face is a part of that face and is not taken
    (``geometry.part_of``).

    The whole-photo fit needs ``align.whole_photo_min_fit``: no detector vouches for it. Where a
    find is weak, it also tests whether the photo is a close-up whose face holds the find: the
    photo's frame is not where a detector would box that face (a crop is cut tighter, off centre)
    and the landmark model, trained on detector boxes, may not lock on in it, so the landmarks are
    fitted again in the box a frontal detection would have around the eyes the frame's fit found.
    That face is a candidate only where a find is a part of it: it then needs just
    ``align.min_fit``, as the finds do, since the photo is accepted either way and the find shows
    a face-like pattern there; by its fit alone it could displace a real face (a refit also locks
    onto an eye and a cheek now and then, at fits above the whole photo's threshold).
    """
    task, gray = det.task, det.gray
    scene = scene or detector.scene(gray)
    rejected: list[_Rejected] = []
    weak: list[Result] = []
    attempt, found = det.attempt, det.detections
    while found:
        result = _fit(scene, found[:MAX_CANDIDATES], ATTEMPTS[attempt], landmarker, cfg, task, rejected)
        if result is not None:
            if result.fit >= cfg.confident_fit:
                return result
            weak.append(result)
        attempt, found = _first_found(detector, scene, attempt + 1, padded_only=bool(weak))
    if cfg.whole_photo_fit and min(gray.shape) >= cfg.detector.min_size:
        whole, points = _whole_photo(scene, landmarker, cfg, task)
        if weak:
            box = geometry.face_box(geometry.eye_centres(points))
            enclosing = _whole_photo(scene, landmarker, cfg, task, box)[0] if box[2] >= 1.0 else None
            if enclosing is not None and any(geometry.part_of(r.landmarks, enclosing.landmarks) for r in weak):
                weak.append(enclosing)
        if whole is not None and whole.fit >= cfg.whole_photo_min_fit:
            weak.append(whole)
    faces = [r for r in weak if not any(o is not r and geometry.part_of(r.landmarks, o.landmarks) for o in weak)]
    if faces:
        return max(faces, key=lambda r: r.fit)   # ties: the earlier attempt
    return _fall_back(task, gray, cfg, max(rejected, key=lambda r: r.fit, default=None))


def _fall_back(task: ImageTask, gray: np.ndarray, cfg: AlignConfig, best: _Rejected | None) -> Result:
    if best is None:
        reason = "no face detected"
        if min(gray.shape) < cfg.detector.min_size:
            reason += f" (image {gray.shape[1]}x{gray.shape[0]} is smaller than detector.min_size)"
    elif best.why:
        reason = f"best landmark fit {best.fit:.3f} is not a plausible face: {best.why}"
    else:
        reason = f"best landmark fit {best.fit:.3f} below align.min_fit {cfg.min_fit}"
    common = dict(detector=best.candidate.name if best else "", box=best.candidate.box if best else None,
                  fit=best.fit if best else None, shape=gray.shape, attempt=best.attempt if best else "")
    if task.split == "Train":
        # An unaligned face would teach the network the wrong geometry: never trained on.
        return Result(task, DROPPED, reason, thumb=_thumb(gray), **common)
    matrix = geometry.fallback_matrix(best.candidate.box if best else None, gray.shape, cfg.size)
    face = geometry.stretch(geometry.warp(gray, matrix, cfg.size))
    where = "crop around the detection box" if best else "centred square crop"
    return Result(task, FALLBACK, f"{reason}; {where}", face=face, **common)


# --- worker processes -------------------------------------------------------------------

_worker: dict = {}


def _init_worker(photos: Photos, cfg: AlignConfig, with_dlib: bool) -> None:
    cv2.setNumThreads(1)   # one process per core already; OpenCV's own threads would oversubscribe
    _worker["photos"] = photos
    _worker["cfg"] = cfg
    _worker["detector"] = FaceDetector(cfg.detector, cfg.pad)
    _worker["landmarker"] = DlibLandmarker() if with_dlib else None


def _work(task: ImageTask) -> Detected | Result:
    det, scene = _read_and_detect(task, _worker["photos"], _worker["detector"])
    if isinstance(det, Result) or _worker["landmarker"] is None:
        return det
    return finish_one(det, _worker["landmarker"], _worker["cfg"], _worker["detector"], scene)


def worker_count(requested: int) -> int:
    return requested if requested > 0 else len(os.sched_getaffinity(0))


def _fan_faces(item: Detected | Result) -> tuple[np.ndarray, list] | None:
    """The image and candidate boxes FAN fits for one worker result (None: nothing to gather).

    Padded finds are fitted on the padded copy that ``finish_one`` makes, so they are not gathered.
    """
    if isinstance(item, Result) or not item.detections or item.detections[0].padded:
        return None
    return item.gray, [d.box for d in item.detections[:MAX_CANDIDATES]]


def align_stream(tasks: Sequence[ImageTask], root: str | Path | Photos, cfg: AlignConfig,
                 fan: FanLandmarker | None = None) -> Iterator[Result]:
    """Each task's result, in task order, as it is ready; ``fan`` given: workers detect and FAN
    runs here on the faces of several images at once, else dlib runs in the workers. ``root``
    is the tree's folder, or its Photos where splits are placed as archives.

    With FAN, the workers hand over the first attempt that found boxes; the later attempts,
    needed only when FAN rejects all of them, run here with this process's own cascades.
    Closing the generator stops the workers.
    """
    n = worker_count(cfg.workers)
    detector = FaceDetector(cfg.detector, cfg.pad) if fan is not None else None
    stream = _run(tasks, Photos.of(root), cfg, fan is None, n)
    fitted = fan.in_batches(stream, _fan_faces) if fan is not None else ((item, None) for item in stream)
    for item, landmarker in fitted:
        yield item if isinstance(item, Result) else finish_one(item, landmarker or fan, cfg, detector)


def align_all(tasks: Sequence[ImageTask], root: str | Path | Photos, cfg: AlignConfig,
              fan: FanLandmarker | None = None,
              progress: Callable[[int, int], None] | None = None) -> list[Result]:
    """Every task's result (see :func:`align_stream`), in task order."""
    results: list[Result] = []
    for i, result in enumerate(align_stream(tasks, root, cfg, fan)):
        results.append(result)
        if progress:
            progress(i + 1, len(tasks))
    return results


def _run(tasks: Sequence[ImageTask], photos: Photos, cfg: AlignConfig, with_dlib: bool, n: int) -> Iterator:
    if n <= 1 or len(tasks) <= 1:
        threads = cv2.getNumThreads()
        _init_worker(photos, cfg, with_dlib)
        try:
            yield from map(_work, tasks)
        finally:
            _worker.clear()
            photos.close()
            cv2.setNumThreads(threads)
        return
    # spawn: workers never inherit CUDA state or the threads of torch/OpenCV from this process.
    ctx = multiprocessing.get_context("spawn")
    chunk = max(1, min(16, len(tasks) // (4 * n)))
    with ctx.Pool(min(n, len(tasks)), initializer=_init_worker, initargs=(photos, cfg, with_dlib)) as pool:
        # A window at a time, the next one already submitted: the workers never run more than
        # two windows ahead of this process (a pool's results would otherwise pile up here,
        # photos and all, whenever the landmark step is the slower one).
        ahead = None
        for start in range(0, len(tasks), IN_FLIGHT):
            window = pool.imap(_work, tasks[start:start + IN_FLIGHT], chunksize=chunk)
            if ahead is not None:
                yield from ahead
            ahead = window
        yield from ahead


def _readable(r: Result) -> bool:
    return r.outcome != UNREADABLE and not r.task.skip_reason


class Tally:
    """Counts per split and outcome, detections, and alignments per attempt, added block by
    block, so the summary of any number of photos costs a few counters."""

    def __init__(self, results: Iterable[Result] = ()):
        self.counts: dict[str, dict[str, int]] = {}
        self.readable: dict[str, int] = {}
        self.detected: dict[str, int] = {}
        self.by_attempt = dict.fromkeys(ATTEMPT_NAMES, 0)
        self.add(results)

    def add(self, results: Iterable[Result]) -> None:
        for r in results:
            for key in (r.task.split, "all"):
                c = self.counts.setdefault(key, dict.fromkeys((*OUTCOMES, "total"), 0))
                c[r.outcome] += 1
                c["total"] += 1
                if _readable(r):
                    self.readable[key] = self.readable.get(key, 0) + 1
                    self.detected[key] = self.detected.get(key, 0) + (r.box is not None)
            if _readable(r) and r.outcome == ALIGNED:
                self.by_attempt[r.attempt] += 1

    def attempt_rates(self) -> dict[str, float | None]:
        """Share of the readable photos aligned by each attempt (they sum to the alignment rate)."""
        n = self.readable.get("all", 0)
        return {a: round(k / n, 6) if n else None for a, k in self.by_attempt.items()}

    def summary(self) -> dict:
        """Counts per split and outcome, and detection/alignment rates over the readable images."""
        keys = [s for s in ("Train", "Val", "Test") if s in self.counts] + ["all"]
        counts, det_rate, align_rate = {}, {}, {}
        for key in keys:
            c = self.counts.get(key, dict.fromkeys((*OUTCOMES, "total"), 0))
            counts[key] = c
            n = self.readable.get(key, 0)
            det_rate[key] = round(self.detected[key] / n, 6) if n else None
            align_rate[key] = round(c[ALIGNED] / n, 6) if n else None
        return {"counts": counts, "detection_rate": det_rate, "alignment_rate": align_rate}


def attempt_rates(results: Iterable[Result]) -> dict[str, float | None]:
    """Share of the readable photos aligned by each attempt (they sum to the alignment rate)."""
    return Tally(results).attempt_rates()


def summarize(results: Iterable[Result]) -> dict:
    """Counts per split and outcome, and detection/alignment rates over the readable images."""
    return Tally(results).summary()
