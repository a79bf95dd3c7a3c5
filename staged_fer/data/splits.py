"""The paper's data schemes, turned into the train/validation sets of each training stage.

Stage 1 (FER, Ng et al. section 4):
  fer28         train FER Training,                      validate on FER PublicTest
  fer32         train FER Training + PublicTest,         validate on FER PrivateTest
  fer32_emotiw  train FER Training + PublicTest + EmotiW Train, validate on EmotiW Val
  none          no stage 1: the model stays at its ImageNet initialisation
Stage 2:
  emotiw        train EmotiW Train, validate on EmotiW Val
  none          no stage 2: the stage-1 model is the final model

Faces keep their native resolution (FER 48x48, EmotiW 256x256) in "banks"; the training input
path upsamples each crop on the fly, which is cheaper than storing 256x256 copies of FER.

A split also carries the `align` record of emotiw.npz (staged_fer/faces/record.py) when its
model will meet aligned faces: when it trains on EmotiW faces, and for scheme ``none``, whose
pass-through model is the one scored on them. A FER-only split carries none, so a change of
the align params never rewrites it (and never retrains a FER-only stage 1).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import PipelineError
from ..io import load_npz, save_npz

STAGE1_SCHEMES = ("fer28", "fer32", "fer32_emotiw", "none")
STAGE2_SCHEMES = ("emotiw", "none")


@dataclass(frozen=True)
class Bank:
    """Labelled faces of one source at one resolution."""
    name: str             # e.g. "FER Training", "EmotiW Val"
    images: np.ndarray    # (N, S, S) uint8
    labels: np.ndarray    # (N,) int64, FER order

    def __len__(self) -> int:
        return len(self.labels)


@dataclass(frozen=True)
class Split:
    scheme: str
    train: tuple[Bank, ...]
    val: tuple[Bank, ...]
    synthetic: bool       # any of its faces come from a synthetic source
    align: str = ""       # JSON record of the align params of its EmotiW faces; "" when none apply

    @property
    def empty(self) -> bool:
        return self.scheme == "none"


def fer_bank(fer: dict, usages: tuple[str, ...]) -> Bank:
    mask = np.isin(fer["usage"], usages)
    return Bank(f"FER {'+'.join(usages)}", fer["images"][mask], fer["labels"][mask].astype(np.int64))


def emotiw_bank(emotiw: dict, split: str) -> Bank:
    mask = (emotiw["split"] == split) & (emotiw["labels"] >= 0)
    if split == "Train" and "outcome" in emotiw:
        # Faces that failed alignment are never trained on (they may stay in Val for scoring).
        mask &= emotiw["outcome"] == "aligned"
    return Bank(f"EmotiW {split}", emotiw["images"][mask], emotiw["labels"][mask].astype(np.int64))


def _is_synthetic(data: dict) -> bool:
    return "source" in data and str(data["source"]) == "synthetic"


def _align_record(emotiw: dict) -> str:
    return str(emotiw["align"]) if "align" in emotiw else ""   # absent from older emotiw.npz files


def build_split(scheme: str, fer: dict, emotiw: dict) -> Split:
    """Assemble one scheme from the decoded FER and aligned EmotiW arrays."""
    if scheme == "none":
        return Split("none", (), (), False, _align_record(emotiw))
    if scheme == "fer28":
        train, val, used = (fer_bank(fer, ("Training",)),), (fer_bank(fer, ("PublicTest",)),), [fer]
    elif scheme == "fer32":
        train = (fer_bank(fer, ("Training", "PublicTest")),)
        val, used = (fer_bank(fer, ("PrivateTest",)),), [fer]
    elif scheme == "fer32_emotiw":
        train = (fer_bank(fer, ("Training", "PublicTest")), emotiw_bank(emotiw, "Train"))
        val, used = (emotiw_bank(emotiw, "Val"),), [fer, emotiw]
    elif scheme == "emotiw":
        train, val, used = (emotiw_bank(emotiw, "Train"),), (emotiw_bank(emotiw, "Val"),), [emotiw]
    else:
        raise PipelineError(f"params.yaml: unknown data scheme {scheme!r}; expected one of: "
                            f"{', '.join(STAGE1_SCHEMES + STAGE2_SCHEMES[:1])}")
    for bank in train + val:
        if len(bank) == 0:
            raise PipelineError(f"data scheme {scheme!r}: {bank.name} has no labelled faces")
    return Split(scheme, train, val, any(_is_synthetic(d) for d in used),
                 _align_record(emotiw) if any(d is emotiw for d in used) else "")


def save_split(path: str | Path, split: Split) -> None:
    arrays: dict[str, np.ndarray] = {
        "scheme": np.array(split.scheme),
        "synthetic": np.array(split.synthetic),
    }
    if split.align:
        arrays["align"] = np.array(split.align)
    for part in ("train", "val"):
        banks = getattr(split, part)
        arrays[f"{part}_names"] = np.array([b.name for b in banks], dtype=str)
        for i, bank in enumerate(banks):
            arrays[f"{part}_{i}_images"] = bank.images
            arrays[f"{part}_{i}_labels"] = bank.labels
    save_npz(path, **arrays)


def load_split(path: str | Path) -> Split:
    path = Path(path)
    if not path.is_file():
        raise PipelineError(f"{path}: split file not found (run `dvc repro build_splits`)")
    data = load_npz(path)
    parts = {}
    for part in ("train", "val"):
        names = [str(n) for n in data[f"{part}_names"]]
        parts[part] = tuple(Bank(name, data[f"{part}_{i}_images"], data[f"{part}_{i}_labels"])
                            for i, name in enumerate(names))
    return Split(str(data["scheme"]), parts["train"], parts["val"], bool(data["synthetic"]),
                 str(data["align"]) if "align" in data else "")
