"""A target set's photos as columns: what align_target holds per photo for the whole run.

A list of ImageTask objects costs about 200 bytes a photo (the object, its attribute dict, its
path string), which for a 300,000-photo set is 60 MB in the stage's main process, and more in
the heap it leaves fragmented. Here a photo is its UTF-8 path in one fixed-width byte array
(as wide as the longest path) and the number of its group: the photos of one folder share
their split, label and skip reason, held once per group. Each column is one contiguous array,
so a 300,000-photo table of 40-byte paths is 13 MB. Items are ImageTasks made when they are
asked for, so the table reads like the list it replaces; a slice or a selection of rows is a
table too.
"""
from __future__ import annotations

from typing import Iterator, Sequence

import numpy as np

from .search import ImageTask

Group = tuple[str, int, str]   # split, label, skip reason


class TaskTable(Sequence[ImageTask]):
    """ImageTasks as ``path`` (UTF-8 bytes) and ``group`` (rows of ``groups``) columns."""

    def __init__(self, path: np.ndarray, group: np.ndarray, groups: tuple[Group, ...]):
        self.path, self.group, self.groups = path, group, groups

    @classmethod
    def of(cls, paths: Sequence[str], split: str, label: int, skip: str = "") -> TaskTable:
        """One group of photos: the same split, label and skip reason for all of ``paths``."""
        encoded = np.array([p.encode() for p in paths], dtype=bytes).reshape(len(paths))
        return cls(encoded, np.zeros(len(paths), np.uint32), ((split, label, skip),))

    @classmethod
    def sorted_union(cls, parts: Sequence[TaskTable]) -> TaskTable:
        """The photos of every part, sorted by path (UTF-8 byte order is code point order:
        the order of Python's ``sorted`` on the paths)."""
        if not parts:
            return cls.of([], "", 0)
        offsets = np.cumsum([0] + [len(p.groups) for p in parts])
        path = np.concatenate([p.path for p in parts])
        group = np.concatenate([p.group + np.uint32(offset) for p, offset in zip(parts, offsets)])
        order = np.argsort(path, kind="stable")
        return cls(path[order], group[order], tuple(g for p in parts for g in p.groups))

    def __len__(self) -> int:
        return len(self.path)

    def _task(self, path: bytes, group: int) -> ImageTask:
        split, label, skip = self.groups[group]
        return ImageTask(path.decode(), split, label, skip)

    def __getitem__(self, key):
        """An int: that ImageTask; a slice or an array of rows: a table of those rows."""
        if isinstance(key, (int, np.integer)):
            return self._task(self.path[key], self.group[key])
        return TaskTable(self.path[key], self.group[key], self.groups)

    def __iter__(self) -> Iterator[ImageTask]:
        for path, group in zip(self.path, self.group):
            yield self._task(path, group)

    def __eq__(self, other) -> bool:
        return isinstance(other, TaskTable) and len(self) == len(other) and all(a == b for a, b in zip(self, other))

    __hash__ = None   # mutable columns, like a list
