"""FER+ majority labels: the reference rule, alignment with FER-2013, and the real file."""
from __future__ import annotations

import gzip
import sys
from pathlib import Path

import numpy as np
import pytest

from staged_fer.params import parse
from staged_fer.data.fer_decode import counts
from staged_fer.data.ferplus import HEADER, VOTES, FerLabelsConfig, FerPlusVotes, majority, read_votes, relabel
from staged_fer.errors import PipelineError
from staged_fer.labels import LABEL_OF

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
REAL_FER, REAL_FERPLUS = SHARED / "fer2013.csv.gz", SHARED / "ferplus" / "fer2013new.csv"


def reference_process_data(emotion_raw: list[float]) -> list[float]:
    """microsoft/FERPlus src/ferplus.py, FERPlusReader._process_data, mode='majority', verbatim
    but for the mode branches it does not take."""
    size = len(emotion_raw)
    emotion_unknown = [0.0] * size
    emotion_unknown[-2] = 1.0
    for i in range(size):
        if emotion_raw[i] < 1.0 + sys.float_info.epsilon:
            emotion_raw[i] = 0.0
    sum_list = sum(emotion_raw)
    emotion = [0.0] * size
    maxval = max(emotion_raw)
    if maxval > 0.5 * sum_list:
        emotion[np.argmax(emotion_raw)] = maxval
    else:
        emotion = emotion_unknown
    return [float(i) / sum(emotion) for i in emotion]


def test_majority_is_the_reference_rule():
    rng = np.random.default_rng(0)
    # Ten votes spread over the ten columns, skewed so that every branch is common.
    votes = np.stack([rng.multinomial(10, rng.dirichlet(np.full(10, 0.3))) for _ in range(4000)])
    expected = [int(np.argmax(reference_process_data(list(map(float, v))))) for v in votes]
    assert majority(votes).tolist() == expected
    assert len(set(expected)) == 10


@pytest.mark.parametrize("votes, label", [
    ((6, 0, 1, 1, 0, 0, 0, 0, 2, 0), "neutral"),   # 1-votes removed: 6 of 8
    ((4, 0, 0, 1, 3, 2, 0, 0, 0, 0), "unknown"),   # 4 of 9 is not more than half
    ((4, 4, 0, 0, 0, 0, 0, 0, 0, 2), "unknown"),   # a tie
    ((1, 1, 1, 1, 1, 1, 1, 1, 1, 1), "unknown"),   # no votes left
    ((0, 0, 0, 0, 0, 0, 0, 0, 0, 10), "NF"),
    ((0, 0, 0, 0, 0, 0, 0, 6, 0, 4), "contempt"),
])
def test_majority_cases(votes, label):
    assert VOTES[majority(np.array([votes]))[0]] == label


def write_votes(path: Path, usage: list[str], votes: np.ndarray, names: list[str] | None = None) -> Path:
    names = names or [f"fer{i:07d}.png" for i in range(len(usage))]
    lines = [",".join(HEADER)] + [",".join([u, n, *map(str, v)]) for u, n, v in zip(usage, names, votes)]
    path.write_text("\n".join(lines) + "\n")
    return path


def one_hot(column: str, n: int = 10) -> list[int]:
    return [n if c == column else 0 for c in VOTES]


def test_relabel_keeps_rows_and_counts_every_drop(tmp_path):
    usage = ["Training"] * 4 + ["PublicTest", "PrivateTest"]
    votes = np.array([one_hot("happiness"), one_hot("NF"), one_hot("contempt"), [3, 3, 4, 0, 0, 0, 0, 0, 0, 0],
                      one_hot("fear"), one_hot("anger")])
    names = [f"fer{i:07d}.png" for i in range(6)]
    names[4] = ""
    path = write_votes(tmp_path / "fer2013new.csv", usage, votes, names)
    arrays = {"images": np.zeros((6, 48, 48), np.uint8), "labels": np.zeros(6, np.int64), "usage": np.array(usage)}
    new, record = relabel(arrays, np.arange(6), path, "fer2013.csv", 6)
    assert new["labels"].tolist() == [LABEL_OF["Happy"], -1, -1, -1, -1, LABEL_OF["Angry"]]
    assert record["dropped"] == {"no_image": 1, "unknown": 1, "not_a_face": 1, "contempt": 1}
    assert record["dropped_by_usage"] == {"PrivateTest": 0, "PublicTest": 1, "Training": 3}
    assert counts(new)["classes_by_usage"]["Training"]["Happy"] == 1 and counts(new)["usage"]["Training"] == 4
    # A FER line skipped as bad: the other rows keep their own FER+ label.
    kept = np.array([0, 1, 2, 3, 5])
    sub = {k: v[kept] for k, v in arrays.items()}
    assert relabel(sub, kept, path, "fer2013.csv", 6)[0]["labels"].tolist() == [LABEL_OF["Happy"], -1, -1, -1,
                                                                                LABEL_OF["Angry"]]


def test_misaligned_file_names_the_first_differing_row(tmp_path):
    arrays = {"images": np.zeros((3, 48, 48), np.uint8), "labels": np.zeros(3, np.int64),
              "usage": np.array(["Training", "Training", "PublicTest"])}
    short = write_votes(tmp_path / "short.csv", ["Training", "Training"], np.array([one_hot("fear")] * 2))
    with pytest.raises(PipelineError, match=r"short.csv: 2 rows but fer2013.csv has 3; the files differ from row 2 \(line 4\)"):
        relabel(arrays, np.arange(3), short, "fer2013.csv", 3)
    swapped = write_votes(tmp_path / "swapped.csv", ["Training", "PublicTest", "PublicTest"],
                          np.array([one_hot("fear")] * 3))
    with pytest.raises(PipelineError, match=r"swapped.csv: line 3: Usage 'PublicTest' but fer2013.csv row 1 is 'Training'"):
        relabel(arrays, np.arange(3), swapped, "fer2013.csv", 3)


def test_path_may_name_the_folder_holding_the_file(tmp_path):
    """fer.ferplus_path is a dvc.yaml dep that must exist even with `labels: fer`, so its default
    is a folder (shipped with a README) that the file is put into."""
    usage = ["Training", "PublicTest"]
    write_votes(tmp_path / "fer2013new.csv", usage, np.array([one_hot("fear"), one_hot("anger")]))
    arrays = {"images": np.zeros((2, 48, 48), np.uint8), "labels": np.zeros(2, np.int64), "usage": np.array(usage)}
    new, record = relabel(arrays, np.arange(2), tmp_path, "fer2013.csv", 2)
    assert new["labels"].tolist() == [LABEL_OF["Fear"], LABEL_OF["Angry"]]
    assert record["file"] == str(tmp_path / "fer2013new.csv")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(PipelineError, match=r"empty/fer2013new.csv: FER\+ label file not found"):
        read_votes(empty)
    with pytest.raises(PipelineError, match=r"`fer`: ferplus_path is empty"):
        parse(FerLabelsConfig, {"labels": "fer", "ferplus_path": ""}, "fer")
    with pytest.raises(PipelineError, match=r"`fer.ferplus_path` must be a string, got None"):
        parse(FerLabelsConfig, {"labels": "fer", "ferplus_path": None}, "fer")


@pytest.mark.parametrize("text, message", [
    ("Usage,Image name,neutral\n", "line 1: header is"),
    (",".join(HEADER) + "\nTraining,a.png,1,2\n", "line 2: 4 fields, expected 12"),
    (",".join(HEADER) + "\nTraining,a.png,1,2,x,0,0,0,0,0,0,0\n", "line 2: vote counts"),
    (",".join(HEADER) + "\n", "no rows after the header"),
])
def test_bad_file_is_named_with_its_line(tmp_path, text, message):
    path = tmp_path / "fer2013new.csv"
    path.write_text(text)
    with pytest.raises(PipelineError, match=message):
        read_votes(path)
    with pytest.raises(PipelineError, match="FER\\+ label file not found"):
        read_votes(tmp_path / "missing.csv")


@pytest.mark.slow  # about 30 s: reads the whole FER-2013 CSV
@pytest.mark.skipif(not (REAL_FER.is_file() and REAL_FERPLUS.is_file()), reason="../shared/data not present")
def test_real_file_is_aligned_with_real_fer2013():
    """The shipped fer2013new.csv against FER-2013's Usage column, row by row; its majority
    labels give the FER+ Training distribution commonly reported (neutral 8740, happiness 7287,
    surprise 3149, sadness 3014, anger 2100, fear 532, disgust 119)."""
    with gzip.open(REAL_FER, "rt") as fh:
        assert next(fh).strip() == "emotion,pixels,Usage"
        fer = [(int(line[:line.index(",")]), line.rstrip("\n").rsplit(",", 1)[1]) for line in fh if line.strip()]
    fer_labels, fer_usage = np.array([f[0] for f in fer]), np.array([f[1] for f in fer])
    plus: FerPlusVotes = read_votes(REAL_FERPLUS)
    assert len(plus.usage) == len(fer_usage) == 35_887
    assert (plus.usage == fer_usage).all()
    arrays = {"images": np.zeros((len(fer_usage), 1, 1), np.uint8), "labels": fer_labels, "usage": fer_usage}
    new, record = relabel(arrays, np.arange(len(fer_usage)), REAL_FERPLUS, "fer2013.csv", len(fer_usage))
    assert counts(new)["classes_by_usage"]["Training"] == {
        "Angry": 2100, "Disgust": 119, "Fear": 532, "Happy": 7287, "Sad": 3014, "Surprise": 3149, "Neutral": 8740}
    # Row by row, the reference code's own reading of each vote row agrees.
    expected = [int(np.argmax(reference_process_data(list(map(float, v))))) for v in plus.votes]
    assert majority(plus.votes).tolist() == expected
    assert sum(record["dropped"].values()) == int((new["labels"] < 0).sum())
