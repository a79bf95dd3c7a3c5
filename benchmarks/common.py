"""What every benchmark shares: its command line, the real data it may read, how it skips, the
target tree it builds, how it runs git and dvc, and how it measures a command's peak memory.

Each benchmark takes ``--quick``: a token-size run of every code path it has, in seconds, which
the test suite runs (tests/test_benchmarks.py) so that a benchmark broken by a change of the
library fails a test instead of waiting for the next person who runs it. Flags given with
``--quick`` still win over its sizes.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import NoReturn

REPO = Path(__file__).resolve().parents[1]
# The real data beside the repository (FER-2013, faces-dev); each benchmark says what it does
# without them.
SHARED_DATA = REPO.parent / "shared" / "data"


def parser(doc: str) -> argparse.ArgumentParser:
    """The benchmark's argument parser: ``doc`` (its module docstring) as the help text, and ``--quick``."""
    p = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true",
                   help="a token-size run of every code path, in seconds (what the test suite runs)")
    return p


def parse(p: argparse.ArgumentParser, quick: dict, argv=None) -> argparse.Namespace:
    """Parse ``argv``; with ``--quick`` the defaults become the token sizes in ``quick``."""
    known, _ = p.parse_known_args(argv)
    if known.quick:
        p.set_defaults(**quick)
    return p.parse_args(argv)


def _number(kind, text: str, minimum):
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if value < minimum:
        raise argparse.ArgumentTypeError(f"expected at least {minimum}, got {text}")
    return value


def positive_int(text: str) -> int:
    return _number(int, text, 1)


def count(text: str) -> int:
    """A whole number, zero allowed (worker counts where 0 means one per core)."""
    return _number(int, text, 0)


def positive_float(text: str) -> float:
    return _number(float, text, sys.float_info.min)


def input_folder(p: argparse.ArgumentParser, given: str | None, default: Path, what: str) -> Path:
    """``given`` as a folder (an error naming it when it is not one), else ``default``; when the
    default is missing the benchmark has nothing to measure and says so in one line."""
    if given is not None:
        if not Path(given).is_dir():
            p.error(f"{given}: no such folder")
        return Path(given)
    if not default.is_dir():
        skip(f"{what} not found at {default}")
    return default


def skip(reason: str) -> NoReturn:
    """One line saying why nothing was measured; exit code 0 (a missing input is not a failure)."""
    print(f"skipped: {reason}", flush=True)
    sys.exit(0)


# A target set's class-folder tree as the benchmarks build it: 70% Train, 20% Val, 10% Test.
TREE_SHARES = (("Train", 0.7), ("Val", 0.2), ("Test", 0.1))


def target_tree(n: int, suffix: str) -> list[str]:
    """The relative paths of ``n`` photos in a class-folder tree split as TREE_SHARES: the
    labelled splits' photos spread over the seven emotion folders in turn, Test's unlabelled."""
    import numpy as np

    from staged_fer.synthetic.sfew import SFEW_FOLDERS
    cuts = np.cumsum([round(share * n) for _, share in TREE_SHARES])
    cuts[-1] = n
    paths = []
    for i in range(n):
        split = TREE_SHARES[int(np.searchsorted(cuts, i, side="right"))][0]
        folder = split if split == "Test" else f"{split}/{SFEW_FOLDERS[i % len(SFEW_FOLDERS)]}"
        paths.append(f"{folder}/p{i:07d}{suffix}")
    return paths


def tool(cwd: Path, *cmd: str, check: bool = True) -> subprocess.CompletedProcess:
    """``cmd`` (git, dvc, this venv's python) in ``cwd``, its output captured: this venv's bin
    first on PATH, DVC's analytics off, Git with an identity of its own and none of the user's
    config. With ``check``, a failure exits naming the command, with its output."""
    bin_dir = Path(sys.executable).parent
    env = {**os.environ, "DVC_NO_ANALYTICS": "1", "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1",
           "GIT_AUTHOR_NAME": "b", "GIT_AUTHOR_EMAIL": "b@b", "GIT_COMMITTER_NAME": "b",
           "GIT_COMMITTER_EMAIL": "b@b", "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    result = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env=env)
    if check and result.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{result.stdout}\n{result.stderr}")
    return result


# Runs a command and writes its peak RSS to the file named first. A process's peak as the kernel
# reports it (wait4's ru_maxrss) starts from the size of the process it was forked from, so a
# command started by a benchmark that holds hundreds of MiB would report at least that much.
# This launcher, a fresh interpreter of about 13 MiB, is what the command is forked from.
_LAUNCHER = """import os, subprocess, sys
proc = subprocess.Popen(sys.argv[2:])
_, status, usage = os.wait4(proc.pid, 0)
with open(sys.argv[1], "w") as out:
    out.write(str(usage.ru_maxrss))
sys.exit(os.waitstatus_to_exitcode(status))
"""


def peak_rss(cmd: list[str], log: Path, cwd: Path = REPO) -> tuple[float, int]:
    """(wall seconds, peak RSS in bytes) of ``cmd``, its output in ``log``: the largest resident
    set of the command's process and of the workers it waited for. Exits naming the log when
    the command fails."""
    with tempfile.TemporaryDirectory(prefix="peak-rss-") as tmp, open(log, "w") as out:
        result = Path(tmp) / "maxrss"
        started = time.perf_counter()
        code = subprocess.run([sys.executable, "-c", _LAUNCHER, str(result), *cmd], cwd=cwd,
                              stdout=out, stderr=subprocess.STDOUT).returncode
        seconds = time.perf_counter() - started
        if code != 0:
            sys.exit(f"{' '.join(cmd[:3])} failed (exit code {code}); see {log}:\n" + log.read_text()[-2000:])
        return seconds, int(result.read_text()) * 1024   # Linux reports kibibytes
