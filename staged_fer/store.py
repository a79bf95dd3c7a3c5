"""The face store: aligned faces on disk, in shards that readers memory-map.

A store is a folder (``data/interim/target`` for the target set):

  faces-00000.npy ...  uint8 (n_k, S, S): the kept faces of the k-th block of SHARD_PHOTOS
                       photos, in photo order (a block may keep none: its shard has no rows)
  index.npz            one row per face, in shard order: ``labels``, ``split``, ``paths``,
                       ``outcome``; per shard: ``shard_rows`` and ``shard_sha256``; and the
                       store's own ``source`` and ``align`` record

A face is written once, when its block of photos is done, and never held with the others in
memory; a reader maps each shard and copies out only the rows it asks for, and reads an index
column only when it asks for it (build_splits a block of rows at a time), so no stage's memory
grows with the number of faces beyond the rows it keeps. Shard boundaries depend only on the
photo order, so the same photos give the same bytes whatever the number of workers or
interruptions.

Opening a store checks every shard against the index (its array header, its rows and its
length on disk), so a truncated shard or an index that disagrees with its data is refused with
one line naming the file; ``verify_shard`` also compares the content hash (used by resumed
alignment, which never trusts a shard it did not see finished).
"""
from __future__ import annotations

import mmap
import os
import shutil
import zipfile
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from .errors import PipelineError
from .io import NpzColumns, Pieces, atomic_path, file_digest, load_npz, npy_header, save_npz

SHARD_PHOTOS = 512        # photos per shard (faces per shard: those of them kept)
INDEX = "index.npz"
FACE_ARRAYS = ("labels", "split", "paths", "outcome")   # one row per face


SHARD_GLOB = "faces-*.npy"


def shard_name(k: int) -> str:
    return f"faces-{k:05d}.npy"


def write_shard(path: str | os.PathLike, faces: np.ndarray) -> str:
    """Write one shard atomically (synced before its rename) and return its SHA-256."""
    faces = np.ascontiguousarray(faces, dtype=np.uint8)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.lib.format.write_array(fh, faces, allow_pickle=False)
            fh.flush()
            os.fsync(fh.fileno())
    return file_digest(path)


def _header(path: Path) -> tuple[tuple[int, ...], np.dtype, int]:
    """(shape, dtype, data offset) from a .npy header; PipelineError naming ``path`` when unreadable."""
    try:
        with open(path, "rb") as fh:
            shape, fortran, dtype, offset = npy_header(fh)
    except FileNotFoundError:
        raise PipelineError(f"{path}: shard missing (rebuild the store with `dvc repro align_target`)") from None
    except (ValueError, OSError, SyntaxError) as exc:
        raise PipelineError(f"{path}: not a readable shard ({exc}); rebuild the store with "
                            "`dvc repro align_target`") from None
    if fortran:
        raise PipelineError(f"{path}: shard is in Fortran order; rebuild the store with `dvc repro align_target`")
    return shape, dtype, offset


def _map_shard(path: Path, rows: int, size: int) -> tuple[np.ndarray, mmap.mmap | None]:
    """The shard's faces as a read-only array over a memory map of the file (None for no rows),
    after checking its header and length against ``rows`` faces of ``size`` x ``size``."""
    shape, dtype, offset = _header(path)
    want = (rows, size, size)
    if shape != want or dtype != np.uint8:
        raise PipelineError(f"{path}: holds {dtype} {shape} but the index lists uint8 {want}; "
                            "rebuild the store with `dvc repro align_target`")
    expected = offset + rows * size * size
    actual = path.stat().st_size
    if actual != expected:
        raise PipelineError(f"{path}: truncated or padded shard ({actual} bytes, expected {expected}); "
                            "rebuild the store with `dvc repro align_target`")
    if rows == 0:
        return np.zeros(want, np.uint8), None   # an empty file region cannot be mapped
    with open(path, "rb") as fh:
        mapping = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
    return np.frombuffer(mapping, np.uint8, rows * size * size, offset).reshape(want), mapping


def open_shard(path: str | os.PathLike, rows: int, size: int) -> np.ndarray:
    """The shard memory-mapped, after checking its header and length against ``rows`` faces of
    ``size`` x ``size``; one line naming the file when they disagree."""
    return _map_shard(Path(path), rows, size)[0]


def verify_shard(path: str | os.PathLike, rows: int, size: int, sha256: str) -> bool:
    """Whether the shard is complete and has exactly the recorded content."""
    try:
        open_shard(path, rows, size)
    except PipelineError:
        return False
    return file_digest(path) == sha256


def _index(images, key) -> np.ndarray:
    """``images[key]`` for the readers below: an int, row numbers, a slice or a boolean mask."""
    if isinstance(key, (int, np.integer)):
        return images.take(np.array([key]))[0]
    key = np.asarray(key) if isinstance(key, (list, tuple)) else key
    if isinstance(key, np.ndarray) and key.dtype.kind in "iu":
        return images.take(np.where(key < 0, key + len(images), key))
    return images.take(np.arange(len(images))[key])


class StoreImages:
    """(N, S, S) uint8 faces spread over memory-mapped shards, read by row.

    Indexing (an int, a slice, a boolean mask or row numbers) copies those faces out into one
    array; nothing else is read. ``np.asarray`` reads them all.
    """

    def __init__(self, shards: Sequence[np.ndarray], size: int, mappings: Sequence[mmap.mmap | None] = ()):
        self.shards = list(shards)
        self.mappings = list(mappings)
        counts = np.array([len(s) for s in self.shards], dtype=np.int64)
        self.starts = np.concatenate([[0], np.cumsum(counts)])
        self.shape = (int(self.starts[-1]), size, size)
        self.dtype = np.dtype(np.uint8)
        self.ndim = 3

    def __len__(self) -> int:
        return self.shape[0]

    def take(self, rows: np.ndarray) -> np.ndarray:
        rows = np.asarray(rows, dtype=np.int64)
        out = np.empty((len(rows), *self.shape[1:]), np.uint8)
        if len(rows) == 0:
            return out
        if rows.min() < 0 or rows.max() >= len(self):
            raise IndexError(f"face row out of range 0..{len(self) - 1}")
        shard = np.searchsorted(self.starts, rows, side="right") - 1
        for k in np.unique(shard):
            at = np.flatnonzero(shard == k)
            local = rows[at] - self.starts[k]
            order = np.argsort(local, kind="stable")   # read each shard front to back
            out[at[order]] = self.shards[k][local[order]]
            if self.mappings and self.mappings[k] is not None:
                # The copied pages leave this process's resident set (they stay in the page
                # cache): reading every face once does not make a process hold them all.
                self.mappings[k].madvise(mmap.MADV_DONTNEED)
        return out

    def __getitem__(self, key) -> np.ndarray:
        return _index(self, key)

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        out = self.take(np.arange(len(self)))
        return out if dtype is None else out.astype(dtype, copy=False)


def write_index(path: str | os.PathLike, faces: Mapping[str, np.ndarray | Pieces], shard_rows: Sequence[int],
                shard_sha256: Sequence[str], size: int, **scalars: Any) -> None:
    """The store's index: the per-face arrays (or their Pieces), the shard table and the store's scalars."""
    n = sum(shard_rows)
    for key in FACE_ARRAYS:
        if len(faces[key]) != n:
            raise ValueError(f"index array {key!r} has {len(faces[key])} rows, the shards {n}")
    save_npz(path, **{k: faces[k] for k in FACE_ARRAYS}, shard_rows=np.asarray(shard_rows, np.int64),
             shard_sha256=np.asarray(shard_sha256, dtype=str), size=np.array(size),
             **{k: np.asarray(v) for k, v in scalars.items()})


def open_store(folder: str | os.PathLike) -> Mapping[str, Any]:
    """The store's arrays as a plain ``.npz`` of the same contract would give them, with
    ``images`` a :class:`StoreImages`; every shard checked against the index first. The index's
    columns are read from the file when first asked for (:class:`NpzColumns`)."""
    folder = Path(folder)
    index_path = folder / INDEX
    if not index_path.is_file():
        raise PipelineError(f"{folder}: not a face store (no {INDEX}); run `dvc repro align_target`")
    tables = ("shard_rows", "shard_sha256", "size")
    try:
        index = NpzColumns(index_path, hidden=tables)
    except (ValueError, OSError, zipfile.BadZipFile) as exc:
        raise PipelineError(f"{index_path}: unreadable store index ({exc}); run `dvc repro align_target`") from None
    missing = [k for k in (*FACE_ARRAYS, *tables) if k not in index.shapes]
    if missing:
        raise PipelineError(f"{index_path}: missing array `{missing[0]}`; run `dvc repro align_target`")
    rows, size = index["shard_rows"], int(index["size"])
    for key in FACE_ARRAYS:
        shape = index.shapes[key]
        if len(shape) != 1 or shape[0] != int(rows.sum()):
            raise PipelineError(f"{index_path}: array `{key}` has {shape[0] if shape else 'no'} rows but its shards "
                                f"list {int(rows.sum())} faces; run `dvc repro align_target`")
    shards, mappings = zip(*[_map_shard(folder / shard_name(k), int(n), size) for k, n in enumerate(rows)]) \
        if len(rows) else ((), ())
    index.add("images", StoreImages(shards, size, mappings))
    return index


def open_faces(path: str | os.PathLike) -> Mapping[str, Any]:
    """A source's arrays: a face store (a folder) or a plain ``.npz`` (read whole)."""
    path = Path(path)
    return open_store(path) if path.is_dir() else load_npz(path)


class FaceRows:
    """Rows of a source's faces, read only when asked: ``images[rows]`` without the copy.

    A bank of a split holds one, so a split is a list of row numbers into its sources.
    """

    def __init__(self, images, rows: np.ndarray):
        self.base = images
        self.rows = np.asarray(rows, dtype=np.int64)
        self.shape = (len(self.rows), *images.shape[1:])
        self.dtype = np.dtype(np.uint8)
        self.ndim = 3

    def __len__(self) -> int:
        return len(self.rows)

    def take(self, index: np.ndarray) -> np.ndarray:
        picked = self.rows[np.asarray(index, dtype=np.int64)]
        base = self.base
        return base.take(picked) if isinstance(base, StoreImages) else np.asarray(base[picked], np.uint8)

    def select(self, key) -> "FaceRows":
        """A view of some of these rows (a boolean mask or positions)."""
        return FaceRows(self.base, self.rows[key])

    def __getitem__(self, key) -> np.ndarray:
        return _index(self, key)

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        out = self.take(np.arange(len(self)))
        return out if dtype is None else out.astype(dtype, copy=False)


def link_tree(source: str | os.PathLike, dest: str | os.PathLike, pattern: str = "*") -> None:
    """``dest`` as hard links to ``source`` (a file, or a folder's files matching ``pattern``):
    the faces are not written again. Where the file system has no hard links, the files are
    copied, and that is said once."""
    source, dest = Path(source), Path(dest)
    pairs = [(source, dest)] if source.is_file() else \
        [(f, dest / f.relative_to(source)) for f in sorted(source.rglob(pattern)) if f.is_file()]
    copied = False
    for src, dst in pairs:
        dst.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(src, dst)
        except OSError as exc:
            if not copied:
                print(f"{dest}: copying faces, no hard link possible ({exc.strerror})", flush=True)
                copied = True
            shutil.copyfile(src, dst)
