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
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence

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


class Pieces:
    """A 1-D array that ``save_npz`` writes piece by piece, never joined in memory: ``n`` items
    of ``dtype`` in all, from ``pieces()`` (called once per write), an iterable of arrays."""

    def __init__(self, dtype: np.dtype, n: int, pieces: Callable[[], Iterable[np.ndarray]]):
        self.dtype, self.n, self.pieces = np.dtype(dtype), n, pieces

    def __len__(self) -> int:
        return self.n

    def write(self, fh) -> None:
        """The .npy bytes ``np.lib.format.write_array`` writes for the joined array."""
        np.lib.format.write_array_header_1_0(fh, {"descr": np.lib.format.dtype_to_descr(self.dtype),
                                                  "fortran_order": False, "shape": (self.n,)})
        written = 0
        for piece in self.pieces():
            fh.write(np.ascontiguousarray(piece, self.dtype).tobytes())
            written += len(piece)
        if written != self.n:
            raise ValueError(f"Pieces: {written} items written, {self.n} announced")


def save_npz(path: str | os.PathLike, **arrays: np.ndarray | Pieces) -> None:
    """Write an uncompressed .npz that ``np.load`` reads, with the same bytes for the same arrays
    (an array given as Pieces is written as its pieces joined would be)."""
    with atomic_path(path) as tmp:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
            for name in sorted(arrays):
                info = zipfile.ZipInfo(f"{name}.npy", date_time=_ZIP_EPOCH)
                info.external_attr = 0o644 << 16
                with zf.open(info, "w", force_zip64=True) as fh:
                    if isinstance(arrays[name], Pieces):
                        arrays[name].write(fh)
                    else:
                        np.lib.format.write_array(fh, np.asarray(arrays[name]), allow_pickle=False)


def file_digest(path: str | os.PathLike) -> str:
    """SHA-256 of a file's bytes, read in blocks."""
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def load_npz(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Read a whole .npz into memory (no pickles)."""
    with np.load(path, allow_pickle=False) as data:
        return {key: data[key] for key in data.files}


class NpzColumns(Mapping[str, Any]):
    """The arrays of an .npz (no pickles), each read from the file when first asked for and
    kept: a reader that needs a few of a face store's per-face columns never holds the others
    (a path column is ~200 bytes a face). ``blocks`` reads columns a block of rows at a time,
    never whole. ``hidden`` members are left out of the mapping's keys, and read when asked for.
    Every header is read, and every member's length checked against it, when it is opened
    (ValueError, OSError or BadZipFile then); a column unreadable later is a PipelineError."""

    def __init__(self, path: str | os.PathLike, hidden: Sequence[str] = ()):
        self.path = Path(path)
        self._headers: dict[str, tuple[tuple[int, ...], np.dtype]] = {}
        with zipfile.ZipFile(self.path) as zf:
            for info in zf.infolist():
                key = info.filename.removesuffix(".npy")
                with zf.open(info) as fh:
                    shape, fortran, dtype, start = npy_header(fh)
                if dtype.hasobject or (fortran and len(shape) > 1):
                    raise ValueError(f"{info.filename}: object or Fortran-ordered arrays are not read")
                if info.file_size != start + dtype.itemsize * int(np.prod(shape)):
                    raise ValueError(f"{info.filename}: {info.file_size} bytes, not those of a {shape} {dtype} array")
                self._headers[key] = shape, dtype
        self._kept: dict[str, Any] = {}
        self._keys = [k for k in self._headers if k not in hidden]

    def add(self, key: str, value: Any) -> None:
        """An item beside the arrays (a store's images)."""
        self._kept[key] = value
        if key not in self._keys:
            self._keys.append(key)

    @property
    def shapes(self) -> dict[str, tuple[int, ...]]:
        """Each member's shape, from its header, hidden members included."""
        return {key: shape for key, (shape, _) in self._headers.items()}

    def __getitem__(self, key: str) -> Any:
        if key not in self._kept:
            if key not in self._headers:
                raise KeyError(key)
            try:
                with np.load(self.path, allow_pickle=False) as data:
                    self._kept[key] = data[key]
            except (ValueError, OSError, zipfile.BadZipFile) as exc:
                raise PipelineError(f"{self.path}: array `{key}` unreadable ({exc})") from None
        return self._kept[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys)

    def __len__(self) -> int:
        return len(self._keys)

    def __contains__(self, key) -> bool:   # Mapping's own would read the array
        return key in self._keys

    def blocks(self, keys: Sequence[str], rows: int = 1 << 13) -> Iterator[dict[str, np.ndarray]]:
        """Rows ``[i, i + rows)`` of the 1-D members ``keys`` (of one length) for each i in turn;
        one empty block when they have no rows. A column already read is sliced, not read again."""
        n = self._headers[keys[0]][0][0]
        try:
            with contextlib.ExitStack() as stack:
                zf = stack.enter_context(zipfile.ZipFile(self.path))
                streams = {}
                for key in keys:
                    if key not in self._kept:
                        streams[key] = stack.enter_context(zf.open(f"{key}.npy"))
                        npy_header(streams[key])
                for start in range(0, max(n, 1), rows):
                    count = min(rows, n - start)
                    yield {key: self._kept[key][start:start + count] if key not in streams else
                           np.frombuffer(streams[key].read(count * self._headers[key][1].itemsize),
                                         self._headers[key][1], count) for key in keys}
        except (ValueError, OSError, zipfile.BadZipFile) as exc:
            raise PipelineError(f"{self.path}: arrays {', '.join(keys)} unreadable ({exc})") from None


_NPY_HEADERS = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}


def npy_header(fh) -> tuple[tuple[int, ...], bool, np.dtype, int]:
    """(shape, Fortran order, dtype, data offset) of the .npy stream ``fh``, left at its data;
    ValueError when it is not a header this reads."""
    version = np.lib.format.read_magic(fh)
    if version not in _NPY_HEADERS:
        raise ValueError(f".npy format version {version} is not read")
    shape, fortran, dtype = _NPY_HEADERS[version](fh)
    return shape, fortran, dtype, fh.tell()


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
