"""A synthetic SFEW 2.0: movie-frame-like colour photos in SFEW's folder layout.

``Train/<Emotion>/*.png`` and ``Val/<Emotion>/*.png`` are labelled by folder, ``Test/*.png``
is unlabelled, as in the real release. Each photo is a cluttered frame with one rendered face
(sometimes a second, smaller one behind it) at a random position, scale and in-plane
rotation, so the real detection and alignment code has real work to do: the faces are drawn
with the contrasts the Viola-Jones cascade and landmark models respond to, and the alignment
has to undo the rotation and scale.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from staged_fer.errors import PipelineError
from staged_fer.io import atomic_folder
from staged_fer.labels import EMOTIONS, NUM_CLASSES
from staged_fer.synthetic.faces import background, check_seed, render_patch

# SFEW 2.0's emotion folder names (its own spelling, which matches FER's class names).
SFEW_FOLDERS = ("Angry", "Disgust", "Fear", "Happy", "Neutral", "Sad", "Surprise")
assert sorted(SFEW_FOLDERS) == sorted(EMOTIONS)

# Frame sizes (width, height) of DVD and TV rips, SFEW's sources; most SFEW frames are 720x576.
FRAME_SIZES = ((720, 576), (720, 576), (720, 480), (640, 480), (480, 360), (320, 240))
FACE_WIDTH = (0.15, 0.40)     # face-oval width as a fraction of the frame width
MAX_ROLL = 15.0               # in-plane rotation, degrees
SECOND_FACE = 0.25            # chance of a smaller bystander face
# The oval is 0.6 of the patch width (faces.render_patch).
_OVAL_OF_PATCH = 0.60


@dataclass(frozen=True)
class Scene:
    """One photo and where its main face is: for tests and detection-rate measurements."""

    image: np.ndarray   # (H, W, 3) uint8 BGR
    label: int          # FER label of the main face
    eyes: np.ndarray    # (2, 2) main-face eye centres (x, y), image left then right
    box: tuple[int, int, int, int]  # main-face oval bounding box (x, y, w, h), unrotated extent


def _place(frame: np.ndarray, rng: np.random.Generator, label: int, face_w: float,
           centre: tuple[float, float], roll: float) -> np.ndarray:
    """Render a face and composite it into ``frame`` in place; return its eye centres."""
    patch_px = face_w / _OVAL_OF_PATCH
    # Draw near the final size (bounded for speed); the warp resamples the rest of the way.
    n = int(np.clip(round(patch_px), 96, 224))
    face = render_patch(rng, label, n)
    scale = patch_px / n
    M = cv2.getRotationMatrix2D((n / 2, n / 2), roll, scale)
    M[:, 2] += np.asarray(centre) - n / 2
    h, w = frame.shape[:2]
    # Warp only the region the patch lands in.
    corners = cv2.transform(np.array([[[0, 0], [n, 0], [0, n], [n, n]]], np.float32), M)[0]
    x0, y0 = np.floor(corners.min(0)).astype(int)
    x1, y1 = np.ceil(corners.max(0)).astype(int)
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
    if x1 > x0 and y1 > y0:
        M_roi = M.copy()
        M_roi[:, 2] -= (x0, y0)
        size = (x1 - x0, y1 - y0)
        img = cv2.warpAffine(face.image, M_roi, size, flags=cv2.INTER_LINEAR)
        alpha = cv2.warpAffine(face.alpha, M_roi, size, flags=cv2.INTER_LINEAR)[..., None]
        roi = frame[y0:y1, x0:x1]
        roi += alpha * (img - roi)
    return cv2.transform(face.eyes[None], M)[0]


def render_scene(rng: np.random.Generator, label: int) -> Scene:
    """A movie-frame-like colour photo whose main face shows ``label``."""
    if not 0 <= label < NUM_CLASSES:
        raise ValueError(f"label {label} is not one of 0..{NUM_CLASSES - 1}")
    width, height = FRAME_SIZES[int(rng.integers(len(FRAME_SIZES)))]
    # Clutter is smooth at frame scale: draw it small and upsample (cheap, and blurrier
    # backgrounds are what a shallow depth of field gives).
    frame = cv2.resize(background(rng, height // 4, width // 4), (width, height),
                       interpolation=cv2.INTER_LINEAR)
    face_w = rng.uniform(*FACE_WIDTH) * width
    face_h = face_w * 1.3
    margin_x, margin_y = 0.6 * face_w, 0.55 * face_h
    cx = rng.uniform(margin_x, width - margin_x)
    cy = rng.uniform(margin_y, max(margin_y + 1, height - margin_y))
    # A bystander goes in first so that the main face is in front where they overlap.
    if rng.random() < SECOND_FACE:
        side_w = face_w * rng.uniform(0.45, 0.7)
        left = cx - face_w
        right = width - (cx + face_w)
        if max(left, right) > side_w:
            sx = (rng.uniform(side_w * 0.6, left - side_w * 0.2) if left > right
                  else rng.uniform(cx + face_w + side_w * 0.2, width - side_w * 0.6))
            sy = rng.uniform(side_w, max(side_w + 1, height - side_w))
            _place(frame, rng, int(rng.integers(NUM_CLASSES)), side_w, (sx, sy),
                   rng.uniform(-MAX_ROLL, MAX_ROLL))
    roll = rng.uniform(-MAX_ROLL, MAX_ROLL)
    eyes = _place(frame, rng, label, face_w, (cx, cy), roll)
    # Colour grading, a little defocus and grain, as in compressed film frames.
    frame *= rng.uniform(0.85, 1.15, 3).astype(np.float32)
    frame = cv2.GaussianBlur(frame, (0, 0), rng.uniform(0.3, 0.9) * width / 640)
    # Uniform grain from raw random bytes: a frame's worth of Gaussian draws would cost more
    # than rendering the faces, and the eye cannot tell the difference.
    grain = np.frombuffer(rng.bytes(frame.size), np.uint8).reshape(frame.shape).astype(np.float32)
    grain -= 127.5
    grain *= rng.uniform(0.002, 0.01) / 73.9  # unit variance, then the grain's sigma
    frame += grain
    # In-place float32 arithmetic: full frames are large enough for temporaries to dominate.
    frame *= 255
    frame += 0.5
    np.clip(frame, 0, 255, out=frame)
    image = frame.astype(np.uint8)
    box = (int(cx - face_w / 2), int(cy - face_h / 2), int(face_w), int(face_h))
    return Scene(image=image, label=label, eyes=eyes, box=box)


def _photo_name(index: int) -> str:
    # SFEW names frames <Movie>_<frame>_<face>.png.
    return f"Synthetic_{index:09d}_00000001.png"


def write_sfew_tree(root: str | os.PathLike, train_per_class: int, val_per_class: int,
                    test: int, seed: int) -> None:
    """Write a synthetic SFEW 2.0 folder at ``root``: Train/ and Val/ with one folder per
    emotion, and unlabelled Test/.

    The tree is built beside ``root`` and swapped in only when complete, so an interrupted
    run leaves either the previous tree or none. The same arguments give the same bytes.
    """
    for name, value in (("train_per_class", train_per_class), ("val_per_class", val_per_class),
                        ("test", test)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
            raise PipelineError(f"synthetic SFEW {name} must be a non-negative integer, got {value!r}")
    seed = check_seed(seed)
    with atomic_folder(root) as tmp:
        index = 0
        for s, (split, per_class) in enumerate((("Train", train_per_class), ("Val", val_per_class))):
            for folder in SFEW_FOLDERS:
                label = EMOTIONS.index(folder)
                out = tmp / split / folder
                out.mkdir(parents=True)
                for k in range(per_class):
                    rng = np.random.default_rng([seed, s, label, k])
                    index += 1
                    _write_png(out / _photo_name(index), render_scene(rng, label).image)
        out = tmp / "Test"
        out.mkdir()
        for k in range(test):
            rng = np.random.default_rng([seed, 2, NUM_CLASSES, k])
            index += 1
            _write_png(out / _photo_name(index), render_scene(rng, int(rng.integers(NUM_CLASSES))).image)


def _write_png(path: Path, image: np.ndarray) -> None:
    if not cv2.imwrite(str(path), image):
        raise PipelineError(f"could not write {path}: check free space and permissions")

