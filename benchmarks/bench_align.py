"""Images per second for EmotiW face preparation: detection + dlib landmarks + crop on CPU with
one worker against the process pool, and FAN landmarks where a GPU is present.

Runs on a synthetic SFEW tree (movie-frame-sized photos with one or two faces). Both CPU runs
happen in this process on the same files, so their ratio is meaningful on a noisy machine.

    python benchmarks/bench_align.py [--per-class 3] [--workers 0]
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a file: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from staged_fer.data.emotiw import scan_sfew
from staged_fer.errors import PipelineError
from staged_fer.faces.config import AlignConfig, DetectorConfig
from staged_fer.faces.pipeline import ALIGNED, align_all, worker_count
from staged_fer.synthetic.sfew import write_sfew_tree


def _timed(tasks, root, cfg, fan=None):
    start = time.perf_counter()
    results = align_all(tasks, root, cfg, fan=fan)
    elapsed = time.perf_counter() - start
    return len(tasks) / elapsed, sum(r.outcome == ALIGNED for r in results), results


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--per-class", type=int, default=3, help="synthetic Train photos per class (Val gets 1)")
    p.add_argument("--workers", type=int, default=0, help="pool size (0 = one per core)")
    args = p.parse_args()
    detector = DetectorConfig(scale_factor=1.1, min_neighbors=4, min_size=24, max_side=1024)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "SFEW"
        write_sfew_tree(root, args.per_class, 1, 0, seed=0)
        tasks = scan_sfew(root).tasks
        print(f"{len(tasks)} synthetic SFEW photos")
        one = AlignConfig("dlib", 0.3, "eye_centres", 256, detector, workers=1)
        pool = AlignConfig("dlib", 0.3, "eye_centres", 256, detector, workers=args.workers)
        rate1, ok1, res1 = _timed(tasks, root, one)
        rate_n, ok_n, res_n = _timed(tasks, root, pool)
        same = all(a.outcome == b.outcome and (a.face is None or (a.face == b.face).all())
                   for a, b in zip(res1, res_n))
        print(f"dlib, 1 worker:   {rate1:7.2f} images/s ({ok1} aligned)")
        print(f"dlib, {worker_count(args.workers)} workers:  {rate_n:7.2f} images/s ({ok_n} aligned)"
              f"  speed-up x{rate_n / rate1:.2f}, identical results: {same}")
        try:
            import torch
            has_cuda = torch.cuda.is_available()
        except ImportError:
            has_cuda = False
        if not has_cuda:
            print("FAN: skipped (no CUDA device here)")
            return
        from staged_fer.faces.landmarks import load_fan
        try:
            fan = load_fan("cuda")
        except PipelineError as exc:
            print(f"FAN: skipped ({exc})")
            return
        fan_cfg = AlignConfig("fan", 0.3, "eye_centres", 256, detector, workers=args.workers)
        _timed(tasks[:4], root, fan_cfg, fan=fan)      # warm-up: CUDA context and cuDNN autotuning
        rate_f, ok_f, _ = _timed(tasks, root, fan_cfg, fan=fan)
        print(f"FAN (cuda), {worker_count(args.workers)} detection workers: {rate_f:7.2f} images/s ({ok_f} aligned)"
              f"  vs dlib pool x{rate_f / rate_n:.2f}")


if __name__ == "__main__":
    main()
