"""Whether a raw input (the FER-2013 file, the SFEW tree) changed while a stage read it.

DVC hashes a stage's deps again after the stage ran and records those hashes in dvc.lock. A
file replaced while the stage was reading would give outputs made from the old bytes beside
a lock that names the new ones. So the stages that read raw data take a snapshot before they
start and compare it once they have read everything, before writing their outputs, and stop
with a clear error on any difference. The snapshot is what DVC's own change detection looks
at (size, modification time and inode of every file), so it is taken in milliseconds even
for thousands of photos.

A snapshot is kept in a temporary file, a line per file, with the digest of those lines: a
tree of any size costs this process a few bytes, and comparing it again is one more walk. Only
when the digests differ are the lines read back, to name the first file that changed.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import IO, Iterator

from ..errors import PipelineError


class Snapshot:
    """Size, modification time and inode of the file, or of every file under the folder, by
    path relative to it (``""`` for a file): their ``digest``, and the lines on disk."""

    def __init__(self, digest: str, lines: IO[bytes]):
        self.digest = digest
        self._lines = lines

    def read(self) -> dict[str, tuple[int, int, int]]:
        """``{relative path: (size, mtime_ns, inode)}``: every file at once (for an error only)."""
        self._lines.seek(0)
        return {rel: tuple(stat) for rel, *stat in map(json.loads, self._lines)}


def _entries(path: Path) -> Iterator[tuple[str, int, int, int]]:
    """(relative path, size, mtime_ns, inode) of each file, in a fixed order: the folders walked
    sorted, and each folder's files sorted. Names stay strings: a Path per file would cost a
    hundred times the time, and intern every name in the interpreter's string table."""
    if path.is_file():
        yield ("", *_stat(path))
        return
    for folder, dirs, files in os.walk(path):
        dirs.sort()
        rel = os.path.relpath(folder, path)
        prefix = "" if rel == os.curdir else rel.replace(os.sep, "/") + "/"
        for name in sorted(files):
            try:
                yield (prefix + name, *_stat(os.path.join(folder, name)))
            except FileNotFoundError:
                continue   # removed during the walk: the comparison after reading reports it


def _digest(path: Path, copy: IO[bytes] | None = None) -> str:
    """The SHA-256 of the snapshot's lines, which are also written to ``copy`` if given."""
    h = hashlib.sha256()
    for entry in _entries(path):
        line = json.dumps(entry).encode() + b"\n"   # JSON: any file name stays one line
        h.update(line)
        if copy is not None:
            copy.write(line)
    return h.hexdigest()


def _stat(path: str | os.PathLike) -> tuple[int, int, int]:
    st = os.stat(path)
    return st.st_size, st.st_mtime_ns, st.st_ino


def snapshot(path: str | os.PathLike) -> Snapshot:
    """The snapshot of ``path`` now (see :class:`Snapshot`)."""
    lines = tempfile.TemporaryFile(prefix="raw-snapshot-")
    return Snapshot(_digest(Path(path), lines), lines)


def check_unchanged(path: str | os.PathLike, before: Snapshot, key: str) -> None:
    """PipelineError naming ``key`` and the first file added, removed or changed since ``before``."""
    path = Path(path)
    if _digest(path) == before.digest:
        return
    old = before.read()
    what: dict[str, str] = {}
    for rel, *stat in _entries(path):
        was = old.pop(rel, None)
        if was != tuple(stat):
            what[rel] = "added" if was is None else "changed"
    what.update(dict.fromkeys(old, "removed"))   # what is left in ``old``
    first = min(what)
    where = path / first if first else path
    raise PipelineError(f"`{key}`: {where} was {what[first]} while this stage read it ({len(what)} file(s) differ); "
                        f"nothing was written: rerun once the raw data stays put")
