"""68-point landmarks inside given face boxes, with a fit score in [0, 1] per face.

Two backends, chosen by ``align.landmarks``:

``fan``  face-alignment's 2D FAN (Bulat and Tzimiropoulos 2017), run on the detected boxes so
         its own detector is never used. face-alignment 1.5.0 turns a box (x1, y1, x2, y2) into
         a square crop window of side 200 (w + h) / 195 centred on the box centre moved up by
         0.12 h, resizes it to 256x256, and reads each point at the maximum of its 64x64
         heatmap; the points therefore lie inside that window, on a grid of side/64 pixels.
         Its scores are those heatmap maxima. FAN is trained to regress
         heatmaps whose target is a Gaussian of peak 1 at the landmark, so a peak estimates
         that height: near 1 where the point is found clearly, near 0 where nothing matches.
         The output is an unconstrained regression (no sigmoid or softmax): a peak can
         overshoot above 1 or be negative. Fit = the mean over the 68 points of each peak
         clipped to [0, 1], so one overshooting point cannot hide others that found nothing.
         It is clipped rather than normalised: dividing by the heatmap's sum or taking a
         softmax would measure how peaked the map is relative to itself, not how close the
         peak comes to the trained height, and would change what ``align.min_fit`` means.
         This is the counterpart of IntraFace's fit score that the paper thresholds at 0.3.
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
from typing import Callable, Iterable, Iterator, Protocol, Sequence, TypeVar

import numpy as np

from ..errors import PipelineError

Box = tuple[float, float, float, float]   # x, y, w, h
T = TypeVar("T")


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


def fan_fit(scores: np.ndarray) -> float:
    """The fit of one face from FAN's 68 heatmap peaks: their mean, each clipped to [0, 1]."""
    return float(np.clip(np.asarray(scores, dtype=np.float64), 0.0, 1.0).mean())


def _cache_numba(utils) -> None:
    """Numba compiles the library's heatmap decoding afresh in every process (about 20 s of CPU);
    its on-disk cache (beside the library, or under NUMBA_CACHE_DIR) makes that once per install."""
    for name in ("transform_np", "_get_preds_fromhm"):
        fn = getattr(utils, name, None)
        if hasattr(fn, "enable_caching"):
            try:
                fn.enable_caching()
            except RuntimeError:   # no writable cache location: compile in memory, as the library does
                pass


class FanLandmarker:
    """face-alignment's FAN on our boxes, the faces of several images in shared forward passes.

    ``FaceAlignment.get_landmarks_from_image`` batches the boxes of one image only. ``many``
    does exactly what it does (the library's own crop, network and heatmap decoding, the same
    arithmetic for the crop centre and scale) but batches the faces of many images, which is
    what keeps a GPU busy; tests check it against the library's method point for point.
    """

    def __init__(self, model, batch_size: int):
        from face_alignment import utils
        self.model = model
        self.batch_size = batch_size
        self._crop, self._decode, self._y_offset = utils.crop, utils.get_preds_fromhm, utils.CENTER_Y_OFFSET
        self._reference_scale = model.face_detector.reference_scale
        _cache_numba(utils)

    def __call__(self, gray: np.ndarray, boxes: Sequence[Box]) -> list[tuple[np.ndarray, float]]:
        return self.many([(gray, boxes)])[0]

    def _window(self, box: Box) -> tuple[np.ndarray, float]:
        """(centre, scale) of the library's crop, computed as get_landmarks_from_image does."""
        x, y, w, h = box
        d = np.array([x, y, x + w, y + h], dtype=np.float64)
        center = np.array([d[2] - (d[2] - d[0]) / 2.0, d[3] - (d[3] - d[1]) / 2.0])
        center[1] = center[1] - (d[3] - d[1]) * self._y_offset
        return center, (d[2] - d[0] + d[3] - d[1]) / self._reference_scale

    def many(self, images: Sequence[tuple[np.ndarray, Sequence[Box]]]) -> list[list[tuple[np.ndarray, float]]]:
        """One (68x2 landmarks, fit) list per (gray image, boxes), in order; batch_size faces a pass."""
        import torch
        windows, crops = [], []
        for gray, boxes in images:
            rgb = np.repeat(gray[:, :, None], 3, axis=2)   # what the library's get_image makes of gray
            for box in boxes:
                center, scale = self._window(box)
                windows.append((center, scale))
                crops.append(self._crop(rgb, center, scale).transpose((2, 0, 1)).astype(np.float32) / 255.0)
        heatmaps = []
        net, device, dtype = self.model.face_alignment_net, self.model.device, self.model.dtype
        with torch.no_grad():
            for start in range(0, len(crops), self.batch_size):
                batch = torch.from_numpy(np.stack(crops[start:start + self.batch_size])).to(device, dtype=dtype)
                out = net(batch)
                heatmaps.append((out[-1] if isinstance(out, list) else out).to("cpu", torch.float32).numpy())
        heat = np.concatenate(heatmaps) if heatmaps else np.empty((0,))
        faces = []
        for i, (center, scale) in enumerate(windows):
            _, points, scores = self._decode(heat[i:i + 1], center, scale)
            faces.append((np.asarray(points, dtype=np.float64).reshape(-1, 2), fan_fit(scores[0])))
        out, k = [], 0
        for _, boxes in images:
            out.append(faces[k:k + len(boxes)])
            k += len(boxes)
        return out

    def in_batches(self, items: Iterable[T], faces_of: Callable[[T], tuple[np.ndarray, Sequence[Box]] | None]
                   ) -> Iterator[tuple[T, Landmarker | None]]:
        """Each item with a landmarker holding its faces' results, in order.

        ``faces_of(item)`` gives the image and boxes to fit (None: nothing to fit). Items are
        gathered until they hold ``batch_size`` faces, which then run together. A call with
        other boxes than the gathered ones runs FAN on them then.
        """
        pending: list[tuple[T, tuple[np.ndarray, Sequence[Box]] | None]] = []

        def flush():
            wanted = [faces for _, faces in pending if faces is not None]
            done = iter(self.many(wanted))
            for item, faces in pending:
                yield item, (None if faces is None else _Fitted(self, list(faces[1]), next(done)))
            pending.clear()

        count = 0
        for item in items:
            faces = faces_of(item)
            pending.append((item, faces))
            count += len(faces[1]) if faces is not None else 0
            if count >= self.batch_size:
                yield from flush()
                count = 0
        yield from flush()


class _Fitted:
    """A landmarker for one image whose candidate boxes were fitted in a shared batch."""

    def __init__(self, fan: FanLandmarker, boxes: list[Box], fits: list[tuple[np.ndarray, float]]):
        self.fan, self.boxes, self.fits = fan, boxes, fits

    def __call__(self, gray: np.ndarray, boxes: Sequence[Box]) -> list[tuple[np.ndarray, float]]:
        return self.fits if list(boxes) == self.boxes else self.fan(gray, boxes)


TESTED_WITH = "face-alignment==1.5.0"   # the pin in requirements.txt
FAN_KEY = "2DFAN-4"


def fan_weights_path() -> tuple[str, Path]:
    """(download URL, the file face-alignment loads) for the 2D FAN weights, under TORCH_HOME."""
    import torch.hub
    try:
        from face_alignment.api import models_urls
        url = models_urls[FAN_KEY]
    except (ImportError, KeyError, TypeError):
        raise PipelineError(f"align.landmarks=fan: the installed face-alignment {_fan_version()} has no "
                            f"{FAN_KEY!r} in face_alignment.api.models_urls; install {TESTED_WITH} "
                            "(requirements.txt) or set align.landmarks: dlib") from None
    return url, Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(url)


def _fan_version() -> str:
    from importlib.metadata import PackageNotFoundError, version
    try:
        return version("face-alignment")
    except PackageNotFoundError:
        return "(not installed)"


# Faces per FAN forward pass, gathered across images: about 1 GB of activations on CUDA.
FAN_BATCH = 32


def load_fan(device: str) -> FanLandmarker:
    """face-alignment's 2D FAN on ``device`` ("cpu" or "cuda"); a one-line PipelineError when its
    weights are unavailable or the installed library loads them differently."""
    import face_alignment
    url, path = fan_weights_path()
    if not path.is_file():
        print(f"downloading the FAN weights from {url} to {path}", flush=True)
    try:
        # face-alignment writes its own download notice to stderr; keep stderr for the one error line.
        # compile=False: torch.compile costs minutes per process for a few thousand faces.
        with contextlib.redirect_stderr(io.StringIO()):
            model = face_alignment.FaceAlignment(face_alignment.LandmarksType.TWO_D, device=device, flip_input=False,
                                                 face_detector="folder", compile=False, max_batch_size=FAN_BATCH)
    except Exception as exc:
        reason = " ".join(f"{type(exc).__name__}: {exc}".split())   # one line, whatever the library says
        if path.is_file():
            raise PipelineError(f"align.landmarks=fan: cannot load the FAN weights {path} with face-alignment "
                                f"{_fan_version()} ({reason}); delete the file to download it again from {url}, "
                                f"or install {TESTED_WITH}") from None
        raise PipelineError(
            f"align.landmarks=fan: the FAN weights {path.name} are not cached and could not be downloaded "
            f"({reason}). Place the file from {url} at {path} (the folder follows "
            f"TORCH_HOME), or set align.landmarks: dlib to run offline") from None
    try:
        return FanLandmarker(model, FAN_BATCH)
    except AttributeError as exc:
        raise PipelineError(f"align.landmarks=fan: face-alignment {_fan_version()} lacks {exc.name!r}, which the "
                            f"batched FAN uses; install {TESTED_WITH} (requirements.txt)") from None
