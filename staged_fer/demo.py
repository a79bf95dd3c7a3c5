"""`make demo`: the whole pipeline offline on synthetic data, AlexNet beside VGG-CNN-M-2048.

Each of the paper's networks (the model registry's ``PAPER_MODELS``) runs as one DVC
experiment, ``demo-alexnet`` and ``demo-vgg_m``, whose params are the *committed* params.yaml
plus ``OVERRIDES`` (and the model). `dvc exp run`, with or without ``--temp``, starts from
the workspace with its uncommitted edits, so a half-edited params.yaml (or dvc.yaml, or code)
would silently become part of the demo. Each experiment therefore runs in a temporary clean
checkout of HEAD (a git worktree) that uses the project's own DVC cache:
the run-cache restores what the two experiments share (data, alignment, splits) and any run
seen before, the experiments land in the repository's refs like any other, and the
workspace, its params.yaml and `git status` stay exactly as they were.

    python -m staged_fer.demo [--models alexnet vgg_m] [-S key=value ...]

Extra ``-S`` overrides apply after the demo's own (the tests use them to shrink the run).
Rerunning the demo replaces the previous ``demo-*`` experiments of the same commit.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Sequence

from .faces.outputs import REPORT_FILE as ALIGNMENT_REPORT
from .models import PAPER_MODELS
from .pipeline_paths import DVC_YAML, pipeline_paths

PREFIX = "demo-"

# The demo's changes to the committed params, for both models. Random initial weights (the
# ImageNet ones need a download) and 64-pixel inputs (AlexNet's smallest) keep both networks
# within minutes on two CPU cores. The schedule aims at a result that is the same on every
# machine (benchmarks/bench_demo_stability.py checks that with 1 and 2 threads, 3 seeds):
# - lr 0.01 at batch 32 in phase 1. At 64 px both networks' pool5 map is 1x1, and the
#   adaptive pooling before fc6 copies it 36 times, so fc6's 36 copies of each weight get the
#   same gradient and move together: fc6 learns 36x faster than the lr says. Higher rates (or
#   an init that keeps activations at unit scale) blow the first steps up and leave the
#   network dead at chance; at 0.01 the network instead sits near chance for its first few
#   dozen steps, and how long it sits there decided the result. Batches of 32 give twice the
#   steps of 64 for the same images and leave that plateau an epoch earlier (phase-1 Val 0.47
#   against 0.38 for 64); the fused SGD step keeps the smaller batch cheap.
# - 7 epochs in phase 1: after 5, VGG-M was still learning (phase-1 Val 0.53 and climbing) and
#   its final model was 0.57-0.69 over seeds and threads, three runs of six never predicting
#   Sad; after 7, 0.79-0.84 with every class. The two epochs add about 1.5 minutes.
# - phase 2 runs longer than phase 1 at a lower rate: its 280 faces are cheap, and the
#   adaptation keeps gaining for about ten epochs.
# - the last epochs of each stage at lr / 10, and `keep: best`: small final steps settle a
#   run, and the kept epoch is a settled one.
# - class weights: FER's disgust is rare (6%), and an unweighted loss learns to skip it.
# - one schedule for both models: VGG-M from random weights takes unit-scale pixels like AlexNet
#   (staged_fer/models/vgg_m.py says why), and the same rates suit it.
OVERRIDES: tuple[str, ...] = (
    "fer.source=synthetic",
    "target.source=synthetic",
    "align.landmarks=dlib",
    "align.detector.max_side=480",
    "align.detector.min_size=40",
    *(value for model in PAPER_MODELS
      for value in (f"models.{model}.weights=none", f"models.{model}.input_size=64")),
    "input.resize=72",
    "phase1.epochs=7",
    "phase1.lr=0.01",
    "phase1.lr_step=6",
    "phase1.batch_size=32",
    "phase1.class_weights=true",
    "phase2.epochs=12",
    "phase2.lr=0.003",
    "phase2.lr_step=10",
    "phase2.batch_size=32",
    "phase2.class_weights=true",
)

# The `dvc exp show` columns that fit a 120-column terminal: which run, its data schemes, and
# Target Val accuracy of the final and of the phase-1 model.
SHOW_COLUMNS = r"Experiment|^model$|phase[12]\.data|target_val\.accuracy$|target_val_phase1\.accuracy$"
SHOW_WIDTH = 120


def experiment_name(model: str) -> str:
    return PREFIX + model


def overrides(model: str, extra: Sequence[str] = ()) -> list[str]:
    """All `-S` values of one demo experiment: the demo's, the model, then ``extra``."""
    return [*OVERRIDES, f"model={model}", *extra]


def _env() -> dict[str, str]:
    # Stage commands call `python`: the one running this module, wherever it was started from.
    bin_dir = str(Path(sys.executable).parent)
    # DVC's tables take the terminal's width; written to a pipe or a log they would shrink to 80
    # columns, where `dvc exp show` is all `…`. The terminal's width where there is one, else 120.
    columns = str(shutil.get_terminal_size((SHOW_WIDTH, 24)).columns)
    return {**os.environ, "PATH": bin_dir + os.pathsep + os.environ.get("PATH", ""), "COLUMNS": columns}


def _dvc_exe() -> str:
    beside = Path(sys.executable).parent / "dvc"
    return str(beside) if beside.exists() else "dvc"


def _run(cmd: Sequence[str], cwd: Path, capture: bool = False) -> str:
    result = subprocess.run(list(cmd), cwd=cwd, env=_env(), text=True,
                            stdout=subprocess.PIPE if capture else None)
    if result.returncode != 0:
        raise SystemExit(f"make demo: `{' '.join(cmd)}` failed (exit code {result.returncode})")
    return result.stdout if capture else ""


def dvc(cwd: Path, *args: str, capture: bool = False) -> str:
    return _run([_dvc_exe(), *args], cwd, capture)


def git(cwd: Path, *args: str) -> str:
    return _run(["git", *args], cwd, capture=True)


@contextmanager
def committed_checkout(repo: Path) -> Iterator[Path]:
    """A temporary worktree of HEAD sharing ``repo``'s DVC cache and local DVC config."""
    cache = dvc(repo, "cache", "dir", capture=True).strip()
    tmp = Path(tempfile.mkdtemp(prefix="staged-fer-demo-"))
    checkout = tmp / "checkout"
    git(repo, "worktree", "add", "--detach", "--quiet", str(checkout), "HEAD")
    try:
        local = repo / ".dvc" / "config.local"
        if local.is_file():
            shutil.copy2(local, checkout / ".dvc" / "config.local")
        dvc(checkout, "config", "--local", "cache.dir", str(Path(cache).resolve()))
        yield checkout
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(checkout)], cwd=repo,
                       capture_output=True)
        shutil.rmtree(tmp, ignore_errors=True)
        subprocess.run(["git", "worktree", "prune"], cwd=repo, capture_output=True)


def remove_previous(repo: Path, names: Sequence[str]) -> None:
    """Drop earlier demo experiments of this commit, so the names can be reused."""
    existing = set(dvc(repo, "exp", "list", "--name-only", capture=True).split())
    stale = [n for n in names if n in existing]
    if stale:
        dvc(repo, "exp", "remove", *stale)


def detection_line(checkout: Path) -> str:
    """The alignment stage's detection and alignment rates, as one line."""
    path = checkout / pipeline_paths(checkout / DVC_YAML)["target_reports"] / ALIGNMENT_REPORT
    rates = json.loads(path.read_text())
    det, ali = rates["detection_rate"]["all"], rates["alignment_rate"]["all"]
    return (f"synthetic SFEW: the Viola-Jones detector found {det:.1%} of the faces; "
            f"{ali:.1%} were aligned from dlib landmarks (the rest: fallback crops or dropped)")


def run_experiment(repo: Path, model: str, extra: Sequence[str] = ()) -> str:
    """Run one demo experiment from the committed params; returns its detection line."""
    sets = [arg for value in overrides(model, extra) for arg in ("-S", value)]
    with committed_checkout(repo) as checkout:
        print(f"\n== {experiment_name(model)}: committed params.yaml + the demo's overrides "
              f"(staged_fer/demo.py), in a clean checkout of HEAD", flush=True)
        dvc(checkout, "exp", "run", "-n", experiment_name(model), *sets)
        return detection_line(checkout)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", choices=PAPER_MODELS, default=list(PAPER_MODELS))
    ap.add_argument("-S", "--set", dest="extra", action="append", default=[], metavar="KEY=VALUE",
                    help="an extra params override, applied after the demo's")
    args = ap.parse_args(argv)
    # A plain SIGTERM would end Python without running the cleanup of the temporary checkout.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    repo = Path(git(Path.cwd(), "rev-parse", "--show-toplevel").strip())
    if subprocess.run(["git", "rev-parse", "--verify", "-q", "HEAD"], cwd=repo,
                      capture_output=True).returncode != 0:
        raise SystemExit("make demo needs a git commit (DVC experiments are commits): "
                         "git add -A && git commit -m init")
    names = [experiment_name(m) for m in args.models]
    remove_previous(repo, names)
    detection = {m: run_experiment(repo, m, args.extra) for m in args.models}
    print()
    dvc(repo, "exp", "show", "--no-pager", "--hide-workspace", "--drop", ".*", "--keep", SHOW_COLUMNS)
    print(next(iter(detection.values())))
    if len(names) == 2:
        a, b = names
        print(f"\nCompare the two runs:\n"
              f"  dvc metrics diff {a} {b}   # every headline figure, side by side\n"
              f"  dvc plots diff {a} {b}     # confusion matrices and training curves, one page\n"
              f"  dvc exp show               # all params and metrics of every experiment")
    return 0


if __name__ == "__main__":
    sys.exit(main())
