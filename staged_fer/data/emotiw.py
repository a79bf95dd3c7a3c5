"""EmotiW/SFEW 2.0 on disk: the `emotiw` params section and the folder scan.

SFEW 2.0 is laid out as ``Train/<Emotion>/*`` and ``Val/<Emotion>/*`` (the seven FER-2013
emotion names) plus an optional, unlabeled ``Test/*``. A label comes only from the name of the
emotion folder a file sits in, so a folder with any other name stops the scan (a typo or a
different dataset would otherwise be trained on with wrong or missing labels). Hidden files
(``.DS_Store``, ``._*``) are ignored; any other file outside the emotion folders is logged as
dropped, never guessed a label.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from ..errors import PipelineError
from ..faces.pipeline import ImageTask
from ..labels import EMOTIONS, LABEL_OF, UNLABELED

LABELED_SPLITS = ("Train", "Val")
SPLITS = ("Train", "Val", "Test")


@dataclass(frozen=True)
class EmotiwSynthetic:
    train_per_class: int
    val_per_class: int
    test: int

    def __post_init__(self):
        if min(self.train_per_class, self.val_per_class, self.test) < 0:
            raise ValueError("synthetic image counts must be >= 0")


@dataclass(frozen=True)
class EmotiwConfig:
    source: Literal["dir", "synthetic"]
    root: str                 # source=dir: the SFEW 2.0 folder
    synthetic: EmotiwSynthetic


@dataclass(frozen=True)
class Scan:
    tasks: list[ImageTask]    # sorted by path
    empty: list[str]          # split or emotion folders without images, relative to the root


def _visible(p: Path) -> bool:
    return not p.name.startswith(".")


def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and _visible(p)
                  and all(_visible(q) for q in p.relative_to(folder).parents if q != Path(".")))


def scan_sfew(root: str | Path, key: str = "emotiw.root") -> Scan:
    """Every file of an SFEW 2.0 tree with its split and label; PipelineError on a wrong layout."""
    root = Path(root)
    if not root.is_dir():
        raise PipelineError(f"{key}: folder {root} not found; extract SFEW 2.0 there "
                            "(Train/<Emotion>/*, Val/<Emotion>/*, optional Test/*) or set emotiw.source: synthetic")
    tasks: list[ImageTask] = []
    empty: list[str] = []
    for split in LABELED_SPLITS:
        folder = root / split
        if not folder.is_dir():
            raise PipelineError(f"{key}: {folder} not found; SFEW 2.0 needs Train/<Emotion>/* and Val/<Emotion>/* "
                                f"under {root}")
        entries = sorted(p for p in folder.iterdir() if _visible(p))
        unknown = [p.name for p in entries if p.is_dir() and p.name not in LABEL_OF]
        if unknown:
            raise PipelineError(f"{folder}: unknown emotion folder {unknown[0]!r}; expected only: {', '.join(EMOTIONS)}")
        for p in entries:
            if p.is_file():
                tasks.append(ImageTask(p.relative_to(root).as_posix(), split, UNLABELED,
                                       skip_reason=f"file directly in {split}/, outside the emotion folders: no label"))
        for emotion in EMOTIONS:
            sub = folder / emotion
            files = _files(sub) if sub.is_dir() else []
            if not files:
                empty.append(f"{split}/{emotion}")
            tasks += [ImageTask(f.relative_to(root).as_posix(), split, LABEL_OF[emotion]) for f in files]
        if not any(t.split == split for t in tasks):
            empty.append(split)
    test = root / "Test"
    if test.is_dir():
        files = _files(test)
        if not files:
            empty.append("Test")
        tasks += [ImageTask(f.relative_to(root).as_posix(), "Test", UNLABELED) for f in files]
    if not tasks:
        raise PipelineError(f"{key}: no files under {root}/Train, {root}/Val or {root}/Test")
    tasks.sort(key=lambda t: t.path)
    return Scan(tasks, sorted(empty))


def warn_empty(scan: Scan) -> None:
    for name in scan.empty:
        print(f"warning: {name}/ holds no images", file=sys.stderr)
