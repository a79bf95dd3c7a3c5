"""The `align` params section."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class DetectorConfig:
    scale_factor: float   # cv2.CascadeClassifier.detectMultiScale
    min_neighbors: int
    min_size: int         # smallest face side, in pixels of the detector's working image
    max_side: int         # images are shrunk so their longer side is at most this, for detection only

    def __post_init__(self):
        if self.scale_factor <= 1.0:
            raise ValueError("detector.scale_factor must be > 1")
        if self.min_neighbors < 0 or self.min_size < 1 or self.max_side < 32:
            raise ValueError("detector.min_neighbors >= 0, min_size >= 1 and max_side >= 32 are required")


@dataclass(frozen=True)
class PadConfig:
    """The border added for the detector's retry on photos the face fills (see detection.py)."""
    margin: float         # on every side, as a fraction of the photo's long side
    fill: Literal["replicate", "reflect", "constant"]   # constant: the photo's mean grey

    def __post_init__(self):
        if not 0.0 < self.margin <= 2.0:
            raise ValueError("pad.margin must be within (0, 2]")


@dataclass(frozen=True)
class AlignConfig:
    landmarks: Literal["fan", "dlib"]
    min_fit: float
    confident_fit: float  # a fit below this is kept only if no later detection attempt fits better
    box_from: Literal["eye_centres", "outer_corners"]
    size: int
    detector: DetectorConfig
    pad: PadConfig
    whole_photo_fit: bool  # no confident find: fit landmarks to the whole photo (a face crop?)
    whole_photo_min_fit: float  # the fit a whole-photo fit must reach (stricter: no detector vouches)
    workers: int          # 0 = one process per available core
    # Where FAN runs: auto (CUDA when present) | cpu | cuda, resolved like `runtime.device`.
    # The default serves code that builds the config directly; params.yaml must still name it.
    device: Literal["auto", "cpu", "cuda"] = "auto"

    def __post_init__(self):
        if not 0.0 <= self.min_fit <= 1.0:
            raise ValueError("min_fit must be within [0, 1]")
        if not self.min_fit <= self.confident_fit <= 1.0:
            raise ValueError("confident_fit must be within [min_fit, 1]")
        if not self.min_fit <= self.whole_photo_min_fit <= 1.0:
            raise ValueError("whole_photo_min_fit must be within [min_fit, 1]")
        if self.size < 8:
            raise ValueError("size must be at least 8")
        if self.workers < 0:
            raise ValueError("workers must be >= 0 (0 = one per core)")
