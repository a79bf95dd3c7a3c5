"""The face of one photo, found, landmarked, tested and aligned: face fitting's public API.

align_target (through faces/pipeline.py) keeps one face per photo, predict
(staged_fer/predict/faces.py) every face the first detection attempt finds; both take their
faces from these three steps, so a face is prepared the same way wherever it is used:

``detect_gray``     the first detection attempt (detection.py) that finds any box
``fit_candidates``  landmarks fitted to candidate boxes, each tested (fit, geometry) and
                    aligned: an ALIGNED result, or a DROPPED one whose reason says why
``finish_one``      the whole search from there (the later attempts, the whole photo) for the
                    photo's best face; where none passes, the caller's ``fallback`` decides
                    between a plain crop (FALLBACK) and no face (DROPPED)
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Iterator

import numpy as np

from . import geometry
from .align_params import AlignConfig
from .detection import ATTEMPTS, Detection, FaceDetector, Scene
from .landmarks import Landmarker

# Candidates tried per attempt, largest first: a large false positive (a poster, a pattern)
# must not hide the real face behind it, but a crowd must not cost a landmark fit per face.
MAX_CANDIDATES = 3
WHOLE_PHOTO = "whole_photo"   # the attempt that fits landmarks to the whole photo, no detector
ATTEMPT_NAMES = (*ATTEMPTS, WHOLE_PHOTO)

ALIGNED, FALLBACK, DROPPED, UNREADABLE = "aligned", "fallback", "dropped", "unreadable"
OUTCOMES = (ALIGNED, FALLBACK, DROPPED, UNREADABLE)


@dataclass(frozen=True)
class ImageTask:
    path: str            # relative to the dataset root, POSIX separators
    split: str           # Train | Val | Test; "" for a photo outside the dataset (predict's)
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
    thumb: np.ndarray | None = None      # small view of the whole photo, for align's failure sheet
    shape: tuple[int, int] | None = None
    attempt: str = ""                    # the attempt (ATTEMPT_NAMES) that gave ``box``
    landmarks: np.ndarray | None = None  # (68, 2) in the photo, for aligned faces


@dataclass
class Detected:
    """A photo and the first attempt that found boxes in it: where the landmark step starts."""
    task: ImageTask
    gray: np.ndarray
    detections: list[Detection] = field(default_factory=list)
    attempt: int = len(ATTEMPTS)         # index in ATTEMPTS of ``detections``; len(ATTEMPTS): none found


def detect_gray(task: ImageTask, gray: np.ndarray, detector: FaceDetector) -> tuple[Detected, Scene]:
    """The first attempt's finds, and the photo's working copies for the attempts after it."""
    scene = detector.scene(gray)
    attempt, found = _first_found(detector, scene, 0)
    return Detected(task, gray, found, attempt), scene


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


def _shift(box, by: float):
    return (box[0] + by, box[1] + by, box[2], box[3])


def fit_candidates(scene: Scene, candidates: list[Detection], attempt: str, landmarker: Landmarker,
                   cfg: AlignConfig, task: ImageTask) -> Iterator[Result]:
    """Each candidate of one attempt, in order: aligned, or dropped with the reason. The landmarks
    of all are fitted in one landmarker call; each test and alignment runs when its result is
    asked for, so a caller that stops at the first aligned face pays for no other crop.

    A padded find is fitted and cropped on the padded photo (its fill, not the crop's own
    border rule, supplies the pixels outside the photo); box and eyes are logged in the
    original photo's coordinates.
    """
    source, offset = (scene.full_padded, scene.pad_full) if candidates[0].padded else (scene.gray, 0)
    boxes = [_shift(c.box, offset) for c in candidates]
    for cand, box, (points, fit) in zip(candidates, boxes, landmarker(source, boxes)):
        yield _tested(scene, source, offset, cand, box, attempt, points, fit, cfg, task)


def _tested(scene: Scene, source: np.ndarray, offset: float, cand: Detection, box, attempt: str,
            points: np.ndarray, fit: float, cfg: AlignConfig, task: ImageTask) -> Result:
    """One fitted candidate (``points`` and ``box`` in ``source``, the photo shifted by ``offset``)
    aligned, or dropped with the reason: the one wording of a rejection, which ``finish_one``
    also gives a photo's best rejected fit."""
    if fit < cfg.min_fit:
        reason = f"landmark fit {fit:.3f} below align.min_fit {cfg.min_fit}"
    elif why := geometry.implausible(points, box):
        reason = f"landmark fit {fit:.3f} is not a plausible face: {why}"
    else:
        try:
            alignment = geometry.align(points, cfg.size, cfg.box_from)
        except ValueError:
            # Coinciding eyes: no usable fit, and none to rank against the photo's other fits.
            reason, fit = "degenerate landmarks (coinciding eyes)", None
        else:
            face = geometry.stretch(geometry.warp(source, alignment.matrix, cfg.size))
            return Result(task, ALIGNED, "", cand.name, cand.box, fit, alignment.eyes - offset, alignment.angle_deg,
                          face=face, shape=scene.gray.shape, attempt=attempt, landmarks=points - offset)
    return Result(task, DROPPED, reason, cand.name, cand.box, fit, shape=scene.gray.shape, attempt=attempt)


def _first_aligned(results: Iterator[Result], rejected: list[Result]) -> Result | None:
    """The first aligned result; the rejected ones before it are added to ``rejected``."""
    for result in results:
        if result.outcome == ALIGNED:
            return result
        rejected.append(result)
    return None


def _whole_photo(scene: Scene, landmarker: Landmarker, cfg: AlignConfig, task: ImageTask,
                 box: tuple[float, float, float, float] | None = None) -> tuple[Result | None, np.ndarray]:
    """Landmarks fitted in ``box`` (default: the photo's frame): the aligned face when their fit
    and geometry pass (else None), and the points either way."""
    h, w = scene.gray.shape
    cand = Detection(box or (0.0, 0.0, float(w), float(h)), WHOLE_PHOTO)
    (points, fit), = landmarker(scene.gray, [cand.box])
    result = _tested(scene, scene.gray, 0, cand, cand.box, WHOLE_PHOTO, points, fit, cfg, task)
    return (result if result.outcome == ALIGNED else None), points


def finish_one(det: Detected, landmarker: Landmarker, cfg: AlignConfig, detector: FaceDetector,
               scene: Scene | None = None, *, fallback: bool) -> Result:
    """Attempts in order until a candidate's landmarks fit; else the whole photo; else no face,
    or with ``fallback`` a crop of the photo without landmarks (around the best rejected
    candidate's box, else a centred square).

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
    rejected: list[Result] = []
    weak: list[Result] = []
    attempt, found = det.attempt, det.detections
    while found:
        result = _first_aligned(fit_candidates(scene, found[:MAX_CANDIDATES], ATTEMPTS[attempt], landmarker, cfg,
                                               task), rejected)
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
    return _no_face(task, gray, cfg, rejected, fallback)


def _no_face(task: ImageTask, gray: np.ndarray, cfg: AlignConfig, rejected: list[Result], fallback: bool) -> Result:
    """The photo without an accepted face: dropped, or with ``fallback`` cropped without landmarks;
    the reason names the best rejected fit, as its candidate's own result words it."""
    best = max((r for r in rejected if r.fit is not None), key=lambda r: r.fit, default=None)
    if best is not None:
        result = replace(best, reason=f"best {best.reason}")
    else:
        reason = "no face detected"
        if min(gray.shape) < cfg.detector.min_size:
            reason += f" (image {gray.shape[1]}x{gray.shape[0]} is smaller than detector.min_size)"
        result = Result(task, DROPPED, reason, shape=gray.shape)
    if not fallback:
        return result
    matrix = geometry.fallback_matrix(result.box, gray.shape, cfg.size)
    face = geometry.stretch(geometry.warp(gray, matrix, cfg.size))
    where = "crop around the detection box" if best is not None else "centred square crop"
    return replace(result, outcome=FALLBACK, reason=f"{result.reason}; {where}", face=face)
