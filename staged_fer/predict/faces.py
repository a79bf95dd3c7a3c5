"""Every face of one photo or frame, prepared exactly as `align_target` prepares a photo.

The steps are face fitting's own (staged_fer/faces/search.py): the photo is decoded by
``read_gray``, the faces are found by ``detect_gray`` and each is landmarked, tested (fit and
geometry) and aligned by ``fit_candidates``, the test the stage applies to each candidate.
Only the loop differs: the stage keeps one face per photo (its subject), predict keeps each
face found. When no detection passes, the stage's whole search (``finish_one``: the later
attempts, the whole photo) runs without the fallback crop: a face that fails is listed as
rejected, with the reason, and is not classified.

With dlib landmarks the photos are spread over worker processes as the stage's are
(faces/pool.py); with FAN everything runs in this process, where the network sits on the
chosen device.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

from ..faces.align_params import AlignConfig
from ..faces.decode import Unreadable, read_gray, to_gray8
from ..faces.detection import ATTEMPTS, FaceDetector
from ..faces.landmarks import DlibLandmarker, Landmarker
from ..faces.pool import WorkerPool, worker_count
from ..faces.search import ALIGNED, ImageTask, Result, detect_gray, finish_one, fit_candidates
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
        task = ImageTask(job.name, "", UNLABELED)
        det, scene = detect_gray(task, gray, self.detector)
        # Every candidate of that attempt, each in a landmarker call of its own: a face's
        # result does not depend on the other faces in the photo.
        for cand in det.detections:
            out.faces += fit_candidates(scene, [cand], ATTEMPTS[det.attempt], self.landmarker, self.cfg, task)
        if not any(is_aligned(f) for f in out.faces):
            # The stage's whole search (padded copy, whole photo) for a face no detection gave.
            result = finish_one(det, self.landmarker, self.cfg, self.detector, scene, fallback=False)
            if is_aligned(result):
                out.faces.append(result)
            elif not out.faces:
                out.no_face = result.reason
        return out


def is_aligned(result: Result) -> bool:
    return result.outcome == ALIGNED


def _dlib_finder(cfg: AlignConfig) -> FaceFinder:
    """A worker's FaceFinder, with dlib's model loaded once per worker."""
    return FaceFinder(cfg, DlibLandmarker())


class Analyser:
    """Analyses jobs in order: with dlib in ``workers`` worker processes (faces/pool.py), with
    FAN in this process, beside the network, OpenCV keeping its own threads for detection."""

    def __init__(self, cfg: AlignConfig, fan: Landmarker | None = None):
        self.n = 1 if fan is not None else worker_count(cfg.workers)
        self.local = FaceFinder(cfg, fan) if fan is not None else None
        self.pool = WorkerPool(self.n, _dlib_finder, (cfg,)) if fan is None else None

    def __enter__(self) -> "Analyser":
        if self.pool is not None:
            self.pool.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        if self.pool is not None:
            self.pool.__exit__(*exc)

    def submit(self, jobs: Sequence[Job]) -> Callable[[], list[Analysed]]:
        """Start analysing ``jobs``; the returned call waits for their results, in order.

        With worker processes the work proceeds while the caller classifies the previous
        chunk; in this process it runs when the results are asked for.
        """
        if self.pool is None:
            return lambda: [self.local(job) for job in jobs]
        results = self.pool.imap(jobs, chunksize=max(1, len(jobs) // (4 * self.n)))
        return lambda: list(results)
