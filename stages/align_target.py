"""Stage align_target: detect, landmark and align the EmotiW/SFEW faces as in the paper.

Reads params `seed`, `target` (where the photos come from) and `align` (detector, landmark
backend, fit threshold, crop box). Writes the aligned 256x256 faces as a face store (a folder
of memory-mapped shards and their index, staged_fer/store.py) block by block as they are
made, so a killed run resumes from its finished blocks (staged_fer/faces/blocks.py); a
per-image CSV log with every decision, metrics (the share of photos aligned, overall and by each detection
attempt), and under --reports the contact sheets and alignment.json (counts per split and
outcome, detection and alignment rates per split, the attempts' shares). With
target.source=synthetic a synthetic SFEW tree is generated in a temporary folder, aligned
exactly like a real one, then removed.
"""
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

if __package__ in (None, ""):  # run as a file: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from staged_fer.cli import parser, run_stage
from staged_fer.params import load_params, read_stage_params
from staged_fer.data.target import TargetConfig, scan_sfew, warn_empty
from staged_fer.data.raw_snapshot import check_unchanged, snapshot
from staged_fer.faces.photos import Photos
from staged_fer.errors import PipelineError
from staged_fer.faces.align_params import AlignConfig
from staged_fer.faces.blocks import BlockStore
from staged_fer.faces.contact_sheet import SheetPicks
from staged_fer.faces.outputs import LOG_COLUMNS, headline, log_rows, metrics, write_reports
from staged_fer.faces.pipeline import Tally
from staged_fer.faces.pool import worker_count
from staged_fer.faces.record import align_record_json
from staged_fer.io import write_csv, write_json
from staged_fer.workdir import key_of


@dataclass(frozen=True)
class AlignParams:
    seed: int              # the synthetic SFEW generator
    target: TargetConfig   # where the photos come from
    align: AlignConfig     # detector, landmarks, fit thresholds, crop box


def _landmarker(cfg: AlignConfig):
    """FAN for the main process, on `align.device`, or None: dlib then runs inside the workers."""
    if cfg.landmarks == "dlib":
        return None
    from staged_fer.devices import resolve_device
    from staged_fer.faces.landmarks import load_fan
    from staged_fer.gpus import acquire
    acquire(1, "align_target", cpu_only=cfg.device == "cpu")   # a GPU of its own in a `make grid GPUS=...` run
    return load_fan(resolve_device(cfg.device, "align.device").type)


def _progress():
    start = time.perf_counter()

    def report(done: int, total: int) -> None:   # called once a block is written
        rate = done / max(time.perf_counter() - start, 1e-9)
        print(f"  {done}/{total} images ({rate:.1f} images/s)", flush=True)
    return report


def _align(root: Path, target, align, fan, work_root: Path, key_parts: tuple) -> tuple:
    """Scan the tree and align the photos the work folder does not hold finished yet."""
    if target.source == "dir":
        scan = scan_sfew(root, "target.root", target.splits, target.label_of())
    else:
        scan = scan_sfew(root, "synthetic SFEW tree")
    warn_empty(scan)
    photos = ((t.path, t.split, t.label, t.skip_reason) for t in scan.tasks)   # hashed one at a time
    work = BlockStore(work_root, key_of(*key_parts, photos), scan.tasks, align.size)
    work.drop_stale()
    todo = sum(len(work.blocks[k]) for k in work.pending())
    where = root if target.source == "dir" else "a synthetic SFEW tree"
    resumed = f" ({len(scan.tasks) - todo} aligned before, kept in {work.dir})" if todo < len(scan.tasks) else ""
    print(f"aligning {todo} of {len(scan.tasks)} images from {where}{resumed} with {align.landmarks} "
          f"landmarks, {worker_count(align.workers)} worker(s)", flush=True)
    work.align(Photos(root, scan.archived), align, fan, progress=_progress())
    return scan, work


def main(argv=None) -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--out", required=True, help="output folder: the face store (shards and index)")
    p.add_argument("--log", required=True, help="output: per-image log (.csv)")
    p.add_argument("--reports", required=True, help="output folder: contact sheets and every count (alignment.json)")
    p.add_argument("--metrics", required=True, help="output: alignment rate, overall and by detection attempt (.json)")
    args = p.parse_args(argv)

    params = read_stage_params(load_params(args.params), AlignParams)
    seed, target, align = params.seed, params.target, params.align
    if target.source == "dir" and not Path(target.root).is_dir():
        raise PipelineError(f"target.root: folder {target.root} not found; extract SFEW 2.0 there "
                            "(Train/<Emotion>/*, Val/<Emotion>/*, optional Test/*), or another class-folder "
                            "tree with target.splits and target.labels, or set target.source: synthetic")
    fan = _landmarker(align)
    # Finished blocks outlive a killed run here (DVC deletes the outputs before a rerun); the
    # key holds all that the faces depend on, not `workers` or `device`.
    work_root = Path(args.params).resolve().parent / ".resume" / "align_target"
    record = align_record_json(align)
    key = (seed, asdict(target), record)

    if target.source == "dir":
        # target.root is a dependency of the stage in dvc.yaml, hashed again by DVC after the run:
        # a tree that changed meanwhile must not leave outputs of one tree beside the hash of another.
        before = snapshot(target.root)
        scan, work = _align(Path(target.root), target, align, fan, work_root, (*key, before.digest))
        check_unchanged(target.root, before, "target.root")
    else:
        from staged_fer.synthetic.sfew import write_sfew_tree
        with tempfile.TemporaryDirectory(prefix="sfew-synthetic-") as tmp:
            root = Path(tmp) / "SFEW_2.0"
            s = target.synthetic
            write_sfew_tree(root, s.train_per_class, s.val_per_class, s.test, seed)
            scan, work = _align(root, target, align, fan, work_root, key)
    synthetic = target.source == "synthetic"

    # The log, counts and sheets from the finished blocks, one block in memory at a time.
    write_csv(args.log, LOG_COLUMNS, (row for results in work.each_block() for row in log_rows(results)))
    tally, picks = Tally(), SheetPicks()
    for results in work.each_block():
        tally.add(results)
        picks.add(results)
    summary = {**metrics(tally, synthetic, align.landmarks, scan.empty), "skipped_classes": scan.skipped}
    write_reports(args.reports, picks, synthetic, summary)
    write_json(args.metrics, headline(summary))
    # The align record travels into the splits and checkpoints.
    faces = work.publish(args.out, source="synthetic" if synthetic else "dir", align=record)
    work.clear()
    for split, c in summary["counts"].items():
        print(f"{split}: " + ", ".join(f"{k} {v}" for k, v in c.items()))
    print(f"wrote {faces} faces to {args.out}")


if __name__ == "__main__":
    sys.exit(run_stage(main))
