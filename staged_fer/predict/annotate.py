"""Copies of the inputs with each face's box and label drawn: images as images, videos as videos.

Everything is written into a folder built under a temporary name and swapped in at the end
of the run, so an interrupted run leaves no half-annotated folder behind. Annotated images
mirror the inputs' names (``DIR/<name as in the CSV>``); a video's sampled frames become a
video at the sampling rate, ``DIR/<name>.mp4``.
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from ..io import StagedFolder
from ..labels import EMOTIONS

ACCEPTED_COLOUR = (60, 200, 60)      # BGR
REJECTED_COLOUR = (40, 40, 230)
WRITABLE = {".bmp", ".jpeg", ".jpg", ".png", ".tif", ".tiff", ".webp"}


def read_colour(path: str | Path) -> np.ndarray | None:
    """An 8-bit BGR copy of a photo to draw on (None when OpenCV cannot decode it)."""
    data = np.fromfile(str(path), dtype=np.uint8)
    return cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None


def draw(bgr: np.ndarray, faces: list[tuple[tuple[float, float, float, float], str, bool]]) -> np.ndarray:
    """``faces``: (box, label, accepted); the image is copied, not changed."""
    out = bgr.copy()
    h, w = out.shape[:2]
    thick = max(1, round(max(h, w) / 400))
    scale = max(0.4, max(h, w) / 1200)
    for (x, y, bw, bh), label, accepted in faces:
        colour = ACCEPTED_COLOUR if accepted else REJECTED_COLOUR
        p0, p1 = (round(x), round(y)), (round(x + bw), round(y + bh))
        cv2.rectangle(out, p0, p1, colour, thick)
        (tw, th), base = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, scale, thick)
        ty = p0[1] - 4 if p0[1] - th - base - 4 >= 0 else min(h - 1, p1[1] + th + 4)
        cv2.rectangle(out, (p0[0], ty - th - base), (p0[0] + tw, ty + base), colour, cv2.FILLED)
        cv2.putText(out, label, (p0[0], ty), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), thick, cv2.LINE_AA)
    return out


def label_of(proba: np.ndarray | None, fit: float | None) -> str:
    """``Happy 83%`` for a classified face, ``rejected (fit 0.12)`` for one the aligner rejected."""
    if proba is None:
        return "rejected" if fit is None else f"rejected (fit {fit:.2f})"
    k = int(np.argmax(proba))
    return f"{EMOTIONS[k]} {100 * proba[k]:.0f}%"


class Annotations:
    """The folder of annotated copies, staged beside ``root`` until ``commit``."""

    def __init__(self, root: str | Path, fps: float):
        self.root = Path(root)
        self.fps = fps
        self.staged = StagedFolder(self.root)
        self.tmp = self.staged.tmp
        self.videos: dict[str, cv2.VideoWriter] = {}
        self.written = 0

    def _target(self, name: str, suffix: str | None = None) -> Path:
        rel = Path(name.lstrip("/"))
        rel = Path(*[p for p in rel.parts if p not in ("..", ".")]) if rel.parts else Path("input")
        if suffix is not None:
            rel = rel.with_name(rel.name + suffix)
        path = self.tmp / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def image(self, name: str, bgr: np.ndarray) -> None:
        ext = Path(name).suffix.lower()
        path = self._target(name) if ext in WRITABLE else self._target(name, ".png")
        ok, buf = cv2.imencode(path.suffix, bgr)
        if ok:
            path.write_bytes(buf.tobytes())
            self.written += 1

    def frame(self, name: str, bgr: np.ndarray) -> None:
        writer = self.videos.get(name)
        if writer is None:
            path = self._target(name, ".mp4") if Path(name).suffix.lower() != ".mp4" else self._target(name)
            h, w = bgr.shape[:2]
            writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), self.fps, (w, h))
            self.videos[name] = writer
            self.written += 1
        writer.write(bgr)

    def end_video(self, name: str) -> None:
        writer = self.videos.pop(name, None)
        if writer is not None:
            writer.release()

    def commit(self, replace: bool) -> None:
        for name in list(self.videos):
            self.end_video(name)
        if self.root.exists() and not replace:
            raise FileExistsError(self.root)
        self.staged.commit()

    def discard(self) -> None:
        for writer in self.videos.values():
            writer.release()
        self.staged.discard()
