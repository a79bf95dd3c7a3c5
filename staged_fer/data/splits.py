"""Data schemes: the train/validation sets of each training phase, composed in params.yaml.

Sources register what they provide: FER-2013 its three usages (``fer.Training``,
``fer.PublicTest``, ``fer.PrivateTest``), the target set its labelled splits (``target.Train``,
``target.Val``). params.yaml's ``schemes:`` section composes each scheme from those parts, and
``phase1.data`` / ``phase2.data`` name one (or ``none``). The paper's schemes (Ng et al. section 4):

  fer28         train fer.Training,                                validate on fer.PublicTest
  fer32         train fer.Training + fer.PublicTest,               validate on fer.PrivateTest
  fer32_target  train fer.Training + fer.PublicTest + target.Train, validate on target.Val
  target        train target.Train,                                validate on target.Val
  none          no training: phase 1 keeps the ImageNet model, phase 2 the phase-1 model

Faces keep their native resolution (FER 48x48, target 256x256) in "banks"; the training input
path upsamples each crop on the fly, which is cheaper than storing 256x256 copies of FER.

A split is a folder: ``split.npz`` holds each bank's name, source and row numbers in that
source, with their labels; beside it, each source the split draws on is linked in whole
(hard links of the decoded FER file, of the face store's shards and index). No face is
copied, and a split changes only when a source it draws on changes: a FER-only split is the
same folder whatever the target set's alignment, so DVC keeps a FER-only phase 1.

A split also carries the `align` record of the face store (staged_fer/faces/record.py) when its
model will meet aligned faces: when it trains on target-set faces, and for scheme ``none``, whose
pass-through model is the one scored on them. A FER-only split carries none, so a change of
the align params never rewrites it (and never retrains a FER-only phase 1).

The registry of sources, the schemes composed from it and the split folders written from
both are one module: each is a view of the same ``Source``/``Bank`` records, and a new source
is one registry entry here.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from ..errors import PipelineError
from ..io import NpzColumns, atomic_folder, load_npz, save_npz
from ..store import INDEX, FaceRows, link_tree, open_faces
from .fer_csv import USAGES

NONE = "none"   # the scheme that trains nothing


SPLIT_FILE = "split.npz"


@dataclass(frozen=True)
class Bank:
    """Labelled faces of one source at one resolution."""
    name: str             # e.g. "FER Training", "Target Val"
    images: Any           # (N, S, S) uint8: rows of a source (FaceRows), or an array made in memory
    labels: np.ndarray    # (N,) int64, FER order
    source: str = ""      # the registered source of FaceRows images

    def __len__(self) -> int:
        return len(self.labels)

    def select(self, mask: np.ndarray) -> "Bank":
        images = self.images.select(mask) if isinstance(self.images, FaceRows) else self.images[mask]
        return Bank(self.name, images, self.labels[mask], self.source)


@dataclass(frozen=True)
class Split:
    scheme: str
    train: tuple[Bank, ...]
    val: tuple[Bank, ...]
    synthetic: bool       # any of its faces come from a synthetic source
    align: str = ""       # JSON record of the align params of its target-set faces; "" when none apply

    @property
    def empty(self) -> bool:
        return self.scheme == NONE


def _rows_where(arrays: Mapping[str, Any], keys: Sequence[str], keep) -> tuple[np.ndarray, np.ndarray]:
    """The rows where ``keep(columns)`` holds, and their labels (int64): of a face store's
    index a block of rows at a time (NpzColumns.blocks), so that no column is held whole."""
    blocks = arrays.blocks(keys) if isinstance(arrays, NpzColumns) else [{k: arrays[k] for k in keys}]
    rows, labels, start = [], [], 0
    for block in blocks:
        mask = keep(block)
        rows.append(np.flatnonzero(mask) + start)
        labels.append(block["labels"][mask].astype(np.int64))
        start += len(mask)
    return np.concatenate(rows), np.concatenate(labels)


def fer_bank(fer: Mapping[str, Any], usage: str) -> Bank:
    # Unlabeled rows are faces the FER+ labels drop (unknown, not a face, contempt).
    rows, labels = _rows_where(fer, ("usage", "labels"), lambda c: (c["usage"] == usage) & (c["labels"] >= 0))
    return Bank(f"FER {usage}", FaceRows(fer["images"], rows), labels)


def target_bank(target: Mapping[str, Any], split: str) -> Bank:
    # Faces that failed alignment are never trained on (they may stay in Val for scoring).
    aligned_only = split == "Train" and "outcome" in target
    keys = ("split", "labels", "outcome") if aligned_only else ("split", "labels")
    rows, labels = _rows_where(target, keys, lambda c: (c["split"] == split) & (c["labels"] >= 0)
                               & (c["outcome"] == "aligned" if aligned_only else True))
    return Bank(f"Target {split}", FaceRows(target["images"], rows), labels)


@dataclass(frozen=True)
class ScoredPart:
    """A part of a source that `evaluate` scores."""
    part: str
    # Its name in the keys of the scored sets (`<source>_<key>`, plus `_<role>` for a model other
    # than the final one): the metrics keys and the names of its plot, CSV and figure files,
    # which dvc.yaml's top-level plots name.
    key: str
    roles: tuple[str, ...] = ("final",)   # the checkpoints that score it: "final" and/or "phase1"
    # Score it only when every face of it is labelled (SFEW's Test: the challenge withheld its
    # labels, and a partly labelled test set gives a number no one else can compare with).
    only_if_all_labelled: bool = False


@dataclass(frozen=True)
class Source:
    """A source of training and scoring data: the parts it provides, how to cut one from its arrays, and what of
    it `evaluate` scores. Its arrays (one .npz, or a face store) hold ``images`` (N, S, S) uint8, ``labels``
    (N,) with -1 for unlabeled, and ``column`` naming each face's part."""
    name: str                               # the prefix of its parts in params' schemes; the stages' --<name> flag
    title: str                              # how banks, figures and reports name it
    arrays: str                             # what its .npz or store holds, for --help and errors
    column: str                             # the array that names each face's part
    parts: tuple[str, ...]                  # what schemes train and validate on
    bank: Callable[[dict, str], Bank]       # (the source's arrays, part) -> labelled faces
    ids: str | None                         # the array of sample ids; None: the row index
    scored: tuple[ScoredPart, ...]              # in report order


SOURCES: dict[str, Source] = {s.name: s for s in (
    # FER-2013's usages; sample ids are row indices of the decoded file.
    Source("fer", "FER", "decoded FER-2013", "usage", USAGES, fer_bank, None,
           (ScoredPart("PublicTest", "public_test"), ScoredPart("PrivateTest", "private_test"))),
    # The target set's labelled splits; sample ids are paths under its root. Its Val scores the
    # phase-1 model too: single against double fine-tuning.
    Source("target", "Target", "aligned target-set faces", "split", ("Train", "Val"), target_bank, "paths",
           (ScoredPart("Val", "val", ("final", "phase1")), ScoredPart("Test", "test", only_if_all_labelled=True))),
)}


def add_source_arguments(p) -> None:
    """One required ``--<name>`` per registered source, for the stages that read them all
    (build_splits, evaluate)."""
    for source in SOURCES.values():
        p.add_argument(f"--{source.name}", required=True, help=f"{source.arrays} (.npz or face store)")


def open_sources(args) -> tuple[dict[str, str], dict[str, dict]]:
    """Each source's path as ``args`` names it, and its arrays (memory-mapped); a missing one
    stops with one line naming it."""
    paths = {name: getattr(args, name) for name in SOURCES}
    for name, path in paths.items():
        if not Path(path).exists():
            raise PipelineError(f"{path}: {SOURCES[name].arrays} not found (run `dvc repro`)")
    return paths, {name: open_faces(path) for name, path in paths.items()}
PARTS = tuple(f"{s.name}.{p}" for s in SOURCES.values() for p in s.parts)


@dataclass(frozen=True)
class SchemeConfig:
    """One entry of params.yaml's `schemes`: the parts trained on and validated on."""
    train: tuple[str, ...]
    val: tuple[str, ...]

    def __post_init__(self) -> None:
        for role in ("train", "val"):
            parts = getattr(self, role)
            if not parts:
                raise ValueError(f"{role} lists no parts")
            unknown = [p for p in parts if p not in PARTS]
            if unknown:
                raise ValueError(f"{role} part {unknown[0]!r} is not registered; expected one of: {', '.join(PARTS)}")


@dataclass(frozen=True)
class DataChoice:
    """The one key of `phase1` / `phase2` that build_splits reads."""
    data: str                  # a scheme of `schemes`, or none


@dataclass(frozen=True)
class SplitsParams:
    """What build_splits reads: the schemes and the one each training phase names."""
    schemes: dict[str, SchemeConfig]
    phase1: DataChoice = field(metadata={"part": True})
    phase2: DataChoice = field(metadata={"part": True})

    def __post_init__(self) -> None:
        if not self.schemes:
            raise PipelineError("params.yaml: missing section `schemes` (each data scheme's train and val parts)")
        if NONE in self.schemes:
            raise PipelineError(f"params.yaml: `schemes.{NONE}` is reserved for training nothing")
        names = (*self.schemes, NONE)
        for phase in ("phase1", "phase2"):
            value = getattr(self, phase).data
            if value not in names:
                raise PipelineError(f"params.yaml: `{phase}.data` is {value!r}; expected one of: {', '.join(names)}")

    def scheme(self, phase: str) -> tuple[str, SchemeConfig | None]:
        """The name and parts of the scheme that ``phase`` trains on (parts None for ``none``)."""
        name = getattr(self, phase).data
        return name, self.schemes.get(name)


def _is_synthetic(data: dict) -> bool:
    return "source" in data and str(data["source"]) == "synthetic"


def _align_record(target: dict) -> str:
    return str(target["align"]) if "align" in target else ""   # absent from older face arrays


def build_split(name: str, scheme: SchemeConfig | None, data: Mapping[str, dict]) -> Split:
    """Assemble scheme ``name`` (None for ``none``) from each source's arrays, keyed by source name."""
    if scheme is None:
        return Split(NONE, (), (), False, _align_record(data["target"]))
    banks = {}
    for role in ("train", "val"):
        out = []
        for part in getattr(scheme, role):
            source, piece = part.split(".", 1)
            bank = replace(SOURCES[source].bank(data[source], piece), source=source)
            if len(bank) == 0:
                raise PipelineError(f"data scheme {name!r}: {bank.name} ({part}) has no labelled faces")
            out.append(bank)
        banks[role] = tuple(out)
    used = {part.split(".", 1)[0] for part in scheme.train + scheme.val}
    return Split(name, banks["train"], banks["val"], any(_is_synthetic(data[s]) for s in used),
                 _align_record(data["target"]) if "target" in used else "")


def hold_out(split: Split, share: float, seed: int) -> Split:
    """Move a seeded, stratified ``share`` of each training bank (per class, rounded, at least
    one face of any class with two or more) into the validation role, in place of ``split.val``;
    the scheme's own validation set then plays no part in training or selection."""
    rng = np.random.default_rng(seed)
    train, held = [], []
    for bank in split.train:
        chosen = np.zeros(len(bank), bool)
        for label in np.unique(bank.labels):
            rows = np.flatnonzero(bank.labels == label)
            k = min(len(rows) - 1, max(1, round(share * len(rows)))) if len(rows) > 1 else 0
            chosen[rng.permutation(rows)[:k]] = True
        if not chosen.any():
            raise PipelineError(f"data scheme {split.scheme!r}: {bank.name} is too small to hold out "
                                f"a selection share of {share}")
        train.append(bank.select(~chosen))
        held.append(replace(bank.select(chosen), name=f"{bank.name} (held out for selection)"))
    return Split(split.scheme, tuple(train), tuple(held), split.synthetic, split.align)


def save_split(folder: str | Path, split: Split, sources: Mapping[str, str | Path]) -> None:
    """The split folder: its banks as rows of ``sources`` (paths by source name), each source
    it draws on linked in beside them; a bank made in memory is stored whole."""
    arrays: dict[str, np.ndarray] = {
        "scheme": np.array(split.scheme),
        "synthetic": np.array(split.synthetic),
    }
    if split.align:
        arrays["align"] = np.array(split.align)
    used: dict[str, str] = {}
    for part in ("train", "val"):
        banks = getattr(split, part)
        arrays[f"{part}_names"] = np.array([b.name for b in banks], dtype=str)
        arrays[f"{part}_sources"] = np.array([b.source for b in banks], dtype=str)
        for i, bank in enumerate(banks):
            if bank.source:
                used[bank.source] = bank.source + Path(sources[bank.source]).suffix
                arrays[f"{part}_{i}_rows"] = bank.images.rows
            else:
                arrays[f"{part}_{i}_images"] = np.asarray(bank.images, dtype=np.uint8)
            arrays[f"{part}_{i}_labels"] = bank.labels
    arrays["source_names"] = np.array(sorted(used), dtype=str)
    arrays["source_files"] = np.array([used[n] for n in sorted(used)], dtype=str)
    with atomic_folder(folder) as tmp:
        save_npz(tmp / SPLIT_FILE, **arrays)
        for name, file in used.items():
            link_tree(sources[name], tmp / file)


def _read_split_file(folder: Path) -> dict[str, np.ndarray]:
    path = folder / SPLIT_FILE
    if not path.is_file():
        raise PipelineError(f"{folder}: split not found (run `dvc repro build_splits`)")
    return load_npz(path)


def split_files(folder: str | Path) -> list[Path]:
    """The files whose bytes fix the split's content: its own file and, of each source, the
    decoded file or the store's index (which names every shard's hash)."""
    folder = Path(folder)
    data = _read_split_file(folder)
    linked = [folder / str(f) for f in data["source_files"]]
    return [folder / SPLIT_FILE] + [p / INDEX if p.is_dir() else p for p in linked]


def load_split(folder: str | Path) -> Split:
    """The split at ``folder``, its banks reading their faces from the linked sources on demand."""
    folder = Path(folder)
    data = _read_split_file(folder)
    opened = {str(n): open_faces(folder / str(f)) for n, f in zip(data["source_names"], data["source_files"])}
    parts = {}
    for part in ("train", "val"):
        banks = []
        for i, (name, source) in enumerate(zip(data[f"{part}_names"], data[f"{part}_sources"])):
            name, source, labels = str(name), str(source), data[f"{part}_{i}_labels"]
            if not source:
                banks.append(Bank(name, data[f"{part}_{i}_images"], labels))
                continue
            rows, images = data[f"{part}_{i}_rows"], opened[source]["images"]
            if len(rows) != len(labels) or (len(rows) and not 0 <= rows.min() <= rows.max() < len(images)):
                raise PipelineError(f"{folder / SPLIT_FILE}: bank {name!r} does not fit its source "
                                    f"{source} ({len(images)} faces); run `dvc repro build_splits`")
            banks.append(Bank(name, FaceRows(images, rows), labels, source))
        parts[part] = tuple(banks)
    return Split(str(data["scheme"]), parts["train"], parts["val"], bool(data["synthetic"]),
                 str(data["align"]) if "align" in data else "")
