"""The target set on disk (EmotiW/SFEW 2.0 by default): the `target` params section and the folder scan.

The target set is any class-folder tree: ``<root>/<split folder>/<class folder>/*``. SFEW 2.0 is
laid out as ``Train/<Emotion>/*`` and ``Val/<Emotion>/*`` (the seven FER-2013 emotion names) plus
an optional, unlabeled ``Test/*``. Another set plugs in through two keys: ``target.splits`` names
the folder of each split (RAF-DB's ``train`` and ``test``), and ``target.labels`` maps its class
folder names to the seven emotions (RAF-DB's ``1``..``7``, AffectNet's or ExpW's names, CK+'s),
``null`` marking a class outside the seven (contempt, say): its files are skipped and counted.

A label comes only from the name of the class folder a file sits in, so a folder the names
(or the map) do not cover stops the scan, naming it (a typo or a different dataset would
otherwise be trained on with wrong or missing labels). Hidden files (``.DS_Store``, ``._*``)
are ignored; any other file outside the class folders is logged as dropped, never guessed a label.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from ..errors import PipelineError
from ..faces.task_table import TaskTable
from ..labels import EMOTIONS, LABEL_OF, UNLABELED
from .raw_record import restore_hint
from .split_archive import ArchiveSplit, split_source

LABELED_SPLITS = ("Train", "Val")


@dataclass(frozen=True)
class EmotiwSynthetic:
    train_per_class: int
    val_per_class: int
    test: int

    def __post_init__(self):
        if min(self.train_per_class, self.val_per_class, self.test) < 0:
            raise ValueError("synthetic image counts must be >= 0")


@dataclass(frozen=True)
class EmotiwSplits:
    """The folder under the root that holds each split; Test is optional and unlabeled."""
    Train: str
    Val: str
    Test: str | None


@dataclass(frozen=True)
class TargetConfig:
    source: Literal["dir", "synthetic"]
    root: str                 # source=dir: the target set's folder
    splits: EmotiwSplits
    # Class folder name -> one of EMOTIONS, or None to skip that class; None: folders are named
    # as EMOTIONS already.
    labels: dict[str, str | None] | None
    synthetic: EmotiwSynthetic

    def __post_init__(self) -> None:
        for folder, emotion in (self.labels or {}).items():
            if emotion is not None and emotion not in LABEL_OF:
                raise ValueError(f"labels: folder {folder!r} maps to {emotion!r}, not one of the seven classes "
                                 f"({', '.join(EMOTIONS)}); map it to null to skip that class")

    def label_of(self) -> dict[str, int | None]:
        """Class folder name -> label id (None: outside the seven, skipped)."""
        if self.labels is None:
            return dict(LABEL_OF)
        return {folder: None if emotion is None else LABEL_OF[emotion] for folder, emotion in self.labels.items()}


SFEW_SPLITS = EmotiwSplits("Train", "Val", "Test")


@dataclass(frozen=True)
class Scan:
    tasks: TaskTable          # sorted by path
    empty: list[str]          # split or class folders without images, relative to the root
    skipped: dict[str, int] = field(default_factory=dict)  # files per class folder outside the seven
    archived: tuple[str, ...] = ()   # the splits placed as zip archives, by folder path under the root


def scan_sfew(root: str | Path, key: str = "target.root", splits: EmotiwSplits = SFEW_SPLITS,
              label_of: dict[str, int | None] | None = None) -> Scan:
    """Every file of a target tree with its split and label; PipelineError on a wrong layout.

    Each split is a folder or its zip archive (staged_fer/data/split_archive.py): the same
    files give the same tasks either way. ``label_of`` maps class folder names to label ids
    (None: skip the class); by default the folders are the seven emotion names.
    """
    root = Path(root)
    mapped = label_of is not None
    label_of = dict(LABEL_OF) if label_of is None else label_of
    layout = f"{splits.Train}/<class>/*, {splits.Val}/<class>/*" + (f", optional {splits.Test}/*" if splits.Test else "")
    if not root.is_dir():
        raise PipelineError(f"{key}: folder {root} not found; extract the target set there "
                            f"({layout}) or set target.source: synthetic")
    parts: list[TaskTable] = []   # a group of photos each, joined and sorted at the end
    empty: list[str] = []
    skipped: dict[str, int] = {}
    archived: list[str] = []
    for split in LABELED_SPLITS:
        name = getattr(splits, split)
        folder = root / name
        source = split_source(root, name)
        if source is None:
            raise PipelineError(f"{key}: {folder} not found; the target set needs {layout} under {root} "
                                f"(target.splits names the folders){restore_hint(root)}")
        prefix = folder.relative_to(root).as_posix()
        if isinstance(source, ArchiveSplit):
            archived.append(prefix)
        folders, files = source.entries()
        unknown = [f for f in folders if f not in label_of]
        if unknown:
            expected = ("an `target.labels` entry for it" if mapped
                        else f"only: {', '.join(EMOTIONS)} (or an `target.labels` map)")
            raise PipelineError(f"{source.where(unknown[0])}: unknown emotion folder {unknown[0]!r}; "
                                f"expected {expected}")
        found = len(files)
        parts.append(TaskTable.of([f"{prefix}/{f}" for f in files], split, UNLABELED,
                                  skip=f"file directly in {name}/, outside the class folders: no label"))
        for class_folder, label in label_of.items():
            files = [f"{prefix}/{f}" for f in source.files(class_folder)]
            if label is None:
                if files:
                    skipped[f"{name}/{class_folder}"] = len(files)
                parts.append(TaskTable.of(files, split, UNLABELED,
                                          skip=f"class folder {class_folder!r} is outside the seven (target.labels)"))
                found += len(files)
                continue
            if not files:
                empty.append(f"{name}/{class_folder}")
            parts.append(TaskTable.of(files, split, label))
            found += len(files)
        if not found:
            empty.append(name)
    test = split_source(root, splits.Test) if splits.Test else None
    if test is not None:
        prefix = (root / splits.Test).relative_to(root).as_posix()
        if isinstance(test, ArchiveSplit):
            archived.append(prefix)
        files = test.files()
        if not files:
            empty.append(splits.Test)
        parts.append(TaskTable.of([f"{prefix}/{f}" for f in files], "Test", UNLABELED))
    tasks = TaskTable.sorted_union(parts)
    if not len(tasks):
        raise PipelineError(f"{key}: no files under {root} ({layout})")
    return Scan(tasks, sorted(empty), dict(sorted(skipped.items())), tuple(archived))


def warn_empty(scan: Scan) -> None:
    for name in scan.empty:
        print(f"warning: {name}/ holds no images", file=sys.stderr)
    for name, n in scan.skipped.items():
        print(f"{name}/: {n} files skipped, a class outside the seven (target.labels)", file=sys.stderr)
