"""The meta JSON download_fer writes beside the canonical CSV, which decode_fer reads.

``source`` (params' fer.source), ``origin`` (path, URL without query, Kaggle competition, or
"synthetic"), ``file`` (the layout found: fer2013.csv or icml_face_data.csv), ``md5`` (of that
CSV as shipped), ``md5_expected`` (or null), ``rows`` (data lines) and ``synthetic``.
"""
from __future__ import annotations

from pathlib import Path

from ...errors import PipelineError
from ...io import read_json_object

META_KEYS = ("source", "origin", "file", "md5", "md5_expected", "rows", "synthetic")


def read_meta(path: str | Path) -> dict:
    """Read the meta JSON download_fer writes, checking it has every key."""
    meta = read_json_object(path, "FER-2013 meta file", "run `dvc repro download_fer`")
    missing = [k for k in META_KEYS if k not in meta]
    if missing:
        raise PipelineError(f"{path}: missing key `{missing[0]}` (written by an older download_fer? "
                            f"rerun `dvc repro -f download_fer`)")
    return meta
