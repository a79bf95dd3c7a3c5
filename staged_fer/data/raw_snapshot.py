"""Whether a raw input (the FER-2013 file, the SFEW tree) changed while a stage read it.

DVC hashes a stage's deps again after the stage ran and records those hashes in dvc.lock. A
file replaced while the stage was reading would give outputs made from the old bytes beside
a lock that names the new ones. So the stages that read raw data take a snapshot before they
start and compare it once they have read everything, before writing their outputs, and stop
with a clear error on any difference. The snapshot is what DVC's own change detection looks
at (size, modification time and inode of every file), so it is taken in milliseconds even
for thousands of photos.
"""
from __future__ import annotations

import os
from pathlib import Path

from ..errors import PipelineError

Snapshot = dict[str, tuple[int, int, int]]


def snapshot(path: str | os.PathLike) -> Snapshot:
    """``{relative path: (size, mtime_ns, inode)}`` of the file, or of every file under the folder."""
    path = Path(path)
    if path.is_file():
        return {"": _stat(path)}
    found: Snapshot = {}
    for folder, dirs, files in os.walk(path):
        dirs.sort()
        for name in files:
            full = Path(folder) / name
            try:
                found[full.relative_to(path).as_posix()] = _stat(full)
            except FileNotFoundError:
                continue   # removed during the walk: the comparison after reading reports it
    return found


def _stat(path: Path) -> tuple[int, int, int]:
    st = path.stat()
    return st.st_size, st.st_mtime_ns, st.st_ino


def check_unchanged(path: str | os.PathLike, before: Snapshot, key: str) -> None:
    """PipelineError naming ``key`` and the first file added, removed or changed since ``before``."""
    after = snapshot(path)
    if after == before:
        return
    path = Path(path)
    changed = sorted(set(before) ^ set(after) | {p for p in set(before) & set(after) if before[p] != after[p]})
    first = changed[0]
    what = "added" if first not in before else "removed" if first not in after else "changed"
    where = path / first if first else path
    raise PipelineError(f"`{key}`: {where} was {what} while this stage read it ({len(changed)} file(s) differ); "
                        f"nothing was written: rerun once the raw data stays put")
