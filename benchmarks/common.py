"""What every benchmark shares: its command line, the real data it may read, and how it skips.

Each benchmark takes ``--quick``: a token-size run of every code path it has, in seconds, which
the test suite runs (tests/test_benchmarks.py) so that a benchmark broken by a change of the
library fails a test instead of waiting for the next person who runs it. Flags given with
``--quick`` still win over its sizes.
"""
from __future__ import annotations

import argparse
import sys
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
