"""Stage decode_fer: decode the FER-2013 CSV into the npz contract, with counts and figures.

Reads params `decode` and, of `fer`, `labels` and `ferplus_path`: with `fer.labels: ferplus`
the labels are FER+'s majority votes (staged_fer/data/ferplus.py) and dropped faces are kept
as unlabeled rows, counted in the report. `fer.ferplus_path` (the label file or its folder) is a
dependency of the stage either way. The counts (rows per Usage and class, skipped lines,
FER+ drops) go to counts.json beside the figures, a report rather than DVC metrics: they
describe the data, not a result to compare runs by.
"""
import sys
from dataclasses import dataclass, field
from pathlib import Path
if __package__ in (None, ""):  # run as a file: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

from staged_fer.cli import parser, run_stage
from staged_fer.params import load_params, read_stage_params
from staged_fer.data.fer_decode import DecodeConfig, counts, decode_fer_csv
from staged_fer.data.fer_report import write_reports
from staged_fer.data.fer_source.meta import read_meta
from staged_fer.data.ferplus import FerLabelsConfig, relabel
from staged_fer.data.raw_snapshot import check_unchanged, snapshot
from staged_fer.io import save_npz, write_json

COUNTS_FILE = "counts.json"


@dataclass(frozen=True)
class DecodeParams:
    decode: DecodeConfig
    fer: FerLabelsConfig = field(metadata={"part": True})   # `labels` and `ferplus_path` only


def main(argv=None) -> None:
    p = parser("Decode fer2013.csv into images (N,48,48) uint8, labels and usage (an npz), "
               "with counts per Usage and class, skipped lines, Figure 6 and a sample grid.")
    p.add_argument("--csv", required=True, type=Path, help="canonical FER-2013 CSV (from download_fer)")
    p.add_argument("--meta", required=True, type=Path, help="its meta JSON (from download_fer)")
    p.add_argument("--out", required=True, type=Path, help="npz to write")
    p.add_argument("--reports", required=True, type=Path, help="folder for the figures and counts.json")
    args = p.parse_args(argv)
    params = read_stage_params(load_params(args.params), DecodeParams)
    cfg, labels_cfg = params.decode, params.fer
    meta = read_meta(args.meta)
    arrays, report = decode_fer_csv(args.csv, cfg.on_bad_row)
    ferplus = None
    if labels_cfg.labels == "ferplus":
        # fer.ferplus_path is a dependency in dvc.yaml, hashed again after the run (see raw_snapshot).
        before = snapshot(labels_cfg.ferplus_path)
        arrays, ferplus = relabel(arrays, report["row_index"], labels_cfg.ferplus_path, str(args.csv),
                                  report["data_rows"])
        check_unchanged(labels_cfg.ferplus_path, before, "fer.ferplus_path")
    synthetic = bool(meta["synthetic"])
    source = "synthetic" if synthetic else str(meta["source"])
    save_npz(args.out, **arrays, source=np.array(source))
    write_reports(arrays, args.reports, synthetic)
    write_json(args.reports / COUNTS_FILE, {**counts(arrays), "rows": report["rows"], "lines": report["lines"],
                              "blank_lines": report["blank_lines"], "skipped": report["skipped"],
                              "synthetic": synthetic, "source": source, "labels": labels_cfg.labels,
                              **({"ferplus": ferplus} if ferplus else {})})
    skipped = report["skipped"]["count"]
    print(f"decode_fer: {report['rows']} faces from {args.csv}" + (f", {skipped} bad lines skipped" if skipped else "")
          + f" -> {args.out}")


if __name__ == "__main__":
    sys.exit(run_stage(main))
