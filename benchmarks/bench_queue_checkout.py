"""What one queued experiment costs, in seconds and disk, with a large recorded photo tree, per
DVC `cache.type`.

A queued or --temp experiment runs in a fresh copy of the repository (DVC's temporary executor,
the one its queue workers use) into which DVC checks out every recorded output from the cache:
with `make data`, the whole raw photo tree. How it puts each file there is `cache.type`:
copy (DVC's default where reflink fails, as on ext4), symlink, hardlink, reflink.

This script builds a minimal DVC project in a temporary folder: N photos of random bytes
recorded with `dvc add photos` (what `make data` does), and one stage that depends on the tree
and measures, from inside the experiment's copy, the bytes of photo files that are not shared
with the cache (a copy's own blocks). For each `cache.type` (committed, as .dvc/config is) it
times `dvc exp run --temp --force` and prints seconds and the experiment copy's extra disk,
beside the same experiment with a one-file tree (the executor's fixed cost). A type the file
system cannot do (reflink on ext4) fails, and DVC's line says so.

    python benchmarks/bench_queue_checkout.py [--photos 20000] [--kb 16] [--quick]
"""
from __future__ import annotations

import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

if __package__ in (None, ""):  # run as a file: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import parse, parser, positive_int, tool  # noqa: E402

TYPES = ("copy", "symlink", "hardlink", "reflink")

# The stage: the bytes of photos in this copy not shared with the cache (copies' own blocks;
# hard links share theirs, symlinks and reflinks hold none of their own until written).
MEASURE = """
import json, os, sys
own = files = 0
for folder, _, names in os.walk("photos"):
    for name in names:
        st = os.lstat(os.path.join(folder, name))
        files += 1
        if not os.path.islink(os.path.join(folder, name)) and st.st_nlink == 1:
            own += st.st_blocks * 512
json.dump({"files": files, "own_bytes": own}, open(sys.argv[1], "w"))
"""


def project(dest: Path, photos: int, kb: int, result: Path) -> Path:
    dest.mkdir()
    tool(dest, "git", "init", "-q")
    tool(dest, "dvc", "init", "-q")
    tool(dest, "dvc", "config", "core.analytics", "false")
    rng = np.random.default_rng(0)
    for i in range(photos):
        folder = dest / "photos" / f"{i // 1000:03d}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{i:06d}.png").write_bytes(rng.bytes(kb * 1024))
    if photos == 0:
        (dest / "photos").mkdir()
        (dest / "photos" / "README").write_text("no photos\n")
    (dest / "measure.py").write_text(MEASURE)
    (dest / "dvc.yaml").write_text("stages:\n  measure:\n"
                                   f"    cmd: python measure.py {result} && echo done > done.txt\n"
                                   "    deps: [photos, measure.py]\n    outs: [done.txt]\n")
    tool(dest, "dvc", "add", "-q", "photos")
    tool(dest, "git", "add", "-A")
    tool(dest, "git", "commit", "-qm", "tree")
    return dest


def one(dest: Path, cache_type: str, result: Path) -> tuple[float, dict] | str:
    tool(dest, "dvc", "config", "cache.type", cache_type)
    tool(dest, "git", "commit", "-qam", cache_type)
    result.unlink(missing_ok=True)
    start = time.perf_counter()
    done = tool(dest, "dvc", "exp", "run", "--temp", "--force", check=False)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        return (done.stderr.strip().splitlines() or ["?"])[-1]
    return seconds, json.loads(result.read_text())


def main(argv=None) -> int:
    p = parser(__doc__)
    p.add_argument("--photos", type=positive_int, default=20000)
    p.add_argument("--kb", type=positive_int, default=16, help="size of each photo")
    args = parse(p, {"photos": 100, "kb": 1}, argv)
    tmp = Path(tempfile.mkdtemp(prefix="bench-queue-checkout-"))
    try:
        print(f"{args.photos} photos of {args.kb} KB ({args.photos * args.kb / 1024:.0f} MB), one "
              f"`dvc exp run --temp` each; extra disk = photo bytes the experiment's copy does not share "
              f"with the cache", flush=True)
        rows, failures = [], []
        result = tmp / "result.json"
        # The executor's fixed cost: the same experiment with a one-file tree (any cache.type).
        base = one(project(tmp / "empty", 0, args.kb, result), "copy", result)
        seconds, measured = base
        rows.append(("(one-file tree)", f"{seconds:.1f}", f"{measured['own_bytes'] / 2**20:.1f}",
                     str(measured["files"])))
        tree = project(tmp / "tree", args.photos, args.kb, result)
        for cache_type in TYPES:
            got = one(tree, cache_type, result)
            if isinstance(got, str):
                rows.append((cache_type, "failed", "", ""))
                failures.append(f"{cache_type}: {got}")
                continue
            seconds, measured = got
            rows.append((cache_type, f"{seconds:.1f}", f"{measured['own_bytes'] / 2**20:.1f}", str(measured["files"])))
        header = ("cache.type", "experiment s", "extra disk MB", "photos seen")
        widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
        for row in (header, *rows):
            print("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())
        for line in failures:   # reflink where the file system cannot clone (ext4): DVC's own line
            print(line)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
