"""What every stage script shares: argument parsing, running `dvc`, and turning errors into one clear line."""
from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path
from typing import Callable, Sequence

from .errors import PipelineError


def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description,
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--params", default="params.yaml", help="params file to read")
    return p


def dvc_output(*args: str, cwd: str | Path | None = None) -> str:
    """What `dvc <args>` prints (this interpreter's DVC); a PipelineError with DVC's message when it fails."""
    result = subprocess.run([sys.executable, "-m", "dvc", *args], cwd=cwd, capture_output=True, text=True)
    if result.returncode != 0:
        raise PipelineError(f"`dvc {' '.join(args)}` failed: {result.stderr.strip()}")
    return result.stdout


def run_stage(main: Callable[[Sequence[str] | None], int | None], argv: Sequence[str] | None = None) -> int:
    """Run a stage's main and return its exit code (None: 0); a PipelineError becomes
    `error: <message>` on stderr and exit code 1."""
    try:
        code = main(argv)
    except PipelineError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return code or 0
