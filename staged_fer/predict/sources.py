"""What predict reads: image files, folders (recursively) and videos sampled at a frame rate.

The kind of a file is taken from its extension; a file with any other extension is still
tried as an image, so a photo saved without its extension is not lost, and a file that is
neither is listed with the reason. Hidden files and folders (``.DS_Store``, ``.git``) are
skipped, as in the SFEW scan.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import cv2
import numpy as np

from ..errors import PipelineError

IMAGE_EXTS = frozenset({".bmp", ".gif", ".jp2", ".jpe", ".jpeg", ".jpg", ".pbm", ".pgm", ".png", ".pnm",
                        ".ppm", ".tif", ".tiff", ".webp"})
VIDEO_EXTS = frozenset({".avi", ".flv", ".m4v", ".mkv", ".mov", ".mp4", ".mpeg", ".mpg", ".webm", ".wmv"})


@dataclass(frozen=True)
class Source:
    path: Path       # the file to read
    name: str        # as listed in the CSV: the path given, or folder/relative path
    kind: str        # image | video | other (tried as an image)


def _visible(rel: Path) -> bool:
    return not any(part.startswith(".") for part in rel.parts)


def _kind(path: Path) -> str:
    ext = path.suffix.lower()
    return "image" if ext in IMAGE_EXTS else "video" if ext in VIDEO_EXTS else "other"


def collect(inputs: Sequence[str | Path]) -> list[Source]:
    """Every file named or found under a named folder, in the order given, folders sorted."""
    sources: list[Source] = []
    for given in inputs:
        path = Path(given)
        if path.is_dir():
            files = sorted(p for p in path.rglob("*") if p.is_file() and _visible(p.relative_to(path)))
            sources += [Source(p, (Path(given) / p.relative_to(path)).as_posix(), _kind(p)) for p in files]
        elif path.exists():
            sources.append(Source(path, Path(given).as_posix(), _kind(path)))
        else:
            raise PipelineError(f"{given}: no such file or folder")
    if not sources:
        raise PipelineError(f"no files found in {', '.join(map(str, inputs))}")
    return sources


@dataclass(frozen=True)
class Frame:
    index: int             # in the video's own numbering, from 0
    time_s: float          # index / the video's frame rate
    bgr: np.ndarray


class VideoUnreadable(Exception):
    """The message is the reason listed for the video."""


def sample_frames(path: Path, fps: float) -> Iterator[Frame]:
    """The frames nearest to every 1/fps seconds; VideoUnreadable when none can be decoded.

    Frames that are not kept are grabbed without being converted, the cheap half of decoding.
    """
    cap = cv2.VideoCapture(str(path))
    try:
        if not cap.isOpened():
            raise VideoUnreadable("OpenCV cannot open it as a video")
        native = cap.get(cv2.CAP_PROP_FPS)
        if not native or not math.isfinite(native) or native <= 0:
            raise VideoUnreadable("the video reports no frame rate")
        step = native / fps      # native frames per sample; below 1 every frame is kept
        index, next_keep, kept = 0, 0.0, 0
        while cap.grab():
            if index + 0.5 >= next_keep:
                ok, bgr = cap.retrieve()
                if not ok or bgr is None:
                    break
                yield Frame(index, index / native, bgr)
                kept += 1
                next_keep += step
            index += 1
        if kept == 0:
            raise VideoUnreadable("no frame could be decoded (empty, truncated or unsupported video)")
    finally:
        cap.release()


def video_frame_count(path: Path) -> int:
    """The container's frame count (0 when unknown), for the progress bar only."""
    cap = cv2.VideoCapture(str(path))
    try:
        return max(0, int(cap.get(cv2.CAP_PROP_FRAME_COUNT))) if cap.isOpened() else 0
    finally:
        cap.release()
