"""predict's time on a folder of photos against `align_target`'s aligner alone on the same photos.

Classification must not dominate: the whole of ``staged_fer.predict`` (finding and aligning
every face, batched inference with a trained-shape AlexNet at the paper's 227 px, the CSV)
should take at most 1.5x the time of the stage's ``align_all`` with the same align params and
worker count. Both run in this process, on the CPU, alternately (``--rounds`` times each; the
best time of each is compared), so the ratio holds on a noisy machine.

Photos: the first 200 of ``../shared/data/faces-dev`` when present, else scikit-image's bundled
faces (the astronaut and LFW faces on a plain canvas), repeated to 200. The model has random
weights (`weights: none`; nothing is downloaded): its cost, not its answers, is measured.

    python benchmarks/bench_predict.py [--photos 200] [--workers 0] [--rounds 2] [--quick]
"""
from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a file: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import cv2
import numpy as np
import torch
import yaml

from benchmarks.common import REPO as ROOT, SHARED_DATA, count, parse as parse_args, parser, positive_int
from staged_fer.params import parse
from staged_fer.faces.align_params import AlignConfig
from staged_fer.faces.pipeline import align_all
from staged_fer.faces.pool import worker_count
from staged_fer.faces.record import align_record
from staged_fer.faces.search import ALIGNED, ImageTask
from staged_fer.models import ModelsConfig, build_model
from staged_fer.models.checkpoint import Checkpoint
from staged_fer.predict.checkpoint import load_as_recorded
from staged_fer.predict.faces import Analyser
from staged_fer.predict.run import predict
from staged_fer.predict.sources import collect

FACES_DEV = SHARED_DATA / "faces-dev"


def photos(n: int, scratch: Path) -> tuple[Path, str]:
    if FACES_DEV.is_dir():
        files = sorted(p for p in FACES_DEV.rglob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png"))[:n]
        folder = scratch / "photos"
        for i, p in enumerate(files):
            (folder / f"{i:03d}").mkdir(parents=True)
            (folder / f"{i:03d}" / p.name).symlink_to(p)
        return folder, f"{len(files)} real photos from {FACES_DEV}"
    from skimage import data
    folder = scratch / "photos"
    folder.mkdir()
    pool = [cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)]
    for face in data.lfw_subset()[:20]:
        big = cv2.resize((face * 255).round().astype(np.uint8), (200, 200), interpolation=cv2.INTER_CUBIC)
        canvas = np.full((400, 400), 90, np.uint8)
        canvas[100:300, 100:300] = big
        pool.append(canvas)
    for i in range(n):
        cv2.imwrite(str(folder / f"{i:03d}.png"), pool[i % len(pool)])
    return folder, f"{n} photos made from scikit-image's astronaut and LFW faces"


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--photos", type=positive_int, default=200)
    p.add_argument("--workers", type=count, default=0, help="processes for both (0 = one per core)")
    p.add_argument("--rounds", type=positive_int, default=2)
    args = parse_args(p, {"photos": 6, "workers": 1, "rounds": 1})
    # The shipped align params, with the offline landmarks; every model from random weights.
    shipped = yaml.safe_load((ROOT / "params.yaml").read_text())
    cfg = parse(AlignConfig, {**shipped["align"], "landmarks": "dlib", "workers": args.workers}, "align")
    models = {name: {**values, "weights": "none"} for name, values in shipped["models"].items()}
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        folder, what = photos(args.photos, scratch)
        sources = collect([folder])
        tasks = [ImageTask(s.path.relative_to(folder).as_posix(), "Val", -1) for s in sources]
        torch.manual_seed(0)
        state = build_model("alexnet", parse(ModelsConfig, models, "models"), pretrained=False).state_dict()
        ckpt = scratch / "phase2.pt"
        Checkpoint(model="alexnet", state_dict=state,
                   params={"seed": 0, "model": "alexnet", "models": models, "input": {"resize": 256, "flip": True}},
                   epoch=1, best_val_acc=None, history=[], synthetic=True, scheme="target",
                   align=align_record(cfg)).write(ckpt)
        model = load_as_recorded(ckpt, torch.device("cpu"), {"workers": args.workers})
        print(f"{what}; dlib landmarks, {worker_count(args.workers)} worker process(es), "
              f"{torch.get_num_threads()} torch threads, AlexNet at 227 px on the CPU", flush=True)
        align_times, predict_times = [], []
        for r in range(args.rounds):
            start = time.perf_counter()
            results = align_all(tasks, folder, cfg)
            align_times.append(time.perf_counter() - start)
            print(f"  round {r + 1}: aligner {align_times[-1]:.2f} s", flush=True)
            start = time.perf_counter()
            with Analyser(model.align) as analyser:
                counts = predict(sources, model, analyser, scratch / f"p{r}.csv", fps=2.0, batch_size=64,
                                 progress=False)
            predict_times.append(time.perf_counter() - start)
            print(f"  round {r + 1}: predict {predict_times[-1]:.2f} s", flush=True)
        aligned = sum(x.outcome == ALIGNED for x in results)
        a, t = min(align_times), min(predict_times)
        print(f"align_target's aligner: {a:6.2f} s ({len(tasks) / a:5.1f} photos/s; {aligned} aligned)  "
              f"rounds: {', '.join(f'{x:.2f}' for x in align_times)}")
        print(f"predict:                {t:6.2f} s ({len(tasks) / t:5.1f} photos/s; {counts.faces} faces classified, "
              f"{counts.rejected} rejected)  rounds: {', '.join(f'{x:.2f}' for x in predict_times)}")
        print(f"ratio predict / aligner: {t / a:.2f} (goal: at most 1.5)")


if __name__ == "__main__":
    main()
