"""How well aligned crops are aligned, measured on the crops themselves.

The landmark model runs again on each aligned crop, in the box a Viola-Jones frontal
detection would have there (the crop's layout is fixed, so that box is too), and the eye
centres it finds are compared with where the paper's box puts the eyes. A crop of a face,
aligned as intended, has its eyes found within a few pixels of that place; a false face or a
misplaced crop does not.

A measuring instrument, not part of the pipeline: bench_align.py prints it for the stage's
crops, tests/test_faces_dev.py bounds it on real photos.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from staged_fer.faces import geometry
from staged_fer.faces.landmarks import Landmarker


def crop_box(size: int) -> tuple[float, float, float, float]:
    """Where a frontal detection box sits in an eye-centre crop of side ``size``."""
    return geometry.face_box(geometry.eye_targets(np.zeros((68, 2)), size, "eye_centres"))


def crop_eye_errors(faces: Sequence[np.ndarray], landmarker: Landmarker, size: int) -> np.ndarray:
    """Per crop, the larger of the two eyes' distances (crop pixels) from the paper box's eye places."""
    targets = geometry.eye_targets(np.zeros((68, 2)), size, "eye_centres")
    box = crop_box(size)
    errors = []
    for face in faces:
        (points, _), = landmarker(face, [box])
        errors.append(float(np.linalg.norm(geometry.eye_centres(points) - targets, axis=1).max()))
    return np.array(errors)
