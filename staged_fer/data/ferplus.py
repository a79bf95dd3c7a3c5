"""FER+ labels (Barsoum et al., ICMI 2016): ten crowd votes per FER-2013 face, as one label.

``fer2013new.csv`` (columns ``Usage, Image name, neutral, happiness, surprise, sadness, anger,
disgust, fear, contempt, unknown, NF``) has one row per row of ``fer2013.csv``, in the same
order. Its majority label is the one the FER+ reference code (microsoft/FERPlus,
``src/ferplus.py``, ``_process_data`` with ``mode='majority'``) trains on:

1. a face whose ``Image name`` is empty was dropped by the FER+ authors (``no_image``);
2. votes of 1 are outliers and are removed, in every column including unknown and NF;
3. the column with the most remaining votes is the label if it holds more than half of them;
   otherwise (and when no votes remain) the face is ``unknown``;
4. faces labelled unknown or NF (not a face) are dropped, as the reference code drops them.

For the project's seven classes, ``contempt`` (FER+'s eighth) is dropped too. Dropped faces
keep their row with the label -1 (unlabeled): sample ids stay FER row indices, and neither
training nor evaluation sees them. Every drop is counted by reason.

``fer.ferplus_path`` names the file or a folder holding it (``FILE_NAME``). It is a DVC
dependency of decode_fer whatever ``fer.labels`` says, since a dependency cannot hang on a
param's value: so it must exist, and the default folder, data/external/ferplus/, ships with a
README. Changing the file then reruns decode_fer even under ``labels: fer``, which writes the
same bytes, so nothing after it reruns.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from ..errors import PipelineError
from ..labels import LABEL_OF, UNLABELED
from .raw_record import restore_hint

HEADER = ("Usage", "Image name", "neutral", "happiness", "surprise", "sadness", "anger", "disgust",
          "fear", "contempt", "unknown", "NF")
VOTES = HEADER[2:]
# FER+ column -> FER-2013 label id; contempt, unknown and NF have none.
FER_LABEL = {"neutral": LABEL_OF["Neutral"], "happiness": LABEL_OF["Happy"], "surprise": LABEL_OF["Surprise"],
             "sadness": LABEL_OF["Sad"], "anger": LABEL_OF["Angry"], "disgust": LABEL_OF["Disgust"],
             "fear": LABEL_OF["Fear"]}
FILE_NAME = "fer2013new.csv"


@dataclass(frozen=True)
class FerLabelsConfig:
    """The keys of params.yaml's `fer` section that decode_fer reads."""
    labels: Literal["fer", "ferplus"]
    ferplus_path: str                # fer2013new.csv or its folder; a dvc.yaml dep, so always set

    def __post_init__(self) -> None:
        if not self.ferplus_path:
            raise ValueError("ferplus_path is empty; name fer2013new.csv or a folder (decode_fer "
                             "depends on it in dvc.yaml even with labels: fer)")


def ferplus_file(path: str | Path) -> Path:
    """The label file ``fer.ferplus_path`` names: the path itself, or FILE_NAME in that folder."""
    path = Path(path)
    return path / FILE_NAME if path.is_dir() else path


@dataclass(frozen=True)
class FerPlusVotes:
    usage: np.ndarray        # (N,) str
    has_image: np.ndarray    # (N,) bool: a non-empty `Image name`
    votes: np.ndarray        # (N, 10) int64, in VOTES order


def read_votes(path: str | Path) -> FerPlusVotes:
    """Read fer2013new.csv; PipelineError naming the line of the first malformed row."""
    path = ferplus_file(path)
    if not path.is_file():
        raise PipelineError(f"{path}: FER+ label file not found (fer.ferplus_path; get {FILE_NAME} "
                            f"from github.com/microsoft/FERPlus){restore_hint(path.parent)}")
    usage, has_image, votes = [], [], []
    with open(path, newline="", encoding="utf-8-sig") as fh:
        reader = csv.reader(fh)
        header = next(reader, None)
        if header is None or tuple(h.strip() for h in header) != HEADER:
            raise PipelineError(f"{path}: line 1: header is {header!r}, expected {','.join(HEADER)}")
        for line, row in enumerate(reader, start=2):
            if not row:
                raise PipelineError(f"{path}: line {line}: empty line (the file must keep one row per FER row)")
            if len(row) != len(HEADER):
                raise PipelineError(f"{path}: line {line}: {len(row)} fields, expected {len(HEADER)}")
            try:
                counts = [int(v) for v in row[2:]]
            except ValueError:
                raise PipelineError(f"{path}: line {line}: vote counts {row[2:]} are not all integers") from None
            if min(counts) < 0:
                raise PipelineError(f"{path}: line {line}: negative vote count")
            usage.append(row[0])
            has_image.append(bool(row[1].strip()))
            votes.append(counts)
    if not votes:
        raise PipelineError(f"{path}: no rows after the header")
    return FerPlusVotes(np.array(usage), np.array(has_image), np.array(votes, dtype=np.int64))


def majority(votes: np.ndarray) -> np.ndarray:
    """Column index in VOTES of each row's majority label, or VOTES.index('unknown'), as the
    FER+ reference code computes it (steps 2 and 3 of the module docstring)."""
    kept = np.where(votes <= 1, 0, votes)
    total = kept.sum(axis=1)
    top = kept.argmax(axis=1)
    peak = kept[np.arange(len(kept)), top]
    return np.where(2 * peak > total, top, VOTES.index("unknown"))   # peak > 0.5 * total, exactly


def check_aligned(fer_usage: np.ndarray, plus: FerPlusVotes, fer_name: str, plus_name: str) -> None:
    """The FER+ file must have FER's row count and, row by row, its Usage."""
    if len(plus.usage) != len(fer_usage):
        first = min(len(plus.usage), len(fer_usage))
        raise PipelineError(f"{plus_name}: {len(plus.usage)} rows but {fer_name} has {len(fer_usage)}; the files "
                            f"differ from row {first} (line {first + 2}) on")
    differ = np.flatnonzero(plus.usage != fer_usage)
    if differ.size:
        i = int(differ[0])
        raise PipelineError(f"{plus_name}: line {i + 2}: Usage {str(plus.usage[i])!r} but {fer_name} row {i} is "
                            f"{str(fer_usage[i])!r} ({differ.size} of {len(differ)} rows differ); is this the FER+ "
                            f"file of this FER-2013?")


def ferplus_labels(plus: FerPlusVotes) -> tuple[np.ndarray, dict[str, int]]:
    """(N,) FER-order labels, -1 for dropped faces, and the drop count per reason."""
    column = majority(plus.votes)
    to_fer = np.full(len(VOTES), UNLABELED, dtype=np.int64)
    for name, label in FER_LABEL.items():
        to_fer[VOTES.index(name)] = label
    labels = np.where(plus.has_image, to_fer[column], UNLABELED)
    dropped = {
        "no_image": int((~plus.has_image).sum()),
        "unknown": int((plus.has_image & (column == VOTES.index("unknown"))).sum()),
        "not_a_face": int((plus.has_image & (column == VOTES.index("NF"))).sum()),
        "contempt": int((plus.has_image & (column == VOTES.index("contempt"))).sum()),
    }
    assert sum(dropped.values()) == int((labels == UNLABELED).sum())
    return labels, dropped


def relabel(arrays: dict[str, np.ndarray], rows: np.ndarray, path: str | Path, fer_name: str,
            fer_data_rows: int) -> tuple[dict[str, np.ndarray], dict]:
    """Replace the decoded FER labels by FER+ majority labels.

    ``rows`` gives, for each decoded face, its data-row index in the FER CSV (lines skipped as
    bad leave gaps); ``fer_data_rows`` is the number of data rows the CSV had. Returns the new
    arrays and a record for the metrics file (the file, the drops per reason and per Usage).
    """
    path = ferplus_file(path)
    plus = read_votes(path)
    usage_by_row = np.full(fer_data_rows, "", dtype=object)
    usage_by_row[rows] = arrays["usage"]
    if len(plus.usage) != fer_data_rows:
        check_aligned(usage_by_row.astype(str), plus, fer_name, str(path))
    # Rows FER's decoder skipped cannot be compared: take FER+'s Usage for them.
    known = np.zeros(fer_data_rows, bool)
    known[rows] = True
    check_aligned(np.where(known, usage_by_row.astype(str), plus.usage), plus, fer_name, str(path))
    labels, dropped = ferplus_labels(plus)
    new = {**arrays, "labels": labels[rows]}
    usages = sorted(set(arrays["usage"].tolist()))
    record = {"file": str(path), "dropped": dropped,
              "dropped_by_usage": {u: int(((new["usage"] == u) & (new["labels"] == UNLABELED)).sum())
                                   for u in usages}}
    return new, record
