"""Decode FER-2013 with the project's decoder and with a plain pandas baseline; print both.

Uses the real fer2013.csv(.gz) beside the repository when present, else writes a random CSV of
the same shape (35,887 rows). Both decoders run in this process, one after the other, so the
ratio holds on a noisy machine even when the absolute times do not. Peak memory is the
tracemalloc peak of the project's decoder (numpy reports its buffers to tracemalloc).

    python benchmarks/bench_decode_fer.py [--csv PATH] [--rows N] [--repeat 3] [--baseline-rows N] [--quick]
"""
from __future__ import annotations

import gzip
import itertools
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.common import SHARED_DATA, parse, parser, positive_int  # noqa: E402
from staged_fer.data.fer_decode import PIXELS, decode_fer_csv  # noqa: E402

REAL = SHARED_DATA / "fer2013.csv.gz"
ROWS = 35_887


def baseline(path: Path, nrows: int | None) -> np.ndarray:
    frame = pd.read_csv(path, nrows=nrows)
    return np.stack([np.array(p.split(), dtype=np.uint8).reshape(48, 48) for p in frame["pixels"]])


def make_csv(path: Path, rows: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    usage = np.array(["Training"] * 28_709 + ["PublicTest"] * 3_589 + ["PrivateTest"] * 3_589)[:rows]
    with open(path, "w") as fh:
        fh.write("emotion,pixels,Usage\n")
        for i in range(rows):
            pixels = " ".join(map(str, rng.integers(0, 256, PIXELS)))
            fh.write(f"{rng.integers(0, 7)},{pixels},{usage[i]}\n")


def main() -> None:
    ap = parser(__doc__)
    ap.add_argument("--csv", type=Path, help="a fer2013.csv to decode (default: the real one, else generated)")
    ap.add_argument("--rows", type=positive_int, default=ROWS,
                    help="rows of the real or generated CSV (not of --csv)")
    ap.add_argument("--repeat", type=positive_int, default=3, help="runs of the project's decoder (best is reported)")
    ap.add_argument("--baseline-rows", type=positive_int, default=None,
                    help="rows for the baseline (default all; its time is scaled to all rows)")
    args = parse(ap, {"rows": 2000, "repeat": 1})
    if args.csv is not None and not args.csv.is_file():
        ap.error(f"--csv {args.csv}: no such file")

    with tempfile.TemporaryDirectory() as tmp:
        csv = args.csv
        if csv is None:
            csv = Path(tmp) / "fer2013.csv"
            if REAL.is_file():
                with gzip.open(REAL, "rb") as src, open(csv, "wb") as dst:
                    dst.writelines(itertools.islice(src, args.rows + 1))   # the header and --rows rows
                what = f"real FER-2013 ({REAL})"
            else:
                make_csv(csv, args.rows)
                what = f"generated CSV ({args.rows} rows)"
        else:
            what = str(csv)
        size = csv.stat().st_size
        print(f"input: {what}, {size / 1e6:.1f} MB")

        fast_times = []
        for _ in range(args.repeat):
            t = time.perf_counter()
            arrays, report = decode_fer_csv(csv)
            fast_times.append(time.perf_counter() - t)
        rows = report["rows"]
        tracemalloc.start()
        decode_fer_csv(csv)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()

        t = time.perf_counter()
        base = baseline(csv, args.baseline_rows)
        base_time = (time.perf_counter() - t) * rows / len(base)
        if not np.array_equal(base, arrays["images"][:len(base)]):
            raise SystemExit("the decoders disagree on the pixels")

    fast = min(fast_times)
    print(f"rows: {rows}")
    print(f"project decoder: {fast:.2f} s (best of {args.repeat}: {', '.join(f'{x:.2f}' for x in fast_times)})")
    scaled = "" if args.baseline_rows is None else f" (scaled from {len(base)} rows)"
    print(f"baseline (pandas + per-row split): {base_time:.2f} s{scaled}")
    print(f"speed-up: {base_time / fast:.1f}x (goal >= 10x; goal < 2 s: {'met' if fast < 2 else 'missed'})")
    print(f"peak memory: {peak / 1e6:.0f} MB = {peak / size:.2f}x the CSV (goal < 3x)")


if __name__ == "__main__":
    main()
