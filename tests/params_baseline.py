"""The params every test starts from: params.yaml as committed, never the working file.

params.yaml is the pipeline's user interface: people edit it and run workspace experiments
(`dvc exp run -S ...` leaves its change there), so a test that read the working file would
test whatever the last experiment left behind. Tests read the committed file instead and
shrink it themselves. A copy that is not a git checkout has no uncommitted edits to avoid,
so there the file on disk is the shipped one.
"""
from __future__ import annotations

import copy
import functools
import subprocess
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def committed_text(rel: str) -> str:
    """The committed text of the file ``rel`` (relative to the repository root)."""
    if not (ROOT / ".git").exists():
        return (ROOT / rel).read_text()
    shown = subprocess.run(["git", "show", f"HEAD:{rel}"], cwd=ROOT, capture_output=True, text=True)
    if shown.returncode != 0:
        raise RuntimeError(f"{rel} has no committed version ({shown.stderr.strip()}); commit it before running the tests")
    return shown.stdout


@functools.cache
def _committed_params() -> dict:
    return yaml.safe_load(committed_text("params.yaml"))


def baseline_params() -> dict:
    """A fresh copy of the committed params.yaml, for a test to shrink as it likes."""
    return copy.deepcopy(_committed_params())
