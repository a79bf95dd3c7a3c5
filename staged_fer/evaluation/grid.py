"""Queue the paper's experiment grid: both networks x six recipes = 12 DVC experiments.

    python -m staged_fer.evaluation.grid [--dry-run] [--models ...] [--recipes ...] [--seeds ...]
                                         [--gpus 0,1,...] [-S key=value ...]

`--models` takes any registered model (staged_fer/models/registry.py); without it the grid is
the paper's two networks. Models beyond the paper are marked so in the report. `--seeds`
runs every cell once per seed (`-S seed=<s>`), named `<model>-<recipe>-s<seed>`.

Each experiment is `dvc exp run --queue --name <model>-<recipe> -S model=... -S phase1.data=...
-S phase2.data=...` plus the extra -S overrides given here (for example a shorter schedule).
Before queueing, the raw data is checked to be recorded as placed (staged_fer/data/raw_record.py),
since queued experiments see only what is recorded. Without `--gpus` the queue is left for
`dvc queue start --jobs N`. With `--gpus` the queued experiments then run through DVC's own
foreground runner, `dvc exp run --run-all --jobs <ids / runtime.devices>`, with the ids in
``STAGED_FER_GPUS``, so each training and evaluation stage takes GPUs of its own
(staged_fer/gpus.py). Stages whose inputs and params agree across experiments (phase 1 of fer28
and fer28-to-target, say) are restored from DVC's run-cache instead of being trained twice.
"""
from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from ..cli import dvc_output
from ..params import load_params
from ..data.raw_record import check as check_raw_data
from ..errors import PipelineError
from ..gpus import ENV_GPUS, check_listed, parse_ids
from ..models import MODEL_NAMES, PAPER_MODELS


@dataclass(frozen=True)
class Recipe:
    """One column of the paper's grid: the data scheme of each training phase (a grid cell is
    a model on a recipe)."""
    name: str          # experiment name suffix
    phase1: str        # phase1.data
    phase2: str        # phase2.data
    paper: str         # the paper's column heading (Ng et al. 2015, Figure 3)
    fine_tuning: str   # single | double | direct


RECIPES = (
    Recipe("fer28", "fer28", "none", "FER28", "single"),
    Recipe("fer32", "fer32", "none", "FER32", "single"),
    Recipe("fer32-target", "fer32_target", "none", "FER32+EmotiW", "single"),
    Recipe("fer28-to-target", "fer28", "target", "FER28->EmotiW", "double"),
    Recipe("fer32-to-target", "fer32", "target", "FER32->EmotiW", "double"),
    Recipe("imagenet-to-target", "none", "target", "ImageNet->EmotiW", "direct"),
)
RECIPE_OF = {s.name: s for s in RECIPES}


def recipe_of_params(phase1: str, phase2: str) -> Recipe | None:
    """The recipe a pair of `phase1.data`, `phase2.data` values runs, if any."""
    for s in RECIPES:
        if (s.phase1, s.phase2) == (phase1, phase2):
            return s
    return None


def experiment_name(model: str, recipe: Recipe, seed: int | None = None) -> str:
    return f"{model}-{recipe.name}" + ("" if seed is None else f"-s{seed}")


def commands(models: Sequence[str] = PAPER_MODELS, recipes: Sequence[str] = tuple(RECIPE_OF),
             overrides: Sequence[str] = (), seeds: Sequence[int] | None = None,
             pull: bool = False) -> list[list[str]]:
    """The `dvc exp run --queue` argument lists of the grid, model-major, then recipe, then seed.
    ``seeds`` None: one run per cell with params.yaml's seed, named without a seed. ``pull``:
    `--pull`, so a stage found in the run-cache whose outputs are only on the DVC remote is
    restored from there."""
    cmds = []
    for model in models:
        for name in recipes:
            recipe = RECIPE_OF[name]
            for seed in seeds if seeds is not None else (None,):
                cmd = ["dvc", "exp", "run", "--queue", *(["--pull"] if pull else []),
                       "--name", experiment_name(model, recipe, seed),
                       "-S", f"model={model}", "-S", f"phase1.data={recipe.phase1}",
                       "-S", f"phase2.data={recipe.phase2}"]
                if seed is not None:
                    cmd += ["-S", f"seed={seed}"]
                for extra in overrides:
                    cmd += ["-S", extra]
                cmds.append(cmd)
    return cmds


def devices_per_run(params: dict, overrides: Sequence[str]) -> int:
    """`runtime.devices` of the runs: the last -S override of it, else params.yaml's."""
    value = params["runtime"]["devices"]
    for extra in overrides:
        key, _, text = extra.partition("=")
        if key.split(":")[-1] == "runtime.devices":
            value = text
    try:
        return int(value)
    except ValueError:
        raise PipelineError(f"-S runtime.devices={value}: expected a whole number") from None


def dvc_main(argv: list[str]) -> int:
    """`dvc <argv>` in this process (imported here: importing DVC sets up its logging)."""
    from dvc.cli import main
    return main(argv)


def queue(cmds: Sequence[Sequence[str]]) -> int:
    """Queue each `dvc exp run --queue` command; the first non-zero exit code stops it.
    DVC's own entry point, in this process: one interpreter start instead of one per
    experiment, which is most of the time `dvc exp run --queue` takes."""
    for cmd in cmds:
        print(f"$ {shlex.join(cmd)}", flush=True)
        rc = dvc_main(list(cmd[1:]))
        if rc != 0:
            print(f"error: `{shlex.join(cmd)}` failed with exit code {rc}; experiments queued before it "
                  f"stay queued (`dvc queue status`)", file=sys.stderr)
            return rc
    return 0


def run_queue(ids: Sequence[str], per_run: int, cmds: Sequence[Sequence[str]]) -> int:
    """Run every queued experiment with one DVC queue worker per ``per_run`` ids, each stage
    taking GPU slots; exit code 1 when an experiment of ``cmds`` failed (DVC's runner exits 0
    either way) or is not recorded after one more try.

    DVC's queue can call a run a success and still not record it as an experiment: its task that
    copies a finished run's Git refs into the repository (`collect_exp`) logs an error and goes
    on, and `queue status` reads the run's own result (the symptom: treeverse/dvc#8014). A task
    can also stay "Running" after the runner has returned. Such a run is queued and run once
    more, which costs little: its stages are in the run-cache."""
    names = {cmd[cmd.index("--name") + 1]: cmd for cmd in cmds}
    run = ["dvc", "exp", "run", "--run-all", "--jobs", str(len(ids) // per_run)]
    env = {**os.environ, ENV_GPUS: ",".join(ids)}
    for attempt in (1, 2):
        print(f"$ {ENV_GPUS}={','.join(ids)} {shlex.join(run)}", flush=True)
        rc = subprocess.run([sys.executable, "-m", "dvc", *run[1:]], env=env).returncode
        status = dvc_output("queue", "status")
        print(status, end="", flush=True)
        rows = [line.split() for line in status.splitlines()]   # task, name, created, status
        failed = sorted({row[1] for row in rows if len(row) > 2 and row[1] in names and row[-1] == "Failed"})
        if failed:
            print(f"error: {len(failed)} experiment(s) failed: {', '.join(failed)}; see `dvc queue logs <name>`",
                  file=sys.stderr)
            return 1
        recorded = set(dvc_output("exp", "list", "--name-only").split())
        lost = [name for name in names if name not in recorded]
        if not lost:
            return rc
        if attempt == 1:
            print(f"DVC's queue ended without recording {len(lost)} experiment(s) as finished: "
                  f"{', '.join(lost)}; queueing and running them once more", file=sys.stderr, flush=True)
            rc = queue([names[name] for name in lost])
            if rc != 0:
                return rc
    print(f"error: {len(lost)} experiment(s) not recorded after two tries: {', '.join(lost)}; "
          f"see `dvc queue status` and `dvc queue logs <name>`", file=sys.stderr)
    return 1


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--dry-run", action="store_true", help="print the commands, queue nothing")
    p.add_argument("--models", nargs="+", choices=MODEL_NAMES, default=list(PAPER_MODELS),
                   help="registered models to run; the paper's by default")
    p.add_argument("--recipes", nargs="+", choices=list(RECIPE_OF), default=list(RECIPE_OF))
    p.add_argument("--seeds", nargs="+", type=int, metavar="SEED",
                   help="run every cell once per seed, named <model>-<recipe>-s<seed>")
    p.add_argument("--gpus", metavar="IDS",
                   help="GPU ids as in CUDA_VISIBLE_DEVICES, e.g. 0,1,2,3: after queueing, run the queue "
                        "with one worker per id, each run on GPUs of its own (without CUDA: slots only)")
    p.add_argument("--pull", action="store_true",
                   help="restore stages another box ran from the DVC remote (after `dvc fetch --run-cache`)")
    p.add_argument("-S", "--set-param", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="extra params override for every experiment (repeatable), as for `dvc exp run -S`")
    args = p.parse_args(argv)
    own = ("model", "phase1.data", "phase2.data", *(("seed",) if args.seeds else ()))
    for extra in args.overrides:
        key = extra.split("=", 1)[0].split(":")[-1]
        if "=" not in extra or key in own:
            p.error(f"-S {extra!r}: expected KEY=VALUE for a key the grid does not set itself")
    if args.seeds and len(set(args.seeds)) != len(args.seeds):
        p.error(f"--seeds {' '.join(map(str, args.seeds))}: a seed is listed twice")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse_args(argv)
    cmds = commands(args.models, args.recipes, args.overrides, args.seeds, args.pull)
    if args.dry_run:
        for cmd in cmds:
            print(shlex.join(cmd))
        return 0
    # Everything that can refuse the grid does so before anything is queued.
    params = load_params("params.yaml")
    ids = parse_ids(args.gpus, "GPUS") if args.gpus is not None else None
    per_run = devices_per_run(params, args.overrides)
    if ids is not None:
        check_listed(ids, per_run)
    check_raw_data(params, Path.cwd())
    rc = queue(cmds)
    if rc != 0:
        return rc
    if ids is None:
        print(f"queued {len(cmds)} experiments; run them with `dvc queue start --jobs N`")
        return 0
    print(f"queued {len(cmds)} experiments; running them on GPUs {','.join(ids)}")
    return run_queue(ids, per_run, cmds)


if __name__ == "__main__":
    from ..cli import run_stage
    sys.exit(run_stage(main))
