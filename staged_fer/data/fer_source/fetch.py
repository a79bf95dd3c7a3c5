"""download_fer's work: the FER-2013 file of `fer.source`, made the canonical CSV and its meta."""
from __future__ import annotations

import tempfile
from pathlib import Path

from ...errors import PipelineError
from ...io import atomic_path, write_json
from ..raw_snapshot import check_unchanged, snapshot
from . import http_download, kaggle_download
from .canonical_csv import write_canonical_csv
from .fer_params import FerConfig, FerSyntheticConfig
from .layouts import FER_CSV
from .local_file import find_fer_file


def fetch_fer(cfg: FerConfig, out_csv: str | Path, meta_path: str | Path, seed: int) -> dict:
    """Write the canonical FER-2013 CSV to ``out_csv`` and its meta JSON (meta.py); return the meta."""
    out_csv = Path(out_csv)
    out_csv.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{out_csv.name}.download-", dir=out_csv.parent) as tmp:
        md5_spec = cfg.md5
        if cfg.source == "file":
            src, origin = find_fer_file(cfg), cfg.path
            # fer.path is a dependency of the stage in dvc.yaml: DVC hashes it again after the run.
            before = snapshot(src)
        elif cfg.source == "url":
            if not cfg.url:
                raise PipelineError("params.yaml: `fer.url` is not set but `fer.source` is url; set it to the "
                                    "address of fer2013.csv, icml_face_data.csv or fer2013.tar.gz")
            src, origin = http_download.download(cfg.url, Path(tmp) / "download"), http_download.redact_url(cfg.url)
        elif cfg.source == "kaggle":
            src = kaggle_download.download(cfg.kaggle_competition, Path(tmp))
            origin = f"kaggle:{cfg.kaggle_competition}"
        elif cfg.source == "synthetic":
            # Made here from the seed: `fer.md5` is about files fetched from elsewhere.
            src, origin, md5_spec = _synthetic_file(cfg.synthetic, Path(tmp), seed), "synthetic", None
        else:  # FerConfig's Literal already rejects this; kept for callers that build one by hand
            raise PipelineError(f"params.yaml: `fer.source` is {cfg.source!r}; expected file, url, kaggle or synthetic")
        with atomic_path(out_csv) as tmp_csv:
            found = write_canonical_csv(src, tmp_csv, md5_spec)
            if cfg.source == "file":
                check_unchanged(src, before, "fer.path")
            meta = {"source": cfg.source, "origin": origin, "synthetic": cfg.source == "synthetic", **found}
            write_json(meta_path, meta)
    return meta


def _synthetic_file(cfg: FerSyntheticConfig, folder: Path, seed: int) -> Path:
    from ...synthetic.fer import write_fer_csv   # cv2 and the face renderer: for this source only

    path = folder / FER_CSV
    write_fer_csv(path, {"Training": cfg.train, "PublicTest": cfg.public_test, "PrivateTest": cfg.private_test}, seed)
    return path
