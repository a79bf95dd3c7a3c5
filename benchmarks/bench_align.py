"""Photos per second of the align_target stage against a plain aligner, side by side in one run.

The stage's aligner runs with the `align` params of params.yaml (dlib landmarks: FAN needs
weights that may not be here); the plain aligner is written here, not in the library: OpenCV's
frontal Haar cascade on a grayscale copy shrunk to a long side of 640 px (same scale factor,
neighbours and smallest face as the stage), the largest box, dlib's 68 points, the paper's crop
from the eye centres, in one process (OpenCV's own threads use the cores in detection). Both
read the same photos, in alternating rounds, so each round's ratio is measured under the same
load on a shared machine. Also prints how many photos each aligned and, for the stage, the
median distance between the eyes dlib finds again on its aligned crops and the paper box's
eye positions.

    python benchmarks/bench_align.py [--root ../shared/data/faces-dev] [--photos N] [--rounds 3]
        [--workers N] [--quick]

``--root`` holds photos in any folder layout (faces-dev: <Emotion>/*.jpg).
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a file: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import cv2
import numpy as np

from benchmarks.common import REPO, SHARED_DATA, count, input_folder, parse, parser, positive_int
from benchmarks.crop_quality import crop_eye_errors
from staged_fer.params import load_params, section
from staged_fer.faces import geometry
from staged_fer.faces.align_params import AlignConfig
from staged_fer.faces.landmarks import DlibLandmarker
from staged_fer.faces.pipeline import align_all
from staged_fer.faces.pool import worker_count
from staged_fer.faces.search import ALIGNED, ImageTask

PLAIN_SIDE = 640


class PlainAligner:
    """Frontal cascade on a <= 640 px copy + dlib 68 points + the paper's eye-centre crop."""

    def __init__(self, cfg: AlignConfig):
        import dlib
        self.dlib, self.cfg = dlib, cfg
        self.cascade = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")
        self.predictor = DlibLandmarker().predictor

    def __call__(self, path: Path) -> np.ndarray | None:
        gray = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
        if gray is None:
            return None
        s = min(1.0, PLAIN_SIDE / max(gray.shape))
        small = gray if s == 1.0 else cv2.resize(gray, None, fx=s, fy=s, interpolation=cv2.INTER_AREA)
        d = self.cfg.detector
        boxes = self.cascade.detectMultiScale(small, scaleFactor=d.scale_factor, minNeighbors=d.min_neighbors,
                                              minSize=(d.min_size, d.min_size))
        if len(boxes) == 0:
            return None
        x, y, w, h = (v / s for v in max(boxes, key=lambda b: b[2] * b[3]))
        shape = self.predictor(gray, self.dlib.rectangle(round(x), round(y), round(x + w) - 1, round(y + h) - 1))
        pts = np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float64)
        right, left = pts[36:42].mean(axis=0), pts[42:48].mean(axis=0)
        size = self.cfg.size
        # Similarity map putting the eye centres where the paper's box does (0.4 down, 2.24 e2e wide).
        e2e_out = size / (1 + 2 * geometry.SIDE)
        dst_y = geometry.TOP / (geometry.TOP + geometry.BOTTOM) * size - 0.5
        dst = np.array([[size / 2 - e2e_out / 2 - 0.5, dst_y], [size / 2 + e2e_out / 2 - 0.5, dst_y]])
        matrix, _ = cv2.estimateAffinePartial2D(np.array([right, left]), dst)
        return cv2.warpAffine(gray, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def _photos(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png", ".bmp"))


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--root", help="folder of photos (default: ../shared/data/faces-dev)")
    p.add_argument("--photos", type=positive_int, help="the first N photos (default: all)")
    p.add_argument("--rounds", type=positive_int, default=3, help="alternating rounds of both aligners")
    p.add_argument("--workers", type=count, default=None, help="stage's pool size (default: align.workers)")
    p.add_argument("--params", default=str(REPO / "params.yaml"))
    args = parse(p, {"photos": 8, "rounds": 1, "workers": 1})
    root = input_folder(p, args.root, SHARED_DATA / "faces-dev", "faces-dev")
    photos = _photos(root)[:args.photos]
    if not photos:
        p.error(f"no photos under {root}")
    raw = load_params(args.params)["align"]
    raw = {**raw, "landmarks": "dlib", **({"workers": args.workers} if args.workers is not None else {})}
    cfg = section({"align": raw}, "align", AlignConfig)
    tasks = [ImageTask(str(f.relative_to(root).as_posix()), "Train", 0) for f in photos]
    print(f"{len(photos)} photos under {root}; stage: {worker_count(cfg.workers)} worker process(es), "
          f"detector.max_side {cfg.detector.max_side}, pad {cfg.pad.margin} {cfg.pad.fill}; "
          f"plain: one process, OpenCV threads {cv2.getNumThreads()}; "
          f"each timing includes its setup (the stage's pool, both load dlib's model)")
    ratios = []
    for k in range(args.rounds):
        start = time.perf_counter()
        plain = PlainAligner(cfg)
        plain_faces = [plain(f) for f in photos]
        plain_rate = len(photos) / (time.perf_counter() - start)
        start = time.perf_counter()
        results = align_all(tasks, root, cfg)
        stage_rate = len(photos) / (time.perf_counter() - start)
        ratios.append(stage_rate / plain_rate)
        n_plain = sum(f is not None for f in plain_faces)
        n_stage = sum(r.outcome == ALIGNED for r in results)
        print(f"round {k + 1}: stage {stage_rate:6.1f} photos/s, {n_stage}/{len(photos)} aligned | "
              f"plain {plain_rate:6.1f} photos/s, {n_plain}/{len(photos)} aligned | ratio {ratios[-1]:.2f}", flush=True)
    print(f"stage/plain photos/s ratio: median {np.median(ratios):.2f} (rounds: {', '.join(f'{r:.2f}' for r in ratios)})")
    by = {}
    for r in results:
        if r.outcome == ALIGNED:
            by[r.attempt] = by.get(r.attempt, 0) + 1
    print("stage aligned by attempt: " + ", ".join(f"{a} {n}" for a, n in by.items()))
    errors = crop_eye_errors([r.face for r in results if r.outcome == ALIGNED], DlibLandmarker(), cfg.size)
    plain_errors = crop_eye_errors([f for f in plain_faces if f is not None], DlibLandmarker(), cfg.size)
    print(f"eyes found again by dlib on the aligned crops, distance to the paper box's eye positions (px of "
          f"{cfg.size}): stage median {np.median(errors):.2f}, 90th percentile {np.percentile(errors, 90):.2f}; "
          f"plain median {np.median(plain_errors):.2f}")


if __name__ == "__main__":
    main()
