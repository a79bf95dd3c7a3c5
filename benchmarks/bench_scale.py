"""Peak memory and speed of alignment, splits and a training epoch as the target set grows.

For each N a synthetic class-folder tree of N photos is made (70% Train, 20% Val, 10% Test):
a pool of distinct synthetic SFEW photos, rendered once, linked under N names (each name is
read, detected, landmarked and aligned on its own). Then each step runs as a process of its
own, whose peak resident set the kernel reports (benchmarks/common.py peak_rss: the largest of
the process and of the workers it waited for, measured from a small launcher so that this
process's own size does not count):

  align        stages/align_target.py, dlib landmarks, `--workers` processes, into the face store
  build_splits stages/build_splits.py, the `target` scheme (rows of the store, linked in)
  train epoch  one epoch of AlexNet at 64 px (random weights) on the Train split, its batches
               streamed from the store (the path a split larger than memory takes)

The table gives each step's seconds, photos (or faces) per second and peak RSS, and the spread
of each step's peak RSS over the N (largest / smallest - 1), which must stay within 10%:
memory must not grow with the number of photos. Before it, the aligner's photos per second at
1 and 2 workers against the plain aligner of benchmarks/bench_align.py, in one process on the
same photos.

    python benchmarks/bench_scale.py [--sizes 5000 20000 100000] [--align-size 256] [--workers 2]
    python benchmarks/bench_scale.py --quick     # token sizes: every step, in well under a minute

Disk: each N holds its store (N x align-size^2 bytes, 64 KiB a face at 256) while it runs;
everything is deleted afterwards. Full mode exits 1 when a step's RSS spread exceeds 10%.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

if __package__ in (None, ""):  # run as a file: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import REPO, parse, parser, peak_rss, positive_int, target_tree  # noqa: E402

MAX_SPREAD = 0.10


def build_tree(root: Path, pool: list[Path], n: int) -> None:
    """N photo names in a class-folder tree, hard links to the pool's photos."""
    for i, rel in enumerate(target_tree(n, ".png")):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        os.link(pool[i % len(pool)], root / rel)


def write_params(path: Path, tree: Path, workers: int, size: int, batch: int) -> None:
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["seed"] = 0
    params["target"].update(source="dir", root=str(tree))
    params["align"].update(landmarks="dlib", workers=workers, size=size)
    params["phase1"].update(data="target", epochs=1, batch_size=batch)
    params["phase2"].update(data="none")
    params["models"]["alexnet"].update(weights="none", input_size=64)
    params["input"].update(resize=72)
    params["runtime"].update(device="cpu", devices=1)
    path.write_text(yaml.safe_dump(params, sort_keys=False))


def write_fer(path: Path) -> None:
    """A token decoded FER file: build_splits reads every source, the `target` scheme uses none of it."""
    from staged_fer.io import save_npz
    rng = np.random.default_rng(0)
    save_npz(path, images=rng.integers(0, 256, (21, 48, 48), dtype=np.uint8), labels=np.arange(21) % 7,
             usage=np.array(["Training", "PublicTest", "PrivateTest"] * 7), source=np.array("synthetic"))


def train_epoch(split: str, params: str) -> None:
    """One streamed training epoch (run as this script's own process: see --train-epoch)."""
    import torch
    from staged_fer.data.splits import load_split
    from staged_fer.models import build_model, input_spec
    from staged_fer.training.loop import Trainer
    from staged_fer.training.phase import read_params

    p = read_params(params, "phase1")
    torch.manual_seed(p.seed)
    model = build_model(p.model, p.models, num_classes=7, pretrained=True)
    trainer = Trainer(model, input_spec(p.model, p.models), load_split(split), p.phase, p.input, p.runtime,
                      p.seed, torch.device("cpu"), progress=False, memory_budget=0)
    started = time.perf_counter()
    trainer.train_one_epoch(0)
    print(json.dumps({"faces": len(trainer.train_data), "seconds": time.perf_counter() - started}))


def run_size(work: Path, pool: list[Path], n: int, args) -> dict:
    tree, data = work / f"tree{n}", work / f"data{n}"
    data.mkdir(parents=True)
    build_tree(tree, pool, n)
    params = data / "params.yaml"
    write_params(params, tree, args.workers, args.align_size, args.batch)
    write_fer(data / "fer.npz")
    py = sys.executable
    rows = {}
    seconds, rss = peak_rss([py, "stages/align_target.py", "--params", str(params), "--out", str(data / "target"),
                             "--log", str(data / "log.csv"), "--reports", str(data / "reports"),
                             "--metrics", str(data / "align.json")], data / "align.txt")
    rows["align"] = (seconds, n / seconds, rss)
    faces = len(np.load(data / "target" / "index.npz")["labels"])
    seconds, rss = peak_rss([py, "stages/build_splits.py", "--params", str(params), "--fer", str(data / "fer.npz"),
                             "--target", str(data / "target"), "--phase1", str(data / "phase1"),
                             "--phase2", str(data / "phase2")], data / "splits.txt")
    rows["build_splits"] = (seconds, faces / seconds, rss)
    seconds, rss = peak_rss([py, str(Path(__file__).resolve()), "--train-epoch", str(data / "phase1"), str(params)],
                            data / "train.txt")
    epoch = json.loads((data / "train.txt").read_text().strip().splitlines()[-1])
    rows["train epoch"] = (seconds, epoch["faces"] / epoch["seconds"], rss)
    shutil.rmtree(tree)
    shutil.rmtree(data)
    return rows


def compare_workers(work: Path, pool: list[Path], n: int, size: int) -> list[tuple[str, float]]:
    """Photos/s of the stage's aligner at 1 and 2 workers and of the plain aligner, on n photos."""
    from benchmarks.bench_align import PlainAligner
    from staged_fer.params import parse
    from staged_fer.faces.align_params import AlignConfig
    from staged_fer.faces.pipeline import align_all
    from staged_fer.faces.search import ImageTask

    tree = work / "compare"
    build_tree(tree, pool, n)
    paths = sorted(p.relative_to(tree).as_posix() for p in tree.rglob("*.png"))
    tasks = [ImageTask(p, p.split("/")[0], -1) for p in paths]
    raw = yaml.safe_load((REPO / "params.yaml").read_text())["align"]
    rates = []
    for workers in (1, 2):
        cfg = parse(AlignConfig, {**raw, "landmarks": "dlib", "workers": workers, "size": size}, "align")
        started = time.perf_counter()
        align_all(tasks, tree, cfg)
        rates.append((f"stage aligner, {workers} worker{'s' if workers > 1 else ''}", n / (time.perf_counter() - started)))
    plain = PlainAligner(parse(AlignConfig, {**raw, "landmarks": "dlib", "size": size}, "align"))
    started = time.perf_counter()
    for p in paths:
        plain(tree / p)
    rates.append(("plain aligner (one process)", n / (time.perf_counter() - started)))
    shutil.rmtree(tree)
    return rates


def main() -> int:
    ap = parser(__doc__)
    ap.add_argument("--sizes", type=positive_int, nargs="+", default=[5000, 20000, 100000])
    ap.add_argument("--align-size", type=positive_int, default=256, help="align.size: the side of the stored faces")
    ap.add_argument("--workers", type=positive_int, default=2, help="align.workers for the align step")
    ap.add_argument("--batch", type=positive_int, default=64, help="training batch")
    ap.add_argument("--pool", type=positive_int, default=10,
                    help="distinct photos per Train class (Val: half, Test: 5x)")
    ap.add_argument("--compare", type=positive_int, default=300,
                    help="photos for the 1-vs-2-workers and plain comparison")
    ap.add_argument("--train-epoch", nargs=2, metavar=("SPLIT", "PARAMS"), help=argparse.SUPPRESS)
    # Two token sizes (the spread needs two), one align worker (the comparison runs two).
    args = parse(ap, {"sizes": [12, 24], "pool": 1, "compare": 6, "batch": 8, "align_size": 128, "workers": 1})
    if args.train_epoch:
        train_epoch(*args.train_epoch)
        return 0
    from staged_fer.synthetic.sfew import write_sfew_tree

    with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
        work = Path(tmp)
        write_sfew_tree(work / "pool", args.pool, max(1, args.pool // 2), 5 * args.pool, 0)
        pool = sorted((work / "pool").rglob("*.png"))
        print(f"pool: {len(pool)} distinct synthetic photos; align.size {args.align_size}; "
              f"{os.cpu_count()} cores", flush=True)
        rates = compare_workers(work, pool, args.compare, args.align_size)
        plain = rates[-1][1]
        print(f"\nalignment on {args.compare} photos, in one process:")
        for name, rate in rates:
            print(f"  {name:32s} {rate:7.1f} photos/s  ({rate / plain:.2f}x plain)")
        print(f"  2 workers / 1 worker: {rates[1][1] / rates[0][1]:.2f}x", flush=True)

        results = {}
        for n in args.sizes:
            results[n] = run_size(work, pool, n, args)
            print(f"N = {n}: " + ", ".join(f"{k} {s:.0f} s" for k, (s, _, _) in results[n].items()), flush=True)

    steps = list(results[args.sizes[0]])
    print(f"\n| step | " + " | ".join(f"N = {n:,}" for n in args.sizes) + " | RSS spread |")
    print("|---|" + "---|" * (len(args.sizes) + 1))
    flat = True
    for step in steps:
        rss = [results[n][step][2] for n in args.sizes]
        spread = max(rss) / min(rss) - 1
        flat &= spread <= MAX_SPREAD
        cells = [f"{s:.0f} s, {r:.1f}/s, {m / 2**20:.0f} MiB" for s, r, m in (results[n][step] for n in args.sizes)]
        print(f"| {step} | " + " | ".join(cells) + f" | {spread:.1%} |")
    print("(each cell: wall seconds, photos/s for align or faces/s otherwise, peak RSS)")
    if args.quick:
        return 0
    print(f"peak RSS {'flat' if flat else 'NOT flat'} in N (spread within {MAX_SPREAD:.0%}: {flat})")
    return 0 if flat else 1


if __name__ == "__main__":
    sys.exit(main())
