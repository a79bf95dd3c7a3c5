"""Stage train_stage1: fine-tune the ImageNet model on the stage-1 split (FER28, FER32, ...).

Writes the checkpoint (best validation epoch by default) and per-epoch DVCLive metrics. With
`stage1.data: none` the ImageNet-initialised model is written untrained (epoch 0). With
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
    p.add_argument("--split", required=True, help="stage-1 split file (build_splits)")
    p.add_argument("--out", required=True, help="checkpoint to write")
    p.add_argument("--live", required=True, help="DVCLive folder for per-epoch metrics")
    args = p.parse_args(argv)
    run("stage1", split_path=args.split, out_path=args.out, live_dir=args.live, params_path=args.params,
        init_path=None, script=__file__, argv=sys.argv[1:] if argv is None else list(argv))


if __name__ == "__main__":
    sys.exit(run_stage(main))
