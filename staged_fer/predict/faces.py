"""Every face of one photo or frame, prepared exactly as `align_emotiw` prepares a photo.

The steps are the face pipeline's own (staged_fer/faces/pipeline.py): the photo is decoded by
``read_gray``, the faces are found by ``FaceDetector.detect`` and each is landmarked, tested
and aligned by ``finish_one``, the function that decides for the training photos. Only the
loop differs: the stage keeps one face per photo (its subject), predict keeps each face found.
A face is handed to ``finish_one`` as a photo of one candidate under the training rule, where
a face that fails the fit test is dropped, never replaced by the fallback crop: predict lists
it as rejected, with the pipeline's reason, and does not classify it.

With dlib landmarks the photos are spread over worker processes like the stage's; with FAN
everything runs in this process, where the network sits on the chosen device.
"""
from __future__ import annotations

import multiprocessing
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Sequence

import cv2
import numpy as np

from ..faces.config import AlignConfig
from ..faces.decode import Unreadable, read_gray, to_gray8
from ..faces.detection import FaceDetector
from ..faces.landmarks import DlibLandmarker, Landmarker
from ..faces.pipeline import ALIGNED, Detected, ImageTask, Result, finish_one, worker_count
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
        self.detector = FaceDetector(cfg.detector)
        self.landmarker = landmarker

    def __call__(self, job: Job) -> Analysed:
        out = Analysed(job.key)
        try:
            gray = read_gray(job.path) if job.bgr is None else to_gray8(job.bgr)
        except Unreadable as exc:
            out.unreadable = str(exc)
            return out
        out.shape = gray.shape
        det = Detected(ImageTask(job.name, "Train", UNLABELED), gray, self.detector.detect(gray))
        if not det.detections:
            out.no_face = finish_one(det, self.landmarker, self.cfg).reason
            return out
        for cand in det.detections:
            result = finish_one(replace(det, detections=[cand]), self.landmarker, self.cfg)
            result.thumb = None          # the stage's failure sheet needs it; predict does not
            out.faces.append(result)
        return out


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
