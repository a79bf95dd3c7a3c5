"""Queue the paper's experiment grid: both networks x six data schemes = 12 DVC experiments.

    python -m staged_fer.evaluation.grid [--dry-run] [--models ...] [--schemes ...] [-S key=value ...]

`--models` takes any registered model (staged_fer/models/registry.py); without it the grid is
the paper's two networks. Models beyond the paper are marked so in the report.

Each experiment is `dvc exp run --queue --name <model>-<scheme> -S model=... -S stage1.data=...
-S stage2.data=...` plus the extra -S overrides given here (for example a shorter schedule).
Run the queue with `dvc queue start --jobs N`; stages whose inputs and params agree across
experiments (stage 1 of fer28 and fer28-to-emotiw, say) are restored from DVC's run-cache
instead of being trained twice.
"""
from __future__ import annotations

import argparse
import shlex
import sys
from dataclasses import dataclass
from typing import Sequence

from ..models import MODEL_NAMES, PAPER_MODELS


@dataclass(frozen=True)
class Scheme:
    name: str          # experiment name suffix
    stage1: str        # stage1.data
    stage2: str        # stage2.data
    paper: str         # the paper's column heading (Ng et al. 2015, Figure 3)
    fine_tuning: str   # single | double | direct


SCHEMES = (
    Scheme("fer28", "fer28", "none", "FER28", "single"),
    Scheme("fer32", "fer32", "none", "FER32", "single"),
    Scheme("fer32-emotiw", "fer32_emotiw", "none", "FER32+EmotiW", "single"),
    Scheme("fer28-to-emotiw", "fer28", "emotiw", "FER28->EmotiW", "double"),
    Scheme("fer32-to-emotiw", "fer32", "emotiw", "FER32->EmotiW", "double"),
    Scheme("imagenet-to-emotiw", "none", "emotiw", "ImageNet->EmotiW", "direct"),
)
SCHEME_OF = {s.name: s for s in SCHEMES}


def scheme_of_params(stage1: str, stage2: str) -> Scheme | None:
    """The grid scheme a pair of `stage1.data`, `stage2.data` values runs, if any."""
    for s in SCHEMES:
        if (s.stage1, s.stage2) == (stage1, stage2):
            return s
    return None


def experiment_name(model: str, scheme: Scheme) -> str:
    return f"{model}-{scheme.name}"


def commands(models: Sequence[str] = PAPER_MODELS, schemes: Sequence[str] = tuple(SCHEME_OF),
             overrides: Sequence[str] = ()) -> list[list[str]]:
    """The `dvc exp run --queue` argument lists of the grid, model-major."""
    cmds = []
    for model in models:
        for name in schemes:
            scheme = SCHEME_OF[name]
            cmd = ["dvc", "exp", "run", "--queue", "--name", experiment_name(model, scheme),
                   "-S", f"model={model}", "-S", f"stage1.data={scheme.stage1}",
                   "-S", f"stage2.data={scheme.stage2}"]
            for extra in overrides:
                cmd += ["-S", extra]
            cmds.append(cmd)
    return cmds


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--dry-run", action="store_true", help="print the commands, queue nothing")
    p.add_argument("--models", nargs="+", choices=MODEL_NAMES, default=list(PAPER_MODELS),
                   help="registered models to run; the paper's by default")
    p.add_argument("--schemes", nargs="+", choices=list(SCHEME_OF), default=list(SCHEME_OF))
    p.add_argument("-S", "--set-param", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="extra params override for every experiment (repeatable), as for `dvc exp run -S`")
    args = p.parse_args(argv)
    for extra in args.overrides:
        key = extra.split("=", 1)[0].split(":")[-1]
        if "=" not in extra or key in ("model", "stage1.data", "stage2.data"):
            p.error(f"-S {extra!r}: expected KEY=VALUE for a key the grid does not set itself")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse_args(argv)
    cmds = commands(args.models, args.schemes, args.overrides)
    if args.dry_run:
        for cmd in cmds:
            print(shlex.join(cmd))
        return 0
    # DVC's own entry point, in this process: one interpreter start instead of one per
    # experiment, which is most of the time `dvc exp run --queue` takes.
    from dvc.cli import main as dvc_main
    for cmd in cmds:
        print(f"$ {shlex.join(cmd)}", flush=True)
        rc = dvc_main(cmd[1:])
        if rc != 0:
            print(f"error: `{shlex.join(cmd)}` failed with exit code {rc}; experiments queued before it "
                  f"stay queued (`dvc queue status`)", file=sys.stderr)
            return rc
    print(f"queued {len(cmds)} experiments; run them with `dvc queue start --jobs N`")
    return 0


if __name__ == "__main__":
    sys.exit(main())
