"""Atomic, byte-reproducible writers.

Every output is written under a temporary name in its own folder and renamed only once
complete, so a failed or interrupted stage never leaves a half-written file that DVC or a
later stage could mistake for a result. Output folders are built the same way, as a whole:
``atomic_folder`` (or ``StagedFolder`` when the build spans several calls) fills a temporary
sibling folder and swaps it in by renames, so the previous folder stays in place until the
new one is complete, and a rerun leaves no file of the previous run inside it. Writers are
also deterministic (no timestamps), so a stage that reruns on the same inputs produces the
same bytes and DVC skips what follows.
"""
from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import os
import re
import shutil
import tempfile
import zipfile
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import numpy as np

from .errors import PipelineError

MD5_HEX = re.compile(r"[0-9a-fA-F]{32}")   # an MD5 digest written in hex, either case

# A fixed zip timestamp: numpy's savez stamps the current time, which would make every
# rerun of a stage a "change" for DVC.
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it to ``path`` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp)
    # mkstemp creates owner-only files; give outputs the usual permissions of new files.
    os.chmod(tmp, 0o666 & ~_umask())
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _umask() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return umask


class StagedFolder:
    """A folder built under a temporary name beside ``path``; ``commit`` swaps it in whole.

    ``commit`` renames the previous ``path`` aside, renames the new folder in and only then
    deletes the previous one; if the second rename fails the previous folder is put back.
    ``discard`` deletes the temporary folder. Exactly one of the two must end its use.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = Path(tempfile.mkdtemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=self.path.parent))

    def commit(self) -> None:
        # mkdtemp's 0700 would hide the outputs from other users.
        os.chmod(self.tmp, 0o777 & ~_umask())
        if not self.path.exists() and not self.path.is_symlink():
            os.replace(self.tmp, self.path)
            return
        old = Path(tempfile.mkdtemp(prefix=f".{self.path.name}.", suffix=".old", dir=self.path.parent))
        old.rmdir()   # only its unique name is wanted: the previous folder is renamed to it
        os.replace(self.path, old)
        try:
            os.replace(self.tmp, self.path)
        except BaseException:
            os.replace(old, self.path)
            raise
        if old.is_dir() and not old.is_symlink():
            shutil.rmtree(old)
        else:
            old.unlink()

    def discard(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)


@contextlib.contextmanager
def atomic_folder(path: str | os.PathLike) -> Iterator[Path]:
    """Yield an empty temporary folder beside ``path``; it replaces ``path`` only if the block
    succeeds, and is removed otherwise (``path`` is then as it was)."""
    staged = StagedFolder(path)
    try:
        yield staged.tmp
        staged.commit()
    except BaseException:
        staged.discard()
        raise


def save_npz(path: str | os.PathLike, **arrays: np.ndarray) -> None:
    """Write an uncompressed .npz that ``np.load`` reads, with the same bytes for the same arrays."""
    with atomic_path(path) as tmp:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
            for name in sorted(arrays):
                info = zipfile.ZipInfo(f"{name}.npy", date_time=_ZIP_EPOCH)
                info.external_attr = 0o644 << 16
                with zf.open(info, "w", force_zip64=True) as fh:
                    np.lib.format.write_array(fh, np.asarray(arrays[name]), allow_pickle=False)


def file_digest(path: str | os.PathLike) -> str:
    """SHA-256 of a file's bytes, read in blocks."""
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def load_npz(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Read a whole .npz into memory (no pickles)."""
    with np.load(path, allow_pickle=False) as data:
        return {key: data[key] for key in data.files}


def read_json_object(path: str | os.PathLike, what: str, remedy: str) -> dict:
    """A JSON object that another stage or command wrote; one line naming ``path`` (and how to
    get a good one, ``remedy``) when it is missing, not JSON or not an object."""
    path = Path(path)
    if not path.is_file():
        raise PipelineError(f"{path}: {what} not found ({remedy})")
    try:
        obj = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise PipelineError(f"{path}: not valid JSON ({exc}); {remedy}") from None
    if not isinstance(obj, dict):
        raise PipelineError(f"{path}: expected a JSON object ({what}); {remedy}")
    return obj


def write_json(path: str | os.PathLike, obj) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n")


def write_csv(path: str | os.PathLike, header: Sequence[str], rows: Iterable[Sequence]) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(header)
            writer.writerows(rows)


def save_figure(fig, path: str | os.PathLike, dpi: int = 100) -> None:
    """Save a matplotlib figure as PNG without the software/date metadata that changes bytes."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, metadata={"Software": None})
    with atomic_path(path) as tmp:
        tmp.write_bytes(buf.getvalue())


def write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)
