"""align_target's aligner: the face search (faces/search.py) over every photo, and the counts
of its outcomes.

The stage keeps one face per photo. A photo without an accepted face is dropped from Train,
since an unaligned face would teach the network the wrong geometry, and gets the fallback crop
in Val and Test, so that every evaluation photo gets a prediction.

Each photo is handled independently and the results come back in the order of the tasks
(sorted by path by the caller), so the output does not depend on the number of workers.
Detection and dlib landmarks run in worker processes (faces/pool.py) that load the cascades
and the shape predictor once. With FAN, workers only read and detect; the landmark network
runs in the main process (on `align.device`), each forward pass holding the candidate boxes of
several images.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence

import cv2
import numpy as np

from .align_params import AlignConfig
from .decode import Unreadable, decode_gray
from .detection import FaceDetector, Scene
from .landmarks import DlibLandmarker, FanLandmarker, Landmarker
from .photos import Photos
from .pool import WorkerPool, worker_count
from .search import (ALIGNED, ATTEMPT_NAMES, DROPPED, MAX_CANDIDATES, OUTCOMES, UNREADABLE, Detected, ImageTask,
                     Result, detect_gray, finish_one)

THUMB = 96   # side of the thumbnails kept for the report of failed images
IN_FLIGHT = 256   # photos per window handed to the worker pool (two windows at most in flight)


def _thumb(gray: np.ndarray) -> np.ndarray:
    h, w = gray.shape
    s = THUMB / max(h, w)
    return cv2.resize(gray, (max(1, round(w * s)), max(1, round(h * s))),
                      interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_NEAREST)


def _align_one(det: Detected, landmarker: Landmarker, cfg: AlignConfig, detector: FaceDetector,
               scene: Scene | None = None) -> Result:
    """A photo's face, else its fallback crop (Val, Test) or nothing (Train: then a thumbnail of
    the photo, for the failure sheet)."""
    result = finish_one(det, landmarker, cfg, detector, scene, fallback=det.task.split != "Train")
    if result.outcome == DROPPED:
        result.thumb = _thumb(det.gray)
    return result


class _PhotoWorker:
    """A worker's part of each photo: read and detect, and with dlib the rest of the search."""

    def __init__(self, photos: Photos, cfg: AlignConfig, with_dlib: bool):
        self.photos, self.cfg = photos, cfg
        self.detector = FaceDetector(cfg.detector, cfg.pad)
        self.landmarker = DlibLandmarker() if with_dlib else None

    def __call__(self, task: ImageTask) -> Detected | Result:
        if task.skip_reason:
            return Result(task, DROPPED, task.skip_reason)
        try:
            gray = decode_gray(self.photos.read(task.path))
        except Unreadable as exc:
            return Result(task, UNREADABLE, str(exc))
        det, scene = detect_gray(task, gray, self.detector)
        if self.landmarker is None:
            return det
        return _align_one(det, self.landmarker, self.cfg, self.detector, scene)


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
        yield item if isinstance(item, Result) else _align_one(item, landmarker or fan, cfg, detector)


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
    chunk = max(1, min(16, len(tasks) // (4 * n)))
    try:
        with WorkerPool(min(n, len(tasks)), _PhotoWorker, (photos, cfg, with_dlib)) as pool:
            # A window at a time, the next one already submitted: the workers never run more than
            # two windows ahead of this process (a pool's results would otherwise pile up here,
            # photos and all, whenever the landmark step is the slower one).
            ahead = None
            for start in range(0, len(tasks), IN_FLIGHT):
                window = pool.imap(tasks[start:start + IN_FLIGHT], chunk)
                if ahead is not None:
                    yield from ahead
                ahead = window
            if ahead is not None:
                yield from ahead
    finally:
        photos.close()   # the archives this process opened (one worker: the worker is here)


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
