"""The bytes of a target tree's photos, by their path under the tree's root, whether their split
is placed as a folder or as a zip archive (staged_fer/data/split_archive.py).

A zip's central directory gives each member's place, so a worker reads any photo without going
through the ones before it; members are stored, not compressed (photos are compressed already).
Each process holds that directory as staged_fer/data/zip_index.py's compact table.
"""
from __future__ import annotations

from pathlib import Path
from zipfile import BadZipFile

from ..data.split_archive import archive_of
from ..data.zip_index import ZipIndex
from .decode import Unreadable, file_bytes


class Photos:
    """The bytes of a target tree's photos by their path under ``root``: from the file, or from
    the archive of the split that holds it (``archived``: the splits placed as archives, by
    folder path under the root, as the scan's ``Scan.archived`` lists them). Each archive is
    opened once per process, on first use; an instance travels to worker processes without its
    open archives."""

    def __init__(self, root: str | Path, archived: tuple[str, ...] = ()):
        self.root = Path(root)
        self.archived = tuple(archived)
        self._open: dict[str, ZipIndex] = {}

    @classmethod
    def of(cls, root: str | Path | Photos) -> Photos:
        """``root`` as Photos: a folder's photos are its files."""
        return root if isinstance(root, Photos) else cls(root)

    def read(self, path: str) -> bytes:
        """The bytes of photo ``path`` (POSIX, relative to the root), or Unreadable with why not."""
        for name in self.archived:
            if path.startswith(name + "/"):
                return self._member(name, path[len(name) + 1:])
        return file_bytes(self.root / path)

    def _member(self, name: str, member: str) -> bytes:
        where = archive_of(self.root / name).name
        try:
            if name not in self._open:
                self._open[name] = ZipIndex(archive_of(self.root / name))
            return self._open[name].read(member)
        except KeyError:
            raise Unreadable(f"not in {where}") from None
        except BadZipFile as exc:   # a CRC that does not match: the bytes changed
            raise Unreadable(f"corrupt in {where}: {exc}") from None
        except OSError as exc:
            raise Unreadable(f"cannot read {where}: {exc.strerror or exc}") from None

    def close(self) -> None:
        for archive in self._open.values():
            archive.close()
        self._open.clear()

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_open": {}}
