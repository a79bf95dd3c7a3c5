"""Stages train_phase1 and train_phase2: fine-tune the model in one of its two training phases.

phase1 fine-tunes the ImageNet model on the phase-1 split (FER28, FER32, ...); with
`phase1.data: none` the ImageNet-initialised model is written untrained (epoch 0). phase2
fine-tunes the phase-1 model (--init) on the target set's Train, validated on its Val; with
`phase2.data: none` the phase-1 weights are written unchanged as the final model. Each writes
its checkpoint (best validation epoch by default) and per-epoch DVCLive metrics. With
`runtime.devices: N > 1` the script re-runs itself under torchrun with N DDP processes.

    python stages/train.py phase1 --split S1 --out phase1.pt --live L1
    python stages/train.py phase2 --split S2 --init phase1.pt --out phase2.pt --live L2
"""
import sys
import typing
from pathlib import Path
if __package__ in (None, ""):  # run as a file: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from staged_fer.cli import parser, run_stage
from staged_fer.training.phase import PhaseName, run


def main(argv=None):
    p = parser(__doc__.splitlines()[0])
    p.add_argument("phase", choices=typing.get_args(PhaseName),
                   help="phase1 starts from ImageNet, phase2 from the phase-1 checkpoint (--init)")
    p.add_argument("--split", required=True, help="the phase's split folder (build_splits)")
    p.add_argument("--init", help="phase2: the phase-1 checkpoint to start from")
    p.add_argument("--out", required=True, help="checkpoint to write")
    p.add_argument("--live", required=True, help="DVCLive folder for per-epoch metrics")
    args = p.parse_args(argv)
    if args.phase == "phase2" and args.init is None:
        p.error("phase2 starts from the phase-1 checkpoint: --init is required")
    if args.phase == "phase1" and args.init is not None:
        p.error("phase1 starts from ImageNet: --init is for phase2 only")
    run(args.phase, split_path=args.split, out_path=args.out, live_dir=args.live, params_path=args.params,
        init_path=args.init, script=__file__, argv=sys.argv[1:] if argv is None else list(argv))


if __name__ == "__main__":
    sys.exit(run_stage(main))
