"""Real faces and bad files for the face-alignment tests, all made on the fly.

Faces come from scikit-image's bundled data: the astronaut photo (Eileen Collins, 512x512) and
the LFW subset (25x25 face crops, upscaled and placed on a plain canvas so the detector sees a
face with a margin around it).
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from skimage import data

from staged_fer.faces.align_params import AlignConfig, DetectorConfig, PadConfig

ASTRONAUT_EYES = (224.0, 115.0)   # roughly between the astronaut's eyes, for rotating about


def detector_config() -> DetectorConfig:
    return DetectorConfig(scale_factor=1.1, min_neighbors=4, min_size=24, max_side=1024)


def align_config(**overrides) -> AlignConfig:
    values = dict(landmarks="dlib", min_fit=0.3, confident_fit=0.5, box_from="eye_centres", size=256,
                  detector=detector_config(), pad=PadConfig(margin=0.35, fill="replicate"),
                  whole_photo_fit=True, whole_photo_min_fit=0.6, workers=1)
    values.update(overrides)
    return AlignConfig(**values)


def astronaut_rgb() -> np.ndarray:
    return data.astronaut()


def astronaut_gray(rotate_deg: float = 0.0) -> np.ndarray:
    gray = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2GRAY)
    if rotate_deg:
        m = cv2.getRotationMatrix2D(ASTRONAUT_EYES, rotate_deg, 1.0)
        gray = cv2.warpAffine(gray, m, gray.shape[::-1], borderMode=cv2.BORDER_REFLECT)
    return gray


def lfw_canvas(i: int, side: int = 200, canvas: int = 400) -> np.ndarray:
    face = (data.lfw_subset()[i] * 255).round().astype(np.uint8)
    big = cv2.resize(face, (side, side), interpolation=cv2.INTER_CUBIC)
    out = np.full((canvas, canvas), 90, np.uint8)
    o = (canvas - side) // 2
    out[o:o + side, o:o + side] = big
    return out


def write_png(path: Path, img: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    ok, buf = cv2.imencode(".png", img)
    assert ok
    path.write_bytes(buf.tobytes())
    return path


def write_jpeg(path: Path, img: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 95])
    assert ok
    path.write_bytes(buf.tobytes())
    return path


def huge_with_face(side: int = 8000) -> np.ndarray:
    """An 8000x8000 photo whose face (the astronaut's, scaled 8x) is found only via the shrink."""
    gray = astronaut_gray()
    big = np.full((side, side), 100, np.uint8)
    face = cv2.resize(gray, (4096, 4096), interpolation=cv2.INTER_LINEAR)
    big[1000:1000 + 4096, 2000:2000 + 4096] = face
    return big


def write_sfew_fixture(root: Path) -> dict[str, tuple[str, int, str]]:
    """A small SFEW 2.0 tree of real faces and every kind of bad file.

    Returns {relative path: (expected outcome, expected label, text expected in the reason)}.
    """
    gray = astronaut_gray()
    rgb = astronaut_rgb()
    bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    png = cv2.imencode(".png", gray)[1].tobytes()
    jpg = cv2.imencode(".jpg", bgr)[1].tobytes()
    expected: dict[str, tuple[str, int, str]] = {}

    def put(rel: str, content, outcome: str, label: int, reason: str = "") -> None:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            write_png(path, content)
        expected[rel] = (outcome, label, reason)

    put("Train/Happy/gray.png", gray, "aligned", 3)
    put("Train/Happy/rgba.png", np.dstack([bgr, np.full(gray.shape, 200, np.uint8)]), "aligned", 3)
    put("Train/Sad/deep16.png", gray.astype(np.uint16) * 257, "aligned", 4)
    put("Train/Sad/colour.jpg", jpg, "aligned", 4)
    put("Train/Angry/zero.png", b"", "unreadable", -1, "empty file")
    put("Train/Angry/truncated.png", png[: len(png) // 2], "unreadable", -1, "truncated")
    put("Train/Angry/truncated.jpg", jpg[: len(jpg) // 2], "unreadable", -1, "truncated")
    put("Train/Angry/text.png", b"this is not a picture\n", "unreadable", -1, "not an image")
    put("Train/Fear/tiny.png", np.full((10, 10), 128, np.uint8), "dropped", 2, "smaller than detector.min_size")
    put("Train/Fear/blank.png", np.tile(np.arange(200, dtype=np.uint8), (200, 1)), "dropped", 2, "no face detected")
    put("Train/notes.txt", b"labels are the folder names\n", "dropped", -1, "outside the class folders")
    (root / "Train" / ".DS_Store").write_bytes(b"\0\0")
    put("Val/Neutral/tiny.png", np.full((10, 10), 128, np.uint8), "fallback", 6, "centred square")
    put("Val/Neutral/colour.jpg", jpg, "aligned", 6)
    (root / "Val" / "Disgust").mkdir(parents=True)
    put("Test/gray.png", gray, "aligned", -1)
    return expected
