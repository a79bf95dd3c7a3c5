"""Count the faces the stage's aligner accepts that are not faces.

Non-faces: the 100 non-face patches of scikit-image's LFW subset, each upscaled to 200x200 and
set on a 300x300 canvas of its mean grey (so the cascades can see it whole, as they would a
face); every one the stage aligns is a false accept. Faces: on faces-dev (one subject per
photo), an accepted face is checked against dlib's HOG face detector, which shares nothing
with the Viola-Jones cascades: an accept is another face than HOG's when the box a detection
would have around its eyes overlaps every HOG face (found on the photo padded as the stage pads
it) less than two boxes of one face do (``geometry.SAME_FACE_IOU``): a false face inside a real
one (its nose and mouth) lies within HOG's box, yet is far smaller. Such accepts are listed for
inspection; photos HOG finds no face in are counted apart.

    python benchmarks/false_accepts.py [--root ../shared/data/faces-dev] [--photos N] [--quick]

Without faces-dev the non-faces are counted and the faces-dev line says it was skipped.
"""
from __future__ import annotations

import sys
import tempfile
from pathlib import Path

if __package__ in (None, ""):  # run as a file: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import cv2
import numpy as np
from skimage import data

from benchmarks.common import REPO, SHARED_DATA, parse, parser, positive_int
from staged_fer.params import load_params, section
from staged_fer.faces import geometry
from staged_fer.faces.align_params import AlignConfig
from staged_fer.faces.decode import read_gray
from staged_fer.faces.detection import pad_width, padded
from staged_fer.faces.pipeline import align_all
from staged_fer.faces.search import ALIGNED, ImageTask


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--root", help="faces-dev's folder (default: ../shared/data/faces-dev)")
    p.add_argument("--photos", type=positive_int, help="the first N non-faces and faces-dev photos (default: all)")
    p.add_argument("--params", default=str(REPO / "params.yaml"))
    args = parse(p, {"photos": 8})
    if args.root is not None and not Path(args.root).is_dir():
        p.error(f"--root {args.root}: no such folder")
    root = Path(args.root) if args.root is not None else SHARED_DATA / "faces-dev"
    raw = {**load_params(args.params)["align"], "landmarks": "dlib"}
    cfg = section({"align": raw}, "align", AlignConfig)

    with tempfile.TemporaryDirectory() as tmp:
        tasks = []
        for i, patch in enumerate(data.lfw_subset()[100:][:args.photos]):
            img = cv2.resize((patch * 255).round().astype(np.uint8), (200, 200), interpolation=cv2.INTER_CUBIC)
            canvas = np.full((300, 300), int(img.mean()), np.uint8)
            canvas[50:250, 50:250] = img
            cv2.imwrite(str(Path(tmp) / f"nonface_{i:03d}.png"), canvas)
            tasks.append(ImageTask(f"nonface_{i:03d}.png", "Train", 0))
        results = align_all(tasks, tmp, cfg)
    accepted = [r for r in results if r.outcome == ALIGNED]
    print(f"LFW subset non-faces: {len(accepted)} of {len(results)} accepted as faces "
          + ", ".join(f"{r.task.path} ({r.detector}, fit {r.fit:.2f})" for r in accepted))

    import dlib
    hog = dlib.get_frontal_face_detector()
    if not root.is_dir():
        print(f"faces-dev: skipped: not found at {root}")
        return
    paths = sorted(f.relative_to(root).as_posix() for f in root.glob("*/*.jpg"))[:args.photos]
    results = align_all([ImageTask(f, "Train", 0) for f in paths], root, cfg)
    other, unchecked = [], 0
    for r in results:
        if r.outcome != ALIGNED:
            continue
        gray = read_gray(root / r.task.path)
        pad = pad_width(gray.shape, cfg.pad)
        boxes = hog(padded(gray, pad, cfg.pad), 1)
        if not boxes:
            unchecked += 1
            continue
        x, y, w, h = geometry.face_box(r.eyes + pad)
        if all(geometry.iou((x, y, w, h), (b.left(), b.top(), b.width(), b.height())) < geometry.SAME_FACE_IOU
               for b in boxes):
            other.append(f"{r.task.path} ({r.detector}, fit {r.fit:.2f})")
    aligned = sum(r.outcome == ALIGNED for r in results)
    print(f"faces-dev: {aligned} of {len(results)} aligned; {aligned - unchecked - len(other)} the face HOG finds, "
          f"{len(other)} another face than HOG's: {', '.join(other) or '-'}; {unchecked} where HOG finds no face")


if __name__ == "__main__":
    main()
