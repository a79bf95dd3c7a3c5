"""68-point landmarks inside given face boxes, with a fit score in [0, 1] per face.

Two backends, chosen by ``align.landmarks``:

``fan``  face-alignment's 2D FAN (Bulat and Tzimiropoulos 2017), run on the detected boxes so
         its own detector is never used. Fit = the mean of its 68 per-landmark confidences
         (heatmap peaks), the counterpart of IntraFace's fit score that the paper thresholds.
``dlib`` dlib's 68-point regression-tree shape predictor (Kazemi and Sullivan 2014), offline
         and on CPU. It has no confidence output, so the fit is a stability proxy: the
         predictor runs again on the box shifted by 10% of its width left, right, up and down.
         On a face the points stay on the facial features whatever the box does; on a non-face
         they have nothing to lock onto and move with the box. Fit = 1 - (mean landmark
         displacement / box shift), clipped to [0, 1]: 1 for landmarks that ignore the shift,
         0 for landmarks that follow it rigidly. On scikit-image's bundled LFW faces (upscaled,
         with a margin around them) it is 0.4-0.96, median 0.93; on that subset's 100 non-face
         patches, 99 score under the paper's 0.3 (most exactly 0).
"""
from __future__ import annotations

import contextlib
import io
import os
import warnings
from pathlib import Path
from typing import Protocol, Sequence

import numpy as np

from ..errors import PipelineError

Box = tuple[float, float, float, float]   # x, y, w, h


class Landmarker(Protocol):
    def __call__(self, gray: np.ndarray, boxes: Sequence[Box]) -> list[tuple[np.ndarray, float]]:
        """One (68x2 landmarks, fit) per box, in the boxes' order."""


JITTER = 0.10


class DlibLandmarker:
    def __init__(self, model_path: str | None = None):
        import dlib
        if model_path is None:
            with warnings.catch_warnings():
                # face_recognition_models imports pkg_resources, which warns that it is deprecated.
                warnings.simplefilter("ignore")
                import face_recognition_models
            model_path = face_recognition_models.pose_predictor_model_location()
        self._dlib = dlib
        self.predictor = dlib.shape_predictor(model_path)

    def _points(self, gray: np.ndarray, box: Box) -> np.ndarray:
        x, y, w, h = box
        # dlib's predictor takes integer rectangles (inclusive corners) only.
        rect = self._dlib.rectangle(round(x), round(y), round(x + w) - 1, round(y + h) - 1)
        shape = self.predictor(gray, rect)
        return np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float64)

    def __call__(self, gray: np.ndarray, boxes: Sequence[Box]) -> list[tuple[np.ndarray, float]]:
        gray = np.ascontiguousarray(gray, dtype=np.uint8)
        out = []
        for box in boxes:
            x, y, w, h = box
            points = self._points(gray, box)
            shift = max(1, round(JITTER * w))
            moves = [np.linalg.norm(self._points(gray, (x + dx, y + dy, w, h)) - points, axis=1).mean() / shift
                     for dx, dy in ((shift, 0), (-shift, 0), (0, shift), (0, -shift))]
            out.append((points, float(np.clip(1.0 - np.mean(moves), 0.0, 1.0))))
        return out


class FanLandmarker:
    """Wraps a face_alignment.FaceAlignment (or any object with its get_landmarks_from_image)."""

    def __init__(self, model):
        self.model = model

    def __call__(self, gray: np.ndarray, boxes: Sequence[Box]) -> list[tuple[np.ndarray, float]]:
        if not boxes:
            return []
        rgb = np.repeat(gray[:, :, None], 3, axis=2)
        # FAN takes (x1, y1, x2, y2) boxes as float64 arrays; all boxes of the image run as one batch.
        faces = [np.array([x, y, x + w, y + h], dtype=np.float64) for x, y, w, h in boxes]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            landmarks, scores, _ = self.model.get_landmarks_from_image(rgb, detected_faces=faces,
                                                                       return_landmark_score=True)
        got = 0 if landmarks is None or scores is None else min(len(landmarks), len(scores))
        if got != len(boxes):
            raise RuntimeError(f"FAN returned {got} faces for {len(boxes)} boxes")
        return [(np.asarray(pts, dtype=np.float64)[:, :2], float(np.mean(score)))
                for pts, score in zip(landmarks, scores)]


def fan_weights_path() -> tuple[str, Path]:
    """(download URL, the file face-alignment loads) for the 2D FAN weights, under TORCH_HOME."""
    import torch.hub
    from face_alignment.api import models_urls
    url = models_urls["2DFAN-4"]
    return url, Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(url)


# Boxes per FAN forward pass: every candidate box of an image (at most pipeline.MAX_CANDIDATES) in one.
FAN_BATCH = 8


def load_fan(device: str) -> FanLandmarker:
    """face-alignment's 2D FAN on ``device``; a clear PipelineError when its weights are unavailable."""
    import face_alignment
    url, path = fan_weights_path()
    if not path.is_file():
        print(f"downloading the FAN weights from {url} to {path}", flush=True)
    try:
        # face-alignment writes its own download notice to stderr; keep stderr for the one error line.
        with contextlib.redirect_stderr(io.StringIO()):
            model = face_alignment.FaceAlignment(face_alignment.LandmarksType.TWO_D, device=device, flip_input=False,
                                                 face_detector="folder", compile=False, max_batch_size=FAN_BATCH)
    except Exception as exc:
        if path.is_file():
            raise PipelineError(f"align.landmarks=fan: cannot load the FAN weights {path}: {exc}; "
                                f"delete the file to download it again from {url}") from None
        raise PipelineError(
            f"align.landmarks=fan: the FAN weights {path.name} are not cached and could not be downloaded "
            f"({type(exc).__name__}: {exc}). Place the file from {url} at {path} (the folder follows "
            f"TORCH_HOME), or set align.landmarks: dlib to run offline") from None
    return FanLandmarker(model)
