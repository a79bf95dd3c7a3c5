"""Eye-based alignment and the paper's crop box, as affine maps from the photo to the crop.

Coordinates are OpenCV's: x right, y down, integer values at pixel centres. A crop of side
``size`` covers output pixels whose edges run from -0.5 to size - 0.5, so a box edge in the
photo lands exactly on the crop's edge.

The paper's box (Ng et al., section 3.2) is measured in eye-to-eye distances (e2e) in the frame
where the eyes are level: 0.62 e2e out at each side, 0.9 e2e above the eye line, 1.35 e2e
below. The side margin is taken from the eye centres by default (``box_from="eye_centres"``),
which gives a 2.24 x 2.25 e2e box, the "approximately square" box the paper describes, with
the eyes 0.4 of the way down. ``"outer_corners"`` measures the sides from the outer eye corners
(landmarks 36 and 45) instead: a box about 2.7 e2e wide that is squeezed horizontally when
resized to the square crop, as the paper's words read literally would do.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

SIDE, TOP, BOTTOM = 0.62, 0.9, 1.35

# 68-point iBUG layout, 0-based: the subject's right eye (on the image's left in a frontal
# photo) is 36-41, the left eye 42-47; 36 and 45 are the outer corners.
RIGHT_EYE = slice(36, 42)
LEFT_EYE = slice(42, 48)
OUTER_CORNERS = (36, 45)


@dataclass(frozen=True)
class Alignment:
    matrix: np.ndarray          # (2, 3) float64, photo coordinates -> crop coordinates
    eyes: np.ndarray            # (2, 2) eye centres in the photo: [subject's right, subject's left]
    angle_deg: float            # rotation of the eye line in the photo (the crop undoes it)
    e2e: float                  # eye-to-eye distance in photo pixels


def eye_centres(landmarks: np.ndarray) -> np.ndarray:
    """Mean of each eye's six points: rows [subject's right eye, subject's left eye]."""
    pts = np.asarray(landmarks, dtype=np.float64)
    if pts.shape != (68, 2):
        raise ValueError(f"expected 68 landmarks of (x, y), got shape {pts.shape}")
    return np.stack([pts[RIGHT_EYE].mean(axis=0), pts[LEFT_EYE].mean(axis=0)])


def box_in_eye_frame(landmarks: np.ndarray, box_from: str) -> tuple[float, float, float, float]:
    """(x0, x1, y0, y1) of the crop box in the level-eye frame (origin between the eyes, e2e = 1)."""
    if box_from == "eye_centres":
        return -0.5 - SIDE, 0.5 + SIDE, -TOP, BOTTOM
    if box_from == "outer_corners":
        eyes = eye_centres(landmarks)
        mid, axis, e2e = _eye_axis(eyes)
        corners = np.asarray(landmarks, dtype=np.float64)[list(OUTER_CORNERS)]
        # The corners' positions along the eye line, in e2e units.
        along = (corners - mid) @ axis / e2e
        return float(along[0]) - SIDE, float(along[1]) + SIDE, -TOP, BOTTOM
    raise ValueError(f"unknown box_from {box_from!r}")


def align(landmarks: np.ndarray, size: int, box_from: str) -> Alignment:
    """The affine map that levels the eyes and fits the paper's box to a size x size crop."""
    eyes = eye_centres(landmarks)
    mid, axis, e2e = _eye_axis(eyes)
    if e2e < 1e-6:
        raise ValueError("eye centres coincide: the landmarks are degenerate")
    x0, x1, y0, y1 = box_in_eye_frame(landmarks, box_from)
    normal = np.array([-axis[1], axis[0]])           # points down the face when the eyes are level
    origin = mid + e2e * (x0 * axis + y0 * normal)   # the box's top-left corner in the photo
    matrix = box_matrix(origin, e2e * (x1 - x0) * axis, e2e * (y1 - y0) * normal, size)
    angle = float(np.degrees(np.arctan2(axis[1], axis[0])))
    return Alignment(matrix=matrix, eyes=eyes, angle_deg=angle, e2e=float(e2e))


def _eye_axis(eyes: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """Midpoint, unit vector from the subject's right eye to the left eye, and their distance."""
    vec = eyes[1] - eyes[0]
    e2e = float(np.hypot(*vec))
    return (eyes[0] + eyes[1]) / 2.0, vec / max(e2e, 1e-12), e2e


def box_matrix(origin: np.ndarray, across: np.ndarray, down: np.ndarray, size: int) -> np.ndarray:
    """Map the parallelogram origin + s*across + t*down (s, t in [0, 1]) onto a size x size crop."""
    basis = np.column_stack([across, down]).astype(np.float64)
    linear = size * np.linalg.inv(basis)
    offset = -linear @ np.asarray(origin, dtype=np.float64) - 0.5
    return np.column_stack([linear, offset])


def eye_targets(landmarks: np.ndarray, size: int, box_from: str) -> np.ndarray:
    """Where the crop formula puts the two eye centres in the crop, rows as in ``eye_centres``."""
    x0, x1, y0, y1 = box_in_eye_frame(landmarks, box_from)
    xs = (np.array([-0.5, 0.5]) - x0) / (x1 - x0) * size - 0.5
    y = (0.0 - y0) / (y1 - y0) * size - 0.5
    return np.column_stack([xs, [y, y]])


def apply(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    return pts @ matrix[:, :2].T + matrix[:, 2]


def warp(gray: np.ndarray, matrix: np.ndarray, size: int) -> np.ndarray:
    """Resample the crop; strong reductions are pre-shrunk with area averaging to avoid aliasing.

    Pixels outside the photo repeat its border, so a face at the frame's edge does not gain a
    black band that the min-max stretch would then treat as the darkest face pixel.
    """
    linear = matrix[:, :2]
    # Output pixels per input pixel along the least-reduced axis.
    scale = float(np.max(np.linalg.svd(linear, compute_uv=False)))
    if scale < 0.5:
        f = 2.0 * scale
        h, w = gray.shape
        small = cv2.resize(gray, (max(1, round(w * f)), max(1, round(h * f))), interpolation=cv2.INTER_AREA)
        fx, fy = small.shape[1] / w, small.shape[0] / h
        # cv2.resize maps pixel centres as x_small = (x + 0.5) * f - 0.5.
        to_photo = np.array([[1 / fx, 0, 0.5 / fx - 0.5], [0, 1 / fy, 0.5 / fy - 0.5], [0, 0, 1]])
        matrix = matrix @ to_photo
        gray = small
    return cv2.warpAffine(gray, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def stretch(img: np.ndarray) -> np.ndarray:
    """Min-max stretch to 0..255; a constant crop (no contrast to stretch) becomes all zeros."""
    img = img.astype(np.float64)
    lo, hi = float(img.min()), float(img.max())
    if hi - lo < 1e-9:
        return np.zeros(img.shape, dtype=np.uint8)
    return np.rint((img - lo) * (255.0 / (hi - lo))).astype(np.uint8)


# Where the eyes sit in a Viola-Jones frontal box, on average over the LFW faces bundled with
# scikit-image: they place the fallback crop when a box was found but no fit passed, and the box
# a detection would have around given eyes (``face_box``).
VJ_EYE_Y = 0.39     # eye line, fraction of the box height from its top (frontal cascade)
VJ_E2E = 0.36       # eye-to-eye distance, fraction of the box width
# Boxes overlapping at least this much (intersection over union) show one face: the detector
# groups its boxes by it, and a face fitted inside another face's outline is a part of that face
# only when their boxes overlap less.
SAME_FACE_IOU = 0.3


def face_box(eyes: np.ndarray) -> tuple[float, float, float, float]:
    """The box (x, y, w, h) a frontal Viola-Jones detection would have around these eye centres."""
    eyes = np.asarray(eyes, dtype=np.float64)
    mid, _, e2e = _eye_axis(eyes)
    w = e2e / VJ_E2E
    return (float(mid[0] - w / 2), float(mid[1] - VJ_EYE_Y * w), w, w)


def iou(a: tuple, b: tuple) -> float:
    """Intersection over union of two (x, y, w, h) boxes."""
    w = min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0])
    h = min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1])
    if w <= 0 or h <= 0:
        return 0.0
    inter = w * h
    return inter / (a[2] * a[3] + b[2] * b[3] - inter)


def fallback_matrix(box: tuple[float, float, float, float] | None, shape: tuple[int, int],
                    size: int) -> np.ndarray:
    """The documented crop for an evaluation image with no accepted face.

    With a detection box: the paper's (eye-centre) box placed as if the eyes were level at
    their average place in a Viola-Jones box. Without one: the largest centred square.
    """
    if box is not None:
        x, y, w, h = box
        e2e = VJ_E2E * w
        mid = np.array([x + w / 2.0, y + VJ_EYE_Y * h])
        origin = mid + e2e * np.array([-0.5 - SIDE, -TOP])
        return box_matrix(origin, np.array([e2e * (1 + 2 * SIDE), 0.0]), np.array([0.0, e2e * (TOP + BOTTOM)]), size)
    h, w = shape
    side = float(min(h, w))
    origin = np.array([(w - side) / 2.0 - 0.5, (h - side) / 2.0 - 0.5])
    return box_matrix(origin, np.array([side, 0.0]), np.array([0.0, side]), size)


# A landmark fit is only taken for a face when its shape agrees with the box it was fitted in.
# Bounds, measured on the faces of faces-dev (dlib on frontal, padded and profile boxes) with
# a wide margin; a fit that breaks one is a face model forced onto something else (a mouth,
# a patch of texture) or onto a face far larger than its box.
E2E_PER_WIDTH = (0.15, 0.65)   # eye-to-eye distance / box width; Viola-Jones frontal: ~0.36
MOUTH_BELOW = 0.5              # mouth centre below the eye line, in e2e; faces: ~1.0-1.3
MIN_BOX_PER_HULL = 0.5         # box area / area of the landmarks' convex hull
MOUTH = slice(48, 68)


def implausible(landmarks: np.ndarray, box: tuple[float, float, float, float]) -> str:
    """Why a 68-point fit in ``box`` cannot be a face, or "" when its geometry is plausible."""
    pts = np.asarray(landmarks, dtype=np.float64)
    eyes = eye_centres(pts)
    mid, axis, e2e = _eye_axis(eyes)
    width, area = float(box[2]), float(box[2] * box[3])
    if not E2E_PER_WIDTH[0] <= e2e / width <= E2E_PER_WIDTH[1]:
        return f"eye distance {e2e / width:.2f} of the box width"
    # The subject's right eye on the image's left and the mouth below the eyes: an upright face.
    normal = np.array([-axis[1], axis[0]])
    below = float((pts[MOUTH].mean(axis=0) - mid) @ normal) / e2e
    if axis[0] <= 0 or below < MOUTH_BELOW:
        return f"mouth {below:.2f} eye distances below the eyes"
    hull = float(cv2.contourArea(cv2.convexHull(pts.astype(np.float32))))
    if area < MIN_BOX_PER_HULL * hull:
        return f"box {area / hull:.2f} of the landmarks' hull"
    return ""


def part_of(inner: np.ndarray, outer: np.ndarray) -> bool:
    """Whether the face fitted as ``inner`` (68 points) is a part of the face ``outer``.

    A face's nose and mouth, or an eye and a brow, can look like a small face to the cascade and
    to the landmark model, with a fit and a geometry that pass (a close-up whose face is too large
    for the frame). The larger face gives it away: all of the small face's points lie within the
    larger one's outline (the convex hull of its points), and the two are not one face found
    twice (their face boxes overlap less than detections of one face do).
    """
    inner, outer = np.asarray(inner, dtype=np.float64), np.asarray(outer, dtype=np.float64)
    hull = cv2.convexHull(outer.astype(np.float32))
    if any(cv2.pointPolygonTest(hull, (float(x), float(y)), False) < 0 for x, y in inner):
        return False
    return iou(face_box(eye_centres(inner)), face_box(eye_centres(outer))) < SAME_FACE_IOU
