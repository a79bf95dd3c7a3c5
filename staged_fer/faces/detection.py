"""OpenCV Viola-Jones face detection (frontal and profile) in ordered attempts, on a size-capped
working copy, with a padded retry for photos the face fills.

Attempts, each run only when no earlier one gave an accepted face (the caller decides
acceptance, with landmarks):

``frontal``         the frontal cascade on the working copy, for faces at least a quarter of its
                    short side: the subject of an expression photo nearly always is, and these
                    scales cost under a tenth of a full search (a cascade's cost is dominated
                    by its smallest windows, of which there are the most)
``frontal_padded``  the frontal cascade on the working copy padded by ``pad.margin`` of its long
                    side, for faces at least a third of the photo's short side: Viola-Jones
                    cannot find a face that fills the whole photo (a tight crop, as in many
                    expression datasets), since its windows need the face's outline inside
``frontal_small``   the frontal cascade for the smaller faces, down to ``detector.min_size``
``profile``         the profile cascade, at all sizes, on the working copy and on its mirror
                    image (OpenCV's profile cascade only finds faces turned one way; mirrored
                    boxes are mirrored back), as the paper's second detector
``profile_padded``  the same on the padded copy, for faces at least a third of the short side

Together the frontal attempts search every size once, as one plain pass would, but stop as soon
as a face is accepted. Profile passes cost two frontal passes and rarely find a face the frontal
one missed, so they run only where no frontal attempt gave an accepted face. Large photos are
shrunk so their longer side is at most ``detector.max_side`` (detection cost grows with the pixel
count while the faces of interest stay far above the cascade's 24-pixel window); boxes are
mapped back to the original photo (padding removed, scale undone), where landmarks and the
crop are computed.

The cascades often fire on the same face more than once (the profile cascade also fires,
with a larger and shifted box, on many frontal faces), so boxes are first grouped into faces:
a box joins a face when their intersection over union is at least 0.3 (a small face inside
a large false box stays a face of its own). Each face is represented by its frontal box when
it has one (the landmark models expect frontal-style boxes), else by its largest profile box.
The primary subject is the face with the largest box (SFEW frames centre the acting
character, who is nearly always the nearest face); faces are returned in that order, ties
broken by position, so the order is fully determined by the image.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import cv2
import numpy as np

from .align_params import DetectorConfig, PadConfig
from .geometry import SAME_FACE_IOU, iou

FRONTAL = "haarcascade_frontalface_default.xml"
PROFILE = "haarcascade_profileface.xml"
KIND_RANK = {"frontal": 0, "profile": 1, "profile_mirrored": 2}
ATTEMPTS = ("frontal", "frontal_padded", "frontal_small", "profile", "profile_padded")
# Smallest face, as a share of the working copy's short side, of the first frontal attempt
# (frontal_small searches below it) and of the padded attempts (a face that fills the photo).
LARGE_FACE = 1 / 4
PADDED_MIN_FACE = 1 / 3
BORDER = {"replicate": cv2.BORDER_REPLICATE, "reflect": cv2.BORDER_REFLECT_101, "constant": cv2.BORDER_CONSTANT}

Box = tuple[float, float, float, float]   # x, y, w, h


@dataclass(frozen=True)
class Detection:
    box: Box          # in the original photo's pixels (on a padded attempt it may reach outside it)
    kind: str         # frontal | profile | profile_mirrored
    padded: bool = False

    @property
    def area(self) -> float:
        return self.box[2] * self.box[3]

    @property
    def name(self) -> str:
        """What found it, as logged: the cascade, its direction, and whether the photo was padded."""
        return self.kind + ("_padded" if self.padded else "")


def pad_width(shape: tuple[int, int], pad: PadConfig) -> int:
    """Border added on every side of a photo of ``shape`` for the padded attempts, in its pixels."""
    return max(1, round(pad.margin * max(shape)))


def padded(gray: np.ndarray, width: int, pad: PadConfig) -> np.ndarray:
    """The photo with ``width`` pixels of fill on every side (constant fill: the photo's mean)."""
    value = float(gray.mean()) if pad.fill == "constant" else 0.0
    return cv2.copyMakeBorder(gray, width, width, width, width, BORDER[pad.fill], value=value)


def _load(name: str) -> cv2.CascadeClassifier:
    cascade = cv2.CascadeClassifier(cv2.data.haarcascades + name)
    if cascade.empty():
        raise RuntimeError(f"OpenCV cascade {name} not found in {cv2.data.haarcascades}")
    return cascade


class Scene:
    """One photo's working copies, each made once and only if an attempt needs it."""

    def __init__(self, gray: np.ndarray, cfg: DetectorConfig, pad: PadConfig):
        self.gray, self.cfg, self.pad = gray, cfg, pad
        h, w = gray.shape
        self.scale = min(1.0, cfg.max_side / max(h, w))
        self.pad_full = pad_width(gray.shape, pad)

    @cached_property
    def work(self) -> np.ndarray:
        """Shrunk to ``max_side``, histogram-equalised: the cascades' fixed thresholds then hold on
        dark or washed-out film frames."""
        h, w = self.gray.shape
        small = self.gray
        if self.scale < 1.0:
            small = cv2.resize(self.gray, (max(1, round(w * self.scale)), max(1, round(h * self.scale))),
                               interpolation=cv2.INTER_AREA)
        return cv2.equalizeHist(small)

    @cached_property
    def work_padded(self) -> tuple[np.ndarray, int]:
        width = max(1, round(self.pad_full * self.work.shape[1] / self.gray.shape[1]))
        return padded(self.work, width, self.pad), width

    @cached_property
    def full_padded(self) -> np.ndarray:
        """The original photo padded the same way: landmarks and crops of padded finds read it."""
        return padded(self.gray, self.pad_full, self.pad)


class FaceDetector:
    """Both cascades, loaded once per worker process and reused for every image."""

    def __init__(self, cfg: DetectorConfig, pad: PadConfig):
        self.cfg, self.pad = cfg, pad
        self.frontal = _load(FRONTAL)
        self.profile = _load(PROFILE)

    def scene(self, gray: np.ndarray) -> Scene:
        return Scene(gray, self.cfg, self.pad)

    def detect(self, scene: Scene, attempt: str) -> list[Detection]:
        """The faces one attempt finds, the primary subject first (see the module docstring)."""
        if attempt not in ATTEMPTS:
            raise ValueError(f"unknown detection attempt {attempt!r}")
        is_padded = attempt.endswith("_padded")
        work = scene.work
        if min(work.shape) < self.cfg.min_size:
            return []       # smaller than the smallest face the detector may report
        min_size, max_size = self.cfg.min_size, 0      # 0: no upper bound
        large = max(self.cfg.min_size, round(LARGE_FACE * min(work.shape)))
        if attempt == "frontal":
            min_size = large
        elif attempt == "frontal_small":
            if large == self.cfg.min_size:
                return []   # the first frontal attempt already searched every size
            min_size, max_size = self.cfg.min_size, large
        offset = 0
        if is_padded:
            min_size = max(self.cfg.min_size, round(PADDED_MIN_FACE * min(work.shape)))
            work, offset = scene.work_padded
        h, w = scene.gray.shape
        sx, sy = w / scene.work.shape[1], h / scene.work.shape[0]
        passes = [("frontal", self.frontal, False)] if attempt.startswith("frontal") else \
            [("profile", self.profile, False), ("profile_mirrored", self.profile, True)]
        found: list[Detection] = []
        for kind, cascade, mirrored in passes:
            img = cv2.flip(work, 1) if mirrored else work
            boxes = cascade.detectMultiScale(img, scaleFactor=self.cfg.scale_factor, minNeighbors=self.cfg.min_neighbors,
                                             minSize=(min_size, min_size), maxSize=(max_size, max_size))
            for x, y, bw, bh in np.asarray(boxes).reshape(-1, 4):
                if mirrored:
                    x = work.shape[1] - x - bw
                found.append(Detection((float((x - offset) * sx), float((y - offset) * sy), float(bw * sx),
                                        float(bh * sy)), kind, is_padded))
        return faces(found)


def faces(boxes: list[Detection]) -> list[Detection]:
    """One representative box per face, the largest face first (see the module docstring)."""
    order = sorted(boxes, key=lambda d: (-d.area, KIND_RANK[d.kind], d.box[1], d.box[0]))
    groups: list[list[Detection]] = []
    for det in order:
        for group in groups:
            if iou(group[0].box, det.box) >= SAME_FACE_IOU:
                group.append(det)
                break
        else:
            groups.append([det])
    # Groups are already ordered by their largest box, since boxes were visited largest first.
    return [min(g, key=lambda d: (KIND_RANK[d.kind], -d.area, d.box[1], d.box[0])) for g in groups]
