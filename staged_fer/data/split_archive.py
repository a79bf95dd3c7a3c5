"""A split of the target set as one zip archive: ``<root>/Train.zip`` in place of ``<root>/Train/``.

DVC records a folder file by file: every `dvc status` looks at each photo, and every queued
experiment links each one into its own copy, which at 300,000 photos costs tens of seconds a
command and a minute or more an experiment (benchmarks/bench_dvc_status.py,
docs/large-datasets.md). An archive is one file to DVC, hashed once and linked once. So a split
may be placed as ``<split folder name>.zip`` holding what the folder would (``Angry/x.jpg``, ...
relative to the split folder); ``make data PACK=1`` (staged_fer/data/raw_pack.py) replaces
placed split folders by such archives. This module says what a split holds, placed either way,
as the scan reads it; the aligner reads the photos through staged_fer/faces/photos.py. Both see
the same paths either way (``Train/Angry/x.jpg``), so the same photos give the same faces, log
and store byte for byte.
"""
from __future__ import annotations

import os
from pathlib import Path
from zipfile import BadZipFile

from ..errors import PipelineError
from .zip_index import ZipIndex

SUFFIX = ".zip"


def archive_of(folder: Path) -> Path:
    """Where the archive standing for split folder ``folder`` is: beside it, ``<name>.zip``."""
    return folder.with_name(folder.name + SUFFIX)


def _visible(name: str) -> bool:
    return not name.startswith(".")


class FolderSplit:
    """A split placed as a folder, read as the scan always read folders."""

    def __init__(self, path: Path):
        self.path = path

    def where(self, folder: str) -> str:
        """Folder ``folder`` of the split, for a message."""
        return str(self.path / folder)

    def entries(self) -> tuple[list[str], list[str]]:
        """The visible (folders, files) directly in the split, by name, sorted."""
        entries = sorted(p for p in self.path.iterdir() if _visible(p.name))
        return [p.name for p in entries if p.is_dir()], [p.name for p in entries if p.is_file()]

    def files(self, under: str = "") -> list[str]:
        """The files anywhere under folder ``under`` of the split (the whole split when empty),
        relative to the split, sorted, leaving out hidden files and what hidden folders hold
        (a link to a folder is not followed)."""
        folder = self.path / under if under else self.path
        if not folder.is_dir():
            return []
        found: list[str] = []
        _walk(str(folder), f"{under}/" if under else "", found)
        return sorted(found)


def _walk(folder: str, prefix: str, found: list[str]) -> None:
    """Append ``prefix`` + the relative path of each visible file under ``folder`` to ``found``.
    Names stay strings (a Path per photo would intern every name in the interpreter's string
    table), and a directory entry says what it is without a stat call for most files."""
    with os.scandir(folder) as entries:
        for entry in entries:
            if not _visible(entry.name):
                continue
            if entry.is_file():
                found.append(prefix + entry.name)
            elif entry.is_dir(follow_symlinks=False):
                _walk(entry.path, f"{prefix}{entry.name}/", found)


class ArchiveSplit:
    """A split placed as a zip archive: the same answers from its members' names (held as
    staged_fer/data/zip_index.py's table, a few dozen bytes a member)."""

    def __init__(self, path: Path):
        self.path = path
        try:
            self._index = ZipIndex(path)
        except (BadZipFile, OSError) as exc:
            raise PipelineError(f"{path}: not a readable zip archive ({exc}); pack the split folder again "
                                f"with `make data PACK=1`, or place the folder") from None
        self._folders: set[str] = set()   # the folders directly in the split that the archive names
        for name in self._index.names():
            parts = name.rstrip("/").split("/")
            if name.startswith("/") or "\\" in name or any(part in ("", ".", "..") for part in parts):
                raise PipelineError(f"{path}: member {name!r} is not a plain relative path; "
                                    f"pack the split folder again with `make data PACK=1`")
            if len(parts) > 1 or name.endswith("/"):
                self._folders.add(parts[0])

    def where(self, folder: str) -> str:
        return f"{self.path} ({folder}/)"

    def entries(self) -> tuple[list[str], list[str]]:
        return (sorted(f for f in self._folders if _visible(f)),
                [f for f in self._index.names() if "/" not in f and _visible(f)])

    def files(self, under: str = "") -> list[str]:
        prefix = f"{under}/" if under else ""
        return [f for f in self._index.names(prefix) if not f.endswith("/")
                and all(_visible(part) for part in f[len(prefix):].split("/"))]


def split_source(root: Path, name: str) -> FolderSplit | ArchiveSplit | None:
    """Split folder ``name`` of the tree at ``root``, placed as a folder or as its archive; None
    when neither is there. Both at once is refused: which one holds the split?"""
    folder, archive = root / name, archive_of(root / name)
    if folder.is_dir() and archive.is_file():
        raise PipelineError(f"{root}: both {name}/ and {archive.name} are placed; keep one (`make data PACK=1` "
                            f"replaces the folder by the archive)")
    if archive.is_file():
        return ArchiveSplit(archive)
    return FolderSplit(folder) if folder.is_dir() else None
