"""The predict loop: jobs in chunks, faces found in workers, one batched inference per chunk.

Jobs (photos and sampled video frames) go through in chunks of a bounded size, so a long
video is never decoded ahead into memory; the aligned faces of a chunk are classified in
batches, then the chunk's rows and annotations are written in input order. Every input gives
at least one row: a face (classified or rejected), a photo or frame without a face, or a file
that could not be read, with the reason.
"""
from __future__ import annotations

import csv
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np

from ..io import atomic_path
from ..labels import EMOTIONS
from ..models.trained import TrainedModel
from .annotate import Annotations, draw, label_of, read_colour
from .faces import ALIGNED_FACE, REJECTED_FACE, Analysed, Analyser, Job, is_aligned
from .sources import Source, VideoUnreadable, sample_frames, video_frame_count

COLUMNS = ("source", "frame", "time_s", "face", "box_x", "box_y", "box_w", "box_h",
           *(f"p_{e}" for e in EMOTIONS), "predicted", "outcome", "fit", "detector", "reason")
# Outcomes of a row: a face is aligned (and classified) or rejected; a photo or frame may have
# no face; a file may be unreadable (not an image or a video, empty, truncated).
NO_FACE, UNREADABLE = "no_face", "unreadable"
OUTCOMES = (ALIGNED_FACE, REJECTED_FACE, NO_FACE, UNREADABLE)


@dataclass
class Counts:
    files: int = 0
    frames: int = 0
    faces: int = 0
    rejected: int = 0
    no_face: int = 0
    unreadable: int = 0
    seconds: float = 0.0

    def line(self) -> str:
        rate = self.faces / self.seconds if self.seconds > 0 else 0.0
        return (f"{self.files} files ({self.frames} video frames): {self.faces} faces classified, "
                f"{self.rejected} rejected, {self.no_face} photos/frames without a face, "
                f"{self.unreadable} unreadable; {self.seconds:.1f} s, {rate:.1f} faces/s")


@dataclass
class _Pending:
    job: Job
    source: Source
    frame: int | None = None
    time_s: float | None = None
    last_of_source: bool = True
    unreadable: str = ""        # a source that failed before any job (an undecodable video)
    result: Analysed | None = None
    proba: list = field(default_factory=list)


def _f(v: float | None, digits: int) -> str:
    return "" if v is None else f"{v:.{digits}f}"


def _jobs(sources: Sequence[Source], fps: float) -> Iterator[_Pending]:
    key = 0
    for src in sources:
        if src.kind != "video":
            yield _Pending(Job(key, src.name, path=str(src.path)), src)
            key += 1
            continue
        frames = sample_frames(src.path, fps)
        try:
            frame = next(frames)
            while frame is not None:
                following = next(frames, None)
                yield _Pending(Job(key, src.name, bgr=frame.bgr), src, frame.index, frame.time_s,
                               last_of_source=following is None)
                key += 1
                frame = following
        except VideoUnreadable as exc:
            yield _Pending(Job(key, src.name), src, unreadable=str(exc))
            key += 1


# Decoded video frames a chunk may hold (a 1080p frame is 6 MB).
CHUNK_FRAME_BYTES = 192 * 2**20


def _chunks(items: Iterator[_Pending], size: int) -> Iterator[list[_Pending]]:
    chunk: list[_Pending] = []
    held = 0
    for item in items:
        chunk.append(item)
        held += item.job.bgr.nbytes if item.job.bgr is not None else 0
        if len(chunk) == size or held >= CHUNK_FRAME_BYTES:
            yield chunk
            chunk, held = [], 0
    if chunk:
        yield chunk


def _rows(p: _Pending) -> Iterator[list[str]]:
    where = [p.source.name, "" if p.frame is None else str(p.frame), _f(p.time_s, 3)]
    blank_face = [""] * (5 + len(EMOTIONS) + 1)
    r = p.result
    if p.unreadable or (r is not None and r.unreadable):
        reason = p.unreadable or r.unreadable
        if p.source.kind == "other":
            reason = f"neither an image nor a video ({reason})"
        yield [*where, *blank_face, UNREADABLE, "", "", reason]
        return
    if not r.faces:
        yield [*where, *blank_face, NO_FACE, "", "", r.no_face]
        return
    probas = iter(p.proba)
    for i, face in enumerate(r.faces):
        box = [_f(v, 1) for v in face.box]
        if is_aligned(face):
            proba = next(probas)
            yield [*where, str(i), *box, *(f"{v:.6f}" for v in proba), EMOTIONS[int(np.argmax(proba))],
                   ALIGNED_FACE, _f(face.fit, 4), face.detector, ""]
        else:
            yield [*where, str(i), *box, *[""] * len(EMOTIONS), "", REJECTED_FACE, _f(face.fit, 4),
                   face.detector, face.reason]


def _annotate(p: _Pending, out: Annotations) -> None:
    r = p.result
    if p.source.kind == "video":
        if p.job.bgr is not None and r is not None and not r.unreadable:
            out.frame(p.source.name, draw(p.job.bgr, _drawn(p)))
        if p.last_of_source:
            out.end_video(p.source.name)
        return
    if r is None or r.unreadable:
        return
    bgr = read_colour(p.source.path)
    if bgr is not None and bgr.shape[:2] == r.shape:
        out.image(p.source.name, draw(bgr, _drawn(p)))


def _drawn(p: _Pending) -> list:
    probas = iter(p.proba)
    return [(f.box, label_of(next(probas) if is_aligned(f) else None, f.fit), is_aligned(f))
            for f in p.result.faces]


def predict(sources: Sequence[Source], model: TrainedModel, analyser: Analyser, csv_path: str | Path, *,
            fps: float, batch_size: int, annotations: Annotations | None = None,
            progress: bool = True) -> Counts:
    """Run every source through faces and model; write the CSV (and annotations, not committed)."""
    from tqdm import tqdm

    counts = Counts(files=len(sources))
    start = time.perf_counter()
    chunk_size = max(batch_size, 4 * analyser.n)
    bar = tqdm(total=len(sources), unit="file", disable=not progress, file=sys.stderr, dynamic_ncols=True,
               postfix={"faces/s": 0.0})
    total_frames = sum(video_frame_count(s.path) for s in sources if s.kind == "video")
    if total_frames:
        bar.write(f"{sum(s.kind == 'video' for s in sources)} video(s), {total_frames} frames, sampled at {fps:g}/s",
                  file=sys.stderr)
    with atomic_path(csv_path) as tmp, open(tmp, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(COLUMNS)

        def finish(chunk: list[_Pending], results: Callable[[], list[Analysed]]) -> None:
            readable = [p for p in chunk if not p.unreadable]
            for p, res in zip(readable, results()):
                p.result = res
            faces = [f.face for p in readable for f in p.result.faces if is_aligned(f)]
            proba = model.predict_proba(np.stack(faces), batch_size) if faces else np.empty((0, len(EMOTIONS)))
            taken = 0
            for p in readable:
                n = sum(is_aligned(f) for f in p.result.faces)
                p.proba, taken = list(proba[taken:taken + n]), taken + n
            for p in chunk:
                rows = list(_rows(p))
                writer.writerows(rows)
                outcomes = [row[-4] for row in rows]
                counts.faces += outcomes.count(ALIGNED_FACE)
                counts.rejected += outcomes.count(REJECTED_FACE)
                counts.no_face += outcomes.count(NO_FACE)
                counts.unreadable += outcomes.count(UNREADABLE)
                counts.frames += p.frame is not None
                if annotations is not None:
                    _annotate(p, annotations)
                if p.last_of_source:
                    bar.update(1)
            counts.seconds = time.perf_counter() - start
            bar.set_postfix({"faces/s": round(counts.faces / max(counts.seconds, 1e-9), 1)})

        # One chunk ahead: the workers find the faces of the next chunk while this process
        # classifies and writes the previous one.
        previous = None
        for chunk in _chunks(_jobs(sources, fps), chunk_size):
            started = analyser.submit([p.job for p in chunk if not p.unreadable])
            if previous is not None:
                finish(*previous)
            previous = (chunk, started)
        if previous is not None:
            finish(*previous)
    bar.close()
    counts.seconds = time.perf_counter() - start
    return counts
