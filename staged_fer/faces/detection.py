"""OpenCV Viola-Jones face detection, frontal and profile, on a size-capped working image.

OpenCV's profile cascade only finds faces turned one way, so it also runs on the mirrored
image and its boxes are mirrored back: both directions are found. Large photos are shrunk so
their longer side is at most ``max_side`` (detection cost grows with the pixel count while the
faces of interest stay far above the cascade's 24-pixel window); boxes are mapped back to the
full-resolution photo, where landmarks and the crop are computed.

The cascades often fire on the same face more than once (the profile cascade also fires,
with a larger and shifted box, on many frontal faces), so boxes are first grouped into faces:
a box joins a face when their intersection over union is at least 0.3 (a small face inside
a large false box stays a face of its own). Each face is
represented by its frontal box when it has one (the landmark models expect frontal-style
boxes), else by its largest profile box. The primary subject is the face with the largest
box (SFEW frames centre the acting character, who is nearly always the nearest face); faces
are returned in that order, ties broken by position, so the order is fully determined by the
image.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .config import DetectorConfig

FRONTAL = "haarcascade_frontalface_default.xml"
PROFILE = "haarcascade_profileface.xml"
KIND_RANK = {"frontal": 0, "profile": 1, "profile_mirrored": 2}


@dataclass(frozen=True)
class Detection:
    box: tuple[float, float, float, float]   # x, y, w, h in the full-resolution photo's pixels
    kind: str                                # frontal | profile | profile_mirrored

    @property
    def area(self) -> float:
        return self.box[2] * self.box[3]


def _load(name: str) -> cv2.CascadeClassifier:
    cascade = cv2.CascadeClassifier(cv2.data.haarcascades + name)
    if cascade.empty():
        raise RuntimeError(f"OpenCV cascade {name} not found in {cv2.data.haarcascades}")
    return cascade


class FaceDetector:
    """Both cascades, loaded once (per worker process) and reused for every image."""

    def __init__(self, cfg: DetectorConfig):
        self.cfg = cfg
        self.frontal = _load(FRONTAL)
        self.profile = _load(PROFILE)

    def detect(self, gray: np.ndarray) -> list[Detection]:
        """All boxes, the primary subject first (see the module docstring for the rule)."""
        h, w = gray.shape
        scale = min(1.0, self.cfg.max_side / max(h, w))
        work = gray
        if scale < 1.0:
            work = cv2.resize(gray, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
        if min(work.shape) < self.cfg.min_size:
            return []       # smaller than the smallest face the detector may report
        # Equalising makes the cascades' fixed thresholds hold on dark or washed-out film frames.
        work = cv2.equalizeHist(work)
        sx, sy = w / work.shape[1], h / work.shape[0]
        ww = work.shape[1]
        found: list[Detection] = []
        for kind, cascade, mirrored in (("frontal", self.frontal, False), ("profile", self.profile, False),
                                        ("profile_mirrored", self.profile, True)):
            img = cv2.flip(work, 1) if mirrored else work
            boxes = cascade.detectMultiScale(img, scaleFactor=self.cfg.scale_factor,
                                             minNeighbors=self.cfg.min_neighbors,
                                             minSize=(self.cfg.min_size, self.cfg.min_size))
            for x, y, bw, bh in np.asarray(boxes).reshape(-1, 4):
                if mirrored:
                    x = ww - x - bw
                found.append(Detection((float(x * sx), float(y * sy), float(bw * sx), float(bh * sy)), kind))
        return faces(found)


def _iou(a: tuple, b: tuple) -> float:
    w = min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0])
    h = min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1])
    if w <= 0 or h <= 0:
        return 0.0
    inter = w * h
    return inter / (a[2] * a[3] + b[2] * b[3] - inter)


def faces(boxes: list[Detection]) -> list[Detection]:
    """One representative box per face, the largest face first (see the module docstring)."""
    order = sorted(boxes, key=lambda d: (-d.area, KIND_RANK[d.kind], d.box[1], d.box[0]))
    groups: list[list[Detection]] = []
    for det in order:
        for group in groups:
            if _iou(group[0].box, det.box) >= 0.3:
                group.append(det)
                break
        else:
            groups.append([det])
    # Groups are already ordered by their largest box, since boxes were visited largest first.
    return [min(g, key=lambda d: (KIND_RANK[d.kind], -d.area, d.box[1], d.box[0])) for g in groups]
