"""Reading a photo into 8-bit grayscale, or saying exactly why it cannot be read.

Pillow checks the whole file first (a truncated PNG or JPEG raises on ``load``, where OpenCV
would hand back a partly grey image with only a warning on stderr); OpenCV then decodes the
pixels, keeping 16-bit depth and the alpha channel so they can be converted deliberately.
"""
from __future__ import annotations

import io
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError


class Unreadable(Exception):
    """The file is not a decodable image; the message is the reason logged for it."""


def read_gray(path: str | Path) -> np.ndarray:
    """(H, W) uint8 grayscale of an image file, or Unreadable with the reason."""
    return decode_gray(file_bytes(path))


def file_bytes(path: str | Path) -> bytes:
    """The bytes of a file, or Unreadable with the reason."""
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise Unreadable(f"cannot read file: {exc.strerror or exc}") from None


def decode_gray(data: bytes) -> np.ndarray:
    if not data:
        raise Unreadable("empty file (0 bytes)")
    try:
        with Image.open(io.BytesIO(data)) as im:
            im.load()
    except UnidentifiedImageError:
        raise Unreadable("not an image file (unknown format)") from None
    except Image.DecompressionBombError as exc:
        raise Unreadable(f"image too large to decode safely: {exc}") from None
    except (OSError, SyntaxError, ValueError) as exc:
        # Pillow's messages for these are specific ("image file is truncated (12 bytes not processed)").
        raise Unreadable(f"corrupt or truncated image: {exc}") from None
    pixels = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_UNCHANGED)
    if pixels is None or pixels.size == 0:
        raise Unreadable("OpenCV cannot decode this image")
    return to_gray8(pixels)


def to_gray8(pixels: np.ndarray) -> np.ndarray:
    """OpenCV pixels of any common depth and channel layout -> (H, W) uint8 grayscale."""
    img = pixels
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[:, :, 0]
    if img.ndim == 3:
        channels = img.shape[2]
        if channels == 2:          # gray + alpha: the alpha channel carries no face
            img = img[:, :, 0]
        elif channels == 3:
            img = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
        elif channels == 4:        # BGRA: alpha is dropped, not composited, to keep the face's own pixels
            img = cv2.cvtColor(img, cv2.COLOR_BGRA2GRAY)
        else:
            raise Unreadable(f"unsupported number of channels: {channels}")
    elif img.ndim != 2:
        raise Unreadable(f"unsupported image shape {img.shape}")
    if img.dtype == np.uint8:
        return np.ascontiguousarray(img)
    if img.dtype == np.uint16:
        # 65535 / 257 = 255: the full 16-bit range onto the full 8-bit range, rounded.
        return ((img.astype(np.uint32) + 128) // 257).astype(np.uint8)
    if img.dtype in (np.float32, np.float64):
        finite = np.nan_to_num(img, nan=0.0, posinf=1.0, neginf=0.0)
        return np.rint(np.clip(finite, 0.0, 1.0) * 255).astype(np.uint8)
    raise Unreadable(f"unsupported pixel type {img.dtype}")
