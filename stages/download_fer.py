"""Stage download_fer: fetch FER-2013 (params `fer`, `seed`) into the canonical CSV and a meta JSON."""
import sys
from dataclasses import dataclass
from pathlib import Path
if __package__ in (None, ""):  # run as a file: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from staged_fer.cli import parser, run_stage
from staged_fer.params import load_params, read_stage_params
from staged_fer.data.fer_source.fer_params import FerConfig
from staged_fer.data.fer_source.fetch import fetch_fer


@dataclass(frozen=True)
class DownloadParams:
    seed: int           # the synthetic source's generator
    fer: FerConfig      # the whole section is checked; `labels` and `ferplus_path` are decode_fer's


def main(argv=None) -> None:
    p = parser("Fetch FER-2013 from fer.source (file, url, kaggle or synthetic), verify its checksum, "
               "and write it as the canonical fer2013.csv (emotion,pixels,Usage) with a meta JSON.")
    p.add_argument("--out", required=True, type=Path, help="canonical CSV to write")
    p.add_argument("--meta", required=True, type=Path, help="meta JSON to write (source, MD5, rows, synthetic)")
    args = p.parse_args(argv)
    params = read_stage_params(load_params(args.params), DownloadParams)
    meta = fetch_fer(params.fer, args.out, args.meta, params.seed)
    check = f"MD5 {meta['md5']} verified" if meta["md5_expected"] else f"MD5 {meta['md5']} (not checked)"
    print(f"download_fer: {meta['rows']} rows from {meta['origin']} ({meta['file']}), {check} -> {args.out}")


if __name__ == "__main__":
    sys.exit(run_stage(main))
