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

from staged_fer.cli import parser, run_stage
from staged_fer.params import load_params, read_stage_params
from staged_fer.data.splits import SplitsParams, add_source_arguments, build_split, open_sources, save_split


def main(argv=None) -> None:
    p = parser(__doc__.splitlines()[0])
    add_source_arguments(p)
    p.add_argument("--phase1", required=True, help="output folder: phase-1 split")
    p.add_argument("--phase2", required=True, help="output folder: phase-2 split")
    args = p.parse_args(argv)

    params = read_stage_params(load_params(args.params), SplitsParams)
    paths, data = open_sources(args)
    for phase in ("phase1", "phase2"):
        split = build_split(*params.scheme(phase), data)
        save_split(getattr(args, phase), split, paths)
        sizes = ", ".join(f"{b.name}: {len(b)}" for b in split.train + split.val) or "empty"
        print(f"{phase}: {split.scheme} ({sizes})")


if __name__ == "__main__":
    sys.exit(run_stage(main))
