"""Stages train_stage1 and train_stage2: fine-tune the model in one of its two training phases.

stage1 fine-tunes the ImageNet model on the stage-1 split (FER28, FER32, ...); with
`stage1.data: none` the ImageNet-initialised model is written untrained (epoch 0). stage2
fine-tunes the stage-1 model (--init) on EmotiW train, validated on EmotiW val; with
`stage2.data: none` the stage-1 weights are written unchanged as the final model. Each writes
its checkpoint (best validation epoch by default) and per-epoch DVCLive metrics. With
`train.devices: N > 1` the script re-runs itself under torchrun with N DDP processes.

    python stages/train.py stage1 --split S1 --out stage1.pt --live L1
    python stages/train.py stage2 --split S2 --init stage1.pt --out stage2.pt --live L2
"""
import sys
import typing
from pathlib import Path
if __package__ in (None, ""):  # run as a file: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from staged_fer.cli import parser, run_stage
from staged_fer.training.stage import StageName, run


def main(argv=None):
    p = parser(__doc__.splitlines()[0])
    p.add_argument("phase", choices=typing.get_args(StageName),
                   help="stage1 starts from ImageNet, stage2 from the stage-1 checkpoint (--init)")
    p.add_argument("--split", required=True, help="the phase's split folder (build_splits)")
    p.add_argument("--init", help="stage2: the stage-1 checkpoint to start from")
    p.add_argument("--out", required=True, help="checkpoint to write")
    p.add_argument("--live", required=True, help="DVCLive folder for per-epoch metrics")
    args = p.parse_args(argv)
    if args.phase == "stage2" and args.init is None:
        p.error("stage2 starts from the stage-1 checkpoint: --init is required")
    if args.phase == "stage1" and args.init is not None:
        p.error("stage1 starts from ImageNet: --init is for stage2 only")
    run(args.phase, split_path=args.split, out_path=args.out, live_dir=args.live, params_path=args.params,
        init_path=args.init, script=__file__, argv=sys.argv[1:] if argv is None else list(argv))


if __name__ == "__main__":
    sys.exit(run_stage(main))
