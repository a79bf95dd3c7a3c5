"""`fer.source: file`: the FER-2013 file `fer.path` names."""
from __future__ import annotations

from pathlib import Path

from ...errors import PipelineError
from ..raw_record import project_file, restore_hint
from .fer_params import FerConfig


def find_fer_file(cfg: FerConfig) -> Path:
    """The FER-2013 file ``fer.path`` names: the file itself, or the one data file in a folder
    (the default folder ships with only a README, so that DVC, which depends on it, finds it)."""
    if not cfg.path:
        raise PipelineError("params.yaml: `fer.path` is not set but `fer.source` is file; set it to a "
                            "fer2013.csv, icml_face_data.csv or Kaggle's fer2013.tar.gz, or a folder holding one")
    path = Path(cfg.path)
    if path.is_dir():
        found = sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith(".")
                       and not project_file(p))
        if len(found) > 1:
            raise PipelineError(f"`fer.path`: folder {path} holds several files ({', '.join(p.name for p in found)}); "
                                f"keep one FER-2013 file there or point `fer.path` at the file")
        if found:
            return found[0]
    if not path.is_file():
        missing = f"no FER-2013 file in folder {path}" if path.is_dir() else f"{path} not found"
        raise PipelineError(
            f"`fer.path`: {missing}; download fer2013.tar.gz from https://www.kaggle.com/c/{cfg.kaggle_competition}"
            f"/data {'into it' if path.is_dir() else 'to that path'}, or set `fer.source` to url, kaggle or synthetic"
            + restore_hint(path if path.is_dir() else path.parent))
    return path
