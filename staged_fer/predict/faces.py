"""Every face of one photo or frame, prepared exactly as `align_emotiw` prepares a photo.

The steps are the face pipeline's own (staged_fer/faces/pipeline.py): the photo is decoded by
``read_gray``, the faces are found by ``detect_gray`` and each is landmarked, tested (fit and
geometry) and aligned by ``_fit``, the test the stage applies to each candidate. Only the loop
differs: the stage keeps one face per photo (its subject), predict keeps each face found. When
no detection passes, the stage's whole search (``finish_one``: the padded copy, the whole
photo) runs under the training rule, where a face that fails is dropped, never replaced by the
fallback crop: predict lists it as rejected, with the reason, and does not classify it.

With dlib landmarks the photos are spread over worker processes like the stage's; with FAN
everything runs in this process, where the network sits on the chosen device.
"""
from __future__ import annotations

import multiprocessing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import cv2
import numpy as np

from ..faces.config import AlignConfig
from ..faces.decode import Unreadable, read_gray, to_gray8
from ..faces.detection import FaceDetector
from ..faces.landmarks import DlibLandmarker, Landmarker
from ..faces import pipeline as fp
from ..faces.pipeline import ALIGNED, DROPPED, ImageTask, Result, worker_count
from ..labels import UNLABELED

ALIGNED_FACE, REJECTED_FACE = "aligned", "rejected"


@dataclass(frozen=True)
class Job:
    """One photo (``path``) or one video frame (``bgr``) to analyse."""
    key: int                       # position in the run, to match results with jobs
    name: str
    path: str | None = None
    bgr: np.ndarray | None = None


@dataclass
class Analysed:
    key: int
    shape: tuple[int, int] | None = None       # (h, w) of the photo
    unreadable: str = ""                       # the reason, when the photo could not be decoded
    no_face: str = ""                          # the reason, when no candidate was detected
    faces: list[Result] = field(default_factory=list)   # ALIGNED or DROPPED, largest first


class FaceFinder:
    def __init__(self, cfg: AlignConfig, landmarker: Landmarker):
        self.cfg = cfg
        self.detector = FaceDetector(cfg.detector, cfg.pad)
        self.landmarker = landmarker

    def __call__(self, job: Job) -> Analysed:
        out = Analysed(job.key)
        try:
            gray = read_gray(job.path) if job.bgr is None else to_gray8(job.bgr)
        except Unreadable as exc:
            out.unreadable = str(exc)
            return out
        out.shape = gray.shape
        task = ImageTask(job.name, "Train", UNLABELED)
        det, scene = fp.detect_gray(task, gray, self.detector)
        if det.detections:
            attempt = fp.ATTEMPTS[det.attempt]
            for cand in det.detections:
                rejected: list = []
                result = fp._fit(scene, [cand], attempt, self.landmarker, self.cfg, task, rejected)
                out.faces.append(result if result is not None else _rejected(task, cand, attempt, rejected,
                                                                             self.cfg, gray.shape))
        if not any(is_aligned(f) for f in out.faces):
            # The stage's whole search (padded copy, whole photo) for a face no detection gave.
            result = fp.finish_one(det, self.landmarker, self.cfg, self.detector, scene)
            result.thumb = None          # the stage's failure sheet needs it; predict does not
            if is_aligned(result):
                out.faces.append(result)
            elif not out.faces:
                out.no_face = result.reason
        return out


def _rejected(task: ImageTask, cand, attempt: str, rejected: list, cfg: AlignConfig, shape) -> Result:
    """A detection whose landmarks fail the stage's tests, with the reason the stage would log."""
    rej = rejected[0] if rejected else None
    if rej is None:
        reason = "degenerate landmarks (coinciding eyes)"
    elif rej.why:
        reason = f"landmark fit {rej.fit:.3f} is not a plausible face: {rej.why}"
    else:
        reason = f"landmark fit {rej.fit:.3f} below align.min_fit {cfg.min_fit}"
    return Result(task, DROPPED, reason, cand.name, cand.box, rej.fit if rej else None, shape=shape, attempt=attempt)


def is_aligned(result: Result) -> bool:
    return result.outcome == ALIGNED


# --- worker processes -------------------------------------------------------------------

_finder: list[FaceFinder] = []


def _init_worker(cfg: AlignConfig) -> None:
    cv2.setNumThreads(1)   # one process per core already
    _finder[:] = [FaceFinder(cfg, DlibLandmarker())]


def _work(job: Job) -> Analysed:
    return _finder[0](job)


class Analyser:
    """Analyses jobs in order, in ``workers`` processes (dlib) or in this process (FAN, or 1 worker)."""

    def __init__(self, cfg: AlignConfig, fan: Landmarker | None = None):
        self.cfg = cfg
        self.n = 1 if fan is not None else worker_count(cfg.workers)
        self.local = FaceFinder(cfg, fan) if fan is not None else None
        self.pool = None

    def __enter__(self) -> "Analyser":
        if self.local is None and self.n <= 1:
            self.local = FaceFinder(self.cfg, DlibLandmarker())
        elif self.local is None:
            # spawn: workers never inherit CUDA state or the threads of torch/OpenCV from this process.
            ctx = multiprocessing.get_context("spawn")
            self.pool = ctx.Pool(self.n, initializer=_init_worker, initargs=(self.cfg,))
        return self

    def __exit__(self, *exc) -> None:
        if self.pool is not None:
            self.pool.terminate() if exc[0] is not None else self.pool.close()
            self.pool.join()

    def submit(self, jobs: Sequence[Job]) -> Callable[[], list[Analysed]]:
        """Start analysing ``jobs``; the returned call waits for their results, in order.

        With worker processes the work proceeds while the caller classifies the previous
        chunk; in this process it runs when the results are asked for.
        """
        if self.pool is None:
            return lambda: [self.local(job) for job in jobs]
        pending = self.pool.map_async(_work, jobs, chunksize=max(1, len(jobs) // (4 * self.n)))
        return pending.get
