"""Stage train_stage2: fine-tune the stage-1 model on EmotiW train, validated on EmotiW val.

Writes the final checkpoint (best validation epoch by default) and per-epoch DVCLive metrics.
With `stage2.data: none` the stage-1 weights are written unchanged as the final model. With
`train.devices: N > 1` the script re-runs itself under torchrun with N DDP processes.
"""
import sys
from pathlib import Path
if __package__ in (None, ""):  # run as a file: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from staged_fer.cli import parser, run_stage
from staged_fer.training.stage import run


def main(argv=None):
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--split", required=True, help="stage-2 split file (build_splits)")
    p.add_argument("--init", required=True, help="stage-1 checkpoint to start from")
    p.add_argument("--out", required=True, help="checkpoint to write")
    p.add_argument("--live", required=True, help="DVCLive folder for per-epoch metrics")
    args = p.parse_args(argv)
    run("stage2", split_path=args.split, out_path=args.out, live_dir=args.live, params_path=args.params,
        init_path=args.init, script=__file__, argv=sys.argv[1:] if argv is None else list(argv))


if __name__ == "__main__":
    sys.exit(run_stage(main))
