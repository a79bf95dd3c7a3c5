"""How long a no-op `dvc status` takes on the project's pipeline with a 2,000-photo SFEW tree.

The SFEW tree is a dependency of align_target, so `dvc status` looks at every photo. DVC keeps
the hash of each file in its state database, keyed by inode, size and modification time: only
the first status after the photos arrive reads them; later ones stat them. This script copies
the project (its git-tracked files) into a temporary git repository, fills the raw-data
folders (a FER CSV, N photos of random bytes, which DVC hashes like any photo), records every
stage as done with `dvc commit` over placeholder outputs (nothing is trained), then times:

  first  the first `dvc status` after the photos arrive (hashes every photo)
  no-op  `dvc status` again, nothing changed (median of --repeat runs)
  base   the same no-op status with an empty SFEW folder, in the same process run
  floor  `dvc version`: DVC's start-up (its imports) alone, which every command pays

and prints wall and CPU seconds and no-op / base.

    python benchmarks/bench_dvc_status.py [--photos 2000] [--kb 60] [--repeat 5] [--quick]
"""
from __future__ import annotations

import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

if __package__ in (None, ""):  # run as a file: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import REPO as ROOT, parse, parser, positive_int

DVC = Path(sys.executable).parent / "dvc"
SFEW = "data/external/SFEW_2.0"
EMOTIONS = ("Angry", "Disgust", "Fear", "Happy", "Neutral", "Sad", "Surprise")


def run(cwd: Path, *cmd: str) -> str:
    result = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True,
                            env={**os.environ, "DVC_NO_ANALYTICS": "1"})
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{result.stdout}\n{result.stderr}")
    return result.stdout


def copy_project(dest: Path) -> None:
    dest.mkdir()
    listed = run(ROOT, "git", "ls-files", "-z").split("\0")
    for rel in filter(None, listed):
        if (ROOT / rel).is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / rel, dest / rel)
    (dest / "data/external/fer2013/fer2013.csv").write_text("emotion,pixels,Usage\n0,0 0,Training\n")
    run(dest, "git", "init", "-q")
    run(dest, "git", "add", "-A")
    run(dest, "git", "-c", "user.name=b", "-c", "user.email=b@b", "commit", "-qm", "copy")


def placeholder_outputs(project: Path) -> None:
    """An empty file (or a folder with one) for every declared output, so `dvc commit` can
    record each stage as done without running it."""
    from dvc.repo import Repo

    with Repo(str(project)) as repo:
        outs = [Path(o.fs_path) for s in repo.index.stages for o in s.outs]
    for out in outs:
        if out.suffix:
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text("{}\n" if out.suffix == ".json" else "")
        else:
            out.mkdir(parents=True, exist_ok=True)
            (out / "placeholder.txt").write_text("")


def write_photos(folder: Path, n: int, kb: int) -> None:
    rng = np.random.default_rng(0)
    for i in range(n):
        split = "Train" if i % 3 else "Val"
        path = folder / split / EMOTIONS[i % 7] / f"Synthetic_{i:09d}_00000001.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(rng.integers(0, 256, kb * 1024, dtype=np.uint8).tobytes())


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(project: Path, *args: str) -> tuple[tuple[float, float], str]:
    """(wall seconds, CPU seconds of the dvc process), and its output."""
    start, cpu = time.perf_counter(), _cpu()
    out = run(project, str(DVC), *args)
    return (time.perf_counter() - start, _cpu() - cpu), out


def no_op_status(project: Path, repeat: int) -> tuple[float, float]:
    times = []
    for _ in range(repeat):
        seconds, out = timed(project, "status")
        if "up to date" not in out:
            raise SystemExit(f"expected a no-op status, got:\n{out}")
        times.append(seconds)
    return statistics.median(t[0] for t in times), statistics.median(t[1] for t in times)


def main(argv=None) -> int:
    p = parser(__doc__)
    p.add_argument("--photos", type=positive_int, default=2000)
    p.add_argument("--kb", type=positive_int, default=60, help="size of each photo (SFEW's are tens to hundreds of KB)")
    p.add_argument("--repeat", type=positive_int, default=5)
    args = parse(p, {"photos": 50, "kb": 4, "repeat": 1}, argv)
    with tempfile.TemporaryDirectory(prefix="bench-dvc-status-") as tmp:
        project = Path(tmp) / "repo"
        copy_project(project)
        # DVC's state database (hashes by inode, size, mtime) where this script can clear it.
        state = Path(tmp) / "site-cache"
        run(project, str(DVC), "config", "--local", "core.site_cache_dir", str(state))
        placeholder_outputs(project)
        timed(project, "commit", "-f", "-q")
        base = no_op_status(project, args.repeat)
        floor = [timed(project, "version")[0] for _ in range(args.repeat)]
        floor = statistics.median(t[0] for t in floor), statistics.median(t[1] for t in floor)

        write_photos(project / SFEW, args.photos, args.kb)
        timed(project, "commit", "-f", "-q", "align_target")   # the lock now pins the tree
        # A fresh state database, so the first status reads every photo, as after a fresh copy.
        shutil.rmtree(state)
        first, out = timed(project, "status")
        if "up to date" not in out:
            raise SystemExit(f"expected a no-op status, got:\n{out}")
        noop = no_op_status(project, args.repeat)
    print(f"dvc status, whole pipeline, {args.photos} photos of {args.kb} KB in {SFEW} "
          f"(median of {args.repeat}; CPU = user + system seconds of the dvc process, close to")
    print("the wall time of an idle machine, which a loaded one inflates):")
    print("                                      wall      CPU")
    for label, (wall, cpu) in (("first status (hashes every photo)", first), ("no-op status", noop),
                               ("no-op status, empty SFEW folder", base), ("dvc version (start-up only)", floor)):
        print(f"  {label:34s} {wall:6.2f} s {cpu:6.2f} s")
    print(f"  no-op / empty                      {noop[0] / base[0]:6.2f}x  {noop[1] / base[1]:6.2f}x "
          f"(CPU {noop[1] - base[1]:+.2f} s for the tree)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
