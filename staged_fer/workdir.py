"""Work folders that outlive a killed stage: ``<root>/<key>/``, kept outside DVC's outputs.

DVC deletes a stage's declared outputs before running its command, so what a rerun should
find (training state, finished alignment blocks) lives under ``.resume/`` (git-ignored). The
key hashes everything the work depends on: work of any other configuration is never used,
and is deleted when a run starts; a successful run deletes its own.
"""
from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any, Iterator, Mapping


def key_of(*parts: Any) -> str:
    """A short hash of JSON-able ``parts`` (anything else by its ``str``). A list, an iterator
    or a mapping (keys sorted) is hashed item by item, so a part with one entry per photo is
    never written out whole, and an iterator's items need not exist all at once."""
    h = hashlib.sha256()
    for part in parts:
        if isinstance(part, Mapping):
            h.update(b"{")
            items = sorted(part.items())
        elif isinstance(part, (list, Iterator)):
            h.update(b"[")
            items = part
        else:
            h.update(b"=")
            items = [part]
        for item in items:
            h.update(json.dumps(item, sort_keys=True, default=str).encode() + b"\n")
    return h.hexdigest()[:20]


class KeyedDir:
    def __init__(self, root: str | Path, key: str):
        self.root = Path(root)
        self.dir = self.root / key

    def drop_stale(self) -> None:
        """Delete the work of other configurations of this stage."""
        if self.root.is_dir():
            for child in self.root.iterdir():
                if child != self.dir:
                    shutil.rmtree(child, ignore_errors=True) if child.is_dir() else child.unlink()

    def clear(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)
        for folder in (self.root, self.root.parent):   # .resume/<stage>, then .resume if empty
            if folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()
