"""Classify the faces in photos, folders and videos with a trained checkpoint.

Each face is aligned with the `align` params recorded in the checkpoint (the run that made
the model), then classified; every input gets rows in the CSV, including the faces the
aligner rejects and the files it cannot read, each with the reason.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..cli import run_stage
from ..errors import PipelineError
from ..pipeline_paths import pipeline_paths


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m staged_fer.predict", description=__doc__.splitlines()[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image files, folders (searched recursively) or videos")
    p.add_argument("--model", help="checkpoint written by a training phase; none given: the final model, "
                                   "where dvc.yaml's `phase2_model` puts it")
    p.add_argument("--out", default="predictions.csv", help="CSV to write: one row per face, photo or file")
    p.add_argument("--annotate", metavar="DIR", help="also write copies with boxes and labels drawn into DIR")
    p.add_argument("--fps", type=float, default=2.0, help="video frames sampled per second")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                   help="where the model (and FAN landmarks) run; auto = cuda when present")
    p.add_argument("--batch-size", type=int, default=64, help="faces per inference batch")
    p.add_argument("--workers", type=int, default=0, help="processes finding faces (dlib); 0 = one per core")
    p.add_argument("--overwrite", action="store_true", help="replace --out and --annotate if they exist")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def main(argv=None) -> None:
    args = _parser().parse_args(argv)
    if args.model is None:
        args.model = pipeline_paths()["phase2_model"]
    if args.fps <= 0 or args.batch_size < 1 or args.workers < 0:
        raise PipelineError("--fps must be > 0, --batch-size >= 1 and --workers >= 0")
    for path, flag in ((args.out, "--out"), (args.annotate, "--annotate")):
        if path is not None and Path(path).exists() and not args.overwrite:
            raise PipelineError(f"{path}: exists; pass --overwrite to replace it (or choose another {flag})")
    import torch

    if args.device == "cuda" and not torch.cuda.is_available():
        raise PipelineError("--device cuda: no CUDA device is available (use auto or cpu)")
    from ..devices import resolve_device
    from .annotate import Annotations
    from .checkpoint import load_as_recorded
    from .faces import Analyser
    from .run import predict
    from .sources import collect

    sources = collect(args.inputs)
    device = resolve_device(args.device, "--device")
    model = load_as_recorded(args.model, device, {"workers": args.workers, "device": args.device})
    fan = None
    if model.align.landmarks == "fan":
        from ..faces.landmarks import load_fan
        fan = load_fan(str(device))
    run, align = model.run, model.align
    print(f"{args.model}: {run.model}, {run.scheme}{' (synthetic data)' if run.synthetic else ''}; "
          f"faces aligned with its run's align params ({align.landmarks} landmarks, "
          f"min_fit {align.min_fit}, {align.size} px); model on {device}", file=sys.stderr)
    annotations = Annotations(args.annotate, args.fps) if args.annotate else None
    try:
        with Analyser(align, fan) as analyser:
            counts = predict(sources, model, analyser, args.out, fps=args.fps, batch_size=args.batch_size,
                             annotations=annotations, progress=not args.quiet)
        if annotations is not None:
            annotations.commit(replace=args.overwrite)
    except BaseException:
        if annotations is not None:
            annotations.discard()
        raise
    print(f"{counts.line()}; wrote {args.out}"
          + (f" and {annotations.written} annotated files under {args.annotate}" if annotations else ""),
          file=sys.stderr)


if __name__ == "__main__":
    sys.exit(run_stage(main))
