"""What DVC costs with a large target tree recorded by `make data`, as folders or as archives:
the record, `dvc status` (first and no-op) and a queued experiment, each against the same with
a tree of a few photos.

`make data` (staged_fer/data/raw_record.py) records each split of the target tree with
`dvc add`, and align_target depends on the whole tree, so every `dvc status` and every queued
experiment looks at all of it: at every photo with the split folders recorded as they are
(layout `folders`), at three files with each split packed into one zip archive first
(`make data PACK=1`, staged_fer/data/raw_pack.py: layout `archives`). For each layout this
script copies the project (its git-tracked files) into a temporary git repository, places a
token FER CSV and a target tree of N small JPEGs (70% Train, 20% Val in the seven class
folders, 10% Test; a few distinct encodings, each file made unique by a JPEG comment holding
its number, so DVC hashes and stores every one), records it and commits the records, records
every stage as done over placeholder outputs (`dvc commit`: nothing is trained), then times:

  pack (PACK=1)       (archives) `python -m staged_fer.data.raw_pack`: each split folder into
                      its archive
  make data           `python -m staged_fer.data.raw_record`: hashes every file, links it into
                      the cache
  raw_record --check  `python -m staged_fer.data.raw_record --check`, which `make grid` runs first
  first status        the first `dvc status`, DVC's state database cleared (it keeps each file's
                      hash by inode, size and modification time), as in a fresh clone
  no-op status        `dvc status` again, nothing changed (median of --repeat runs)
  queued run          one experiment with nothing to rerun: `dvc exp run --queue`, then the
                      queue's worker in the foreground (`dvc exp run --run-all`, as
                      `make grid GPUS=...` runs it): the experiment's temporary copy, the checkout
                      of the recorded tree into it and the status that finds every stage done,
                      what each queued experiment pays before its first stage runs

The same steps run on a tree of --tiny photos in the same process run: the ratio N / tiny is
what the tree costs. `dvc version` (DVC's start-up, which every command pays) is the floor.
Wall seconds, and CPU seconds (user + system) of the processes waited for, which a loaded
machine inflates less; the queue's worker runs detached, so its CPU is not counted.

    python benchmarks/bench_dvc_status.py [--photos 300000] [--kb 4] [--repeat 3]
                                          [--layouts folders archives] [--quick]

Disk: the tree, placed and in DVC's cache (hard links where the file system allows: .dvc/config's
cache.type), and while a split is packed its archive beside it; in the temporary folder
(TMPDIR), deleted afterwards.
"""
from __future__ import annotations

import resource
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

if __package__ in (None, ""):  # run as a file: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import REPO as ROOT, parse, parser, positive_int, target_tree, tool  # noqa: E402

SFEW = "data/external/SFEW_2.0"
FER_CSV = "data/external/fer2013/fer2013.csv"
ENCODINGS = 8   # distinct JPEG encodings the photos are made from
RAW_RECORD = (sys.executable, "-m", "staged_fer.data.raw_record")
RAW_PACK = (sys.executable, "-m", "staged_fer.data.raw_pack")
# How `make data` records the tree: each split folder as it is, or packed into one zip archive
# per split first (`make data PACK=1`).
LAYOUTS = {"folders": "`make data`: a record per split folder, DVC tracks every photo",
           "archives": "`make data PACK=1`: each split folder packed into its zip archive, a record per archive"}


@dataclass(frozen=True)
class Timing:
    wall: float
    cpu: float   # user + system seconds of the processes waited for


def copy_project(dest: Path) -> None:
    """The project's git-tracked files in a git repository of their own, with a token FER CSV."""
    dest.mkdir()
    listed = tool(ROOT, "git", "ls-files", "-z").stdout.split("\0")
    for rel in filter(None, listed):
        if (ROOT / rel).is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / rel, dest / rel)
    (dest / FER_CSV).write_text("emotion,pixels,Usage\n0,0 0,Training\n")
    tool(dest, "git", "init", "-q")
    commit(dest, "copy")


def commit(project: Path, message: str) -> None:
    tool(project, "git", "add", "-A")
    tool(project, "git", "commit", "-qm", message)


def placeholder_outputs(project: Path) -> None:
    """An empty file (or a folder with one) for every output of dvc.yaml's stages (not of the
    records `make data` wrote), so `dvc commit` can record each stage as done without running it."""
    from dvc.repo import Repo

    with Repo(str(project)) as repo:
        outs = [Path(o.fs_path) for s in repo.index.stages if not s.is_data_source for o in s.outs]
    for out in outs:
        if out.suffix:
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text("{}\n" if out.suffix == ".json" else "")
        else:
            out.mkdir(parents=True, exist_ok=True)
            (out / "placeholder.txt").write_text("")


def jpeg_encodings(kb: int) -> list[bytes]:
    """ENCODINGS distinct grey-noise JPEGs of about ``kb`` KB each."""
    import cv2

    rng = np.random.default_rng(0)
    side = max(8, round((kb * 1024) ** 0.5))   # noise at quality 90: about a byte per pixel
    return [cv2.imencode(".jpg", rng.integers(0, 256, (side, side), dtype=np.uint8),
                         [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes() for _ in range(ENCODINGS)]


def numbered(jpeg: bytes, i: int) -> bytes:
    """``jpeg`` with a comment segment holding ``i`` after its start marker: decoders skip it,
    so the file shows the same picture, but its bytes (and DVC's hash) are its own."""
    note = f"{i:09d}".encode()
    return jpeg[:2] + b"\xff\xfe" + (len(note) + 2).to_bytes(2, "big") + note + jpeg[2:]


def write_photos(root: Path, n: int, encodings: list[bytes]) -> None:
    from staged_fer.faces.decode import decode_gray

    decode_gray(numbered(encodings[0], 0))   # a photo the aligner reads, not just distinct bytes
    for i, rel in enumerate(target_tree(n, ".jpg")):
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(numbered(encodings[i % len(encodings)], i))


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(project: Path, *cmd: str) -> tuple[Timing, str]:
    """How long ``cmd`` took in ``project``, and its output."""
    start, cpu = time.perf_counter(), _cpu()
    out = tool(project, *cmd).stdout
    return Timing(time.perf_counter() - start, _cpu() - cpu), out


def median(timings: list[Timing]) -> Timing:
    return Timing(statistics.median(t.wall for t in timings), statistics.median(t.cpu for t in timings))


def up_to_date(project: Path) -> Timing:
    seconds, out = timed(project, "dvc", "status")
    if "up to date" not in out:
        raise SystemExit(f"expected a no-op status, got:\n{out}")
    return seconds


def queued_run(project: Path, name: str) -> Timing:
    """One queued experiment that reruns nothing, through the queue's worker."""
    tool(project, "dvc", "exp", "run", "--queue", "--name", name)
    seconds, _ = timed(project, "dvc", "exp", "run", "--run-all")
    status = tool(project, "dvc", "queue", "status").stdout
    if not any(row.split()[1:2] == [name] and row.split()[-1] == "Success" for row in status.splitlines()):
        raise SystemExit(f"the queued experiment {name} did not succeed:\n{status}"
                         + tool(project, "dvc", "queue", "logs", name, check=False).stdout)
    logs = tool(project, "dvc", "queue", "logs", name).stdout
    if "Stage 'align_target' didn't change, skipping" not in logs:   # the tree is not there as recorded
        raise SystemExit(f"the queued experiment {name} did not find align_target done:\n{logs}")
    return seconds


def measure(work: Path, photos: int, encodings: list[bytes], repeat: int, layout: str) -> dict[str, Timing]:
    """Every step's timing with a tree of ``photos`` photos recorded as ``layout``, in a project
    of its own under ``work``."""
    project = work / f"repo-{layout}-{photos}"
    copy_project(project)
    # DVC's state database where this script can clear it.
    state = work / f"site-cache-{layout}-{photos}"
    tool(project, "dvc", "config", "--local", "core.site_cache_dir", str(state))
    write_photos(project / SFEW, photos, encodings)
    found: dict[str, Timing] = {}

    def took(step: str, timing: Timing) -> None:
        found[step] = timing
        print(f"{layout}, {photos} photos: {step} {timing.wall:.1f} s", file=sys.stderr, flush=True)   # progress

    if layout == "archives":
        took("pack (PACK=1)", timed(project, *RAW_PACK)[0])
    took("make data", timed(project, *RAW_RECORD)[0])
    commit(project, "raw data")
    placeholder_outputs(project)
    tool(project, "dvc", "commit", "-f", "-q", "dvc.yaml")   # the stages, not the records
    commit(project, "every stage done")
    took("raw_record --check", timed(project, *RAW_RECORD, "--check")[0])
    shutil.rmtree(state)   # as after a fresh clone: the first status reads every photo
    took("first status", up_to_date(project))
    took("no-op status", median([up_to_date(project) for _ in range(repeat)]))
    took("queued run", queued_run(project, "nothing-to-rerun"))
    shutil.rmtree(project)
    return found


def table(layout: str, large: dict[str, Timing], tiny: dict[str, Timing], photos: int, few: int) -> None:
    print(f"\n{layout}: {LAYOUTS[layout]}")
    print(f"  {'':32s} {f'{photos} photos':>17s} {f'{few} photos':>17s} {'ratio':>7s}")
    print(f"  {'':32s} {'wall':>8s} {'CPU':>8s} {'wall':>8s} {'CPU':>8s} {'wall':>7s}")
    for step, t in large.items():
        base = tiny[step]
        cpu = ("-", "-") if step == "queued run" else (f"{t.cpu:.2f}", f"{base.cpu:.2f}")
        print(f"  {step:32s} {t.wall:8.2f} {cpu[0]:>8s} {base.wall:8.2f} {cpu[1]:>8s} {t.wall / base.wall:6.1f}x")
    print(f"  queued run per experiment: {large['queued run'].wall - tiny['queued run'].wall:+.1f} s for the tree")


def main(argv=None) -> int:
    p = parser(__doc__)
    p.add_argument("--photos", type=positive_int, default=300_000)
    p.add_argument("--tiny", type=positive_int, default=10, help="photos of the baseline tree")
    p.add_argument("--kb", type=positive_int, default=4, help="size of each photo")
    p.add_argument("--repeat", type=positive_int, default=3)
    p.add_argument("--layouts", nargs="+", choices=list(LAYOUTS), default=list(LAYOUTS),
                   help="how `make data` records the tree (each measured on a tree of its own)")
    args = parse(p, {"photos": 50, "repeat": 1}, argv)
    encodings = jpeg_encodings(args.kb)
    size = statistics.mean(map(len, encodings)) / 1024
    found = {}
    with tempfile.TemporaryDirectory(prefix="bench-dvc-status-") as tmp:
        work = Path(tmp)
        floor = median([timed(work, "dvc", "version")[0] for _ in range(args.repeat)])
        for layout in args.layouts:
            found[layout] = (measure(work, args.photos, encodings, args.repeat, layout),
                             measure(work, args.tiny, encodings, args.repeat, layout))
    print(f"DVC with {args.photos} photos of {size:.1f} KB ({args.photos * size / 1024:.0f} MB) in {SFEW}, against "
          f"{args.tiny} photos; no-op status: median of {args.repeat}; CPU: user + system seconds of the commands")
    for layout, (large, tiny) in found.items():
        table(layout, large, tiny, args.photos, args.tiny)
    print(f"\ndvc version (start-up only): {floor.wall:.2f} s wall, {floor.cpu:.2f} s CPU")
    if len(found) == 2:
        (folders, _), (archives, _) = found["folders"], found["archives"]
        packed = archives["pack (PACK=1)"].wall + archives["make data"].wall   # recording archives includes packing
        print(f"archives / folders at {args.photos} photos, wall (archives' make data with its packing): "
              + ", ".join(f"{step} {(packed if step == 'make data' else archives[step].wall) / t.wall:.2f}x"
                          for step, t in folders.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
