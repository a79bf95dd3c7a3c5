"""Stage build_splits: assemble the train/validation sets of both training phases.

Reads params `schemes` (each data scheme composed from the registered sources' parts, see
staged_fer/data/splits.py), `phase1.data` and `phase2.data` (the scheme of each training phase)
and writes one split folder per training phase: the rows of each bank in its source, with the
sources it draws on linked in (staged_fer/data/splits.py). Both are rewritten on every run,
with identical bytes when their scheme and sources are unchanged, so changing `phase2.data`
never retrains phase 1.
"""
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a file: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from staged_fer.cli import parser, run_phase
from staged_fer.params import load_params, read_stage_params
from staged_fer.data.splits import SOURCES, SplitsParams, build_split, save_split
from staged_fer.errors import PipelineError
from staged_fer.store import open_faces


def main(argv=None) -> None:
    p = parser(__doc__.splitlines()[0])
    for source in SOURCES.values():
        p.add_argument(f"--{source.name}", required=True, help=f"{source.arrays} (.npz or face store)")
    p.add_argument("--phase1", required=True, help="output folder: phase-1 split")
    p.add_argument("--phase2", required=True, help="output folder: phase-2 split")
    args = p.parse_args(argv)

    params = read_stage_params(load_params(args.params), SplitsParams)
    paths = {name: getattr(args, name) for name in SOURCES}
    for path in paths.values():
        if not Path(path).exists():
            raise PipelineError(f"{path}: not found (run `dvc repro` to build it)")
    data = {name: open_faces(path) for name, path in paths.items()}

    for stage in ("phase1", "phase2"):
        split = build_split(*params.scheme(stage), data)
        save_split(getattr(args, stage), split, paths)
        sizes = ", ".join(f"{b.name}: {len(b)}" for b in split.train + split.val) or "empty"
        print(f"{stage}: {split.scheme} ({sizes})")


if __name__ == "__main__":
    sys.exit(run_phase(main))
