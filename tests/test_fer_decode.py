"""decode_fer: the vectorised decoder against a plain reference, every malformed input, the stage."""
from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest

from staged_fer.cli import run_stage
from staged_fer.data import fer_decode
from staged_fer.data.fer_decode import PIXELS, decode_fer_buffer, decode_fer_csv
from staged_fer.errors import PipelineError
from staged_fer.io import load_npz

REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "fer2013.csv.gz"
USAGES = ("Training", "PublicTest", "PrivateTest")
HEADER = "emotion,pixels,Usage"


def make_rows(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (n, PIXELS), dtype=np.uint8)
    # Every width of number, at the edges of the range too.
    images[:, :6] = [0, 9, 10, 99, 100, 255]
    labels = rng.integers(0, 7, n)
    usage = np.array(USAGES)[np.arange(n) % 3]
    return images, labels, usage


def csv_lines(images, labels, usage) -> list[str]:
    return [HEADER] + [f"{lab},{' '.join(map(str, img))},{u}" for img, lab, u in zip(images, labels, usage)]


def write(path: Path, lines: list[str], newline: str = "\n", final: bool = True) -> Path:
    path.write_bytes((newline.join(lines) + (newline if final else "")).encode())
    return path


@pytest.fixture(scope="module")
def rows():
    return make_rows(12)


@pytest.mark.parametrize("newline,final", [("\n", True), ("\r\n", True), ("\n", False)])
def test_decodes_exactly_what_was_written(tmp_path, rows, newline, final):
    images, labels, usage = rows
    arrays, report = decode_fer_csv(write(tmp_path / "f.csv", csv_lines(*rows), newline, final))
    assert arrays["images"].shape == (12, 48, 48) and arrays["images"].dtype == np.uint8
    np.testing.assert_array_equal(arrays["images"].reshape(12, -1), images)
    np.testing.assert_array_equal(arrays["labels"], labels)
    assert arrays["labels"].dtype == np.int64
    assert arrays["usage"].tolist() == usage.tolist()
    np.testing.assert_array_equal(report.pop("row_index"), np.arange(12))
    assert report == {"lines": 12, "rows": 12, "blank_lines": 0, "data_rows": 12,
                      "skipped": {"count": 0, "lines": [], "problems": {}}}


def test_many_chunks_and_threads_agree_with_reference(tmp_path, monkeypatch):
    # Small steps force many chunks (and both code paths of a chunk: all good / some bad).
    monkeypatch.setattr(fer_decode, "_CHUNK_LINES", 7)
    images, labels, usage = make_rows(40, seed=1)
    lines = csv_lines(images, labels, usage)
    lines[20] = lines[20].replace(" ", " 7 ", 1)   # 2305 pixels on line 21
    arrays, report = decode_fer_csv(write(tmp_path / "f.csv", lines), on_bad_row="skip")
    keep = np.arange(40) != 19
    np.testing.assert_array_equal(arrays["images"].reshape(-1, PIXELS), images[keep])
    np.testing.assert_array_equal(arrays["labels"], labels[keep])
    assert report["skipped"] == {"count": 1, "lines": [21], "problems": {"pixel count": 1}}


def _pixels(line: str) -> list[str]:
    return line.split(",")[1].split(" ")


def _set_pixel(line: str, k: int, text: str) -> str:
    label, pixels, usage = line.split(",")
    values = pixels.split(" ")
    values[k] = text
    return f"{label},{' '.join(values)},{usage}"


# (mutation of the data lines, problem kind, words the message must hold). Line 3 is spoiled.
BAD_LINES = {
    "extra column": (lambda l: l + ",x", "column count", "4 columns, expected 3"),
    "missing column": (lambda l: l.rsplit(",", 1)[0], "column count", "2 columns, expected 3"),
    "2303 pixels": (lambda l: ",".join([l.split(",")[0], " ".join(_pixels(l)[1:]), l.split(",")[2]]),
                    "pixel count", "2303 pixels, expected 2304"),
    "comma in pixels": (lambda l: _set_pixel(l, 10, "1,2"), "column count", "4 columns, expected 3"),
    "label 10": (lambda l: "10" + l[1:], "label", "label 10 is outside 0..6"),
    "label 06": (lambda l: "06" + l[1:], "label", "label '06' is not a single digit"),
    "2305 pixels": (lambda l: _set_pixel(l, 5, "1 2"), "pixel count", "2305 pixels"),
    "decimal pixel": (lambda l: _set_pixel(l, 7, "12.5"), "pixel value", "pixel 8 is '12.5', not an integer"),
    "text pixel": (lambda l: _set_pixel(l, 0, "ab"), "pixel value", "pixel 1 is 'ab', not an integer"),
    "negative pixel": (lambda l: _set_pixel(l, 3, "-4"), "pixel value", "pixel 4 is '-4', not an integer"),
    "pixel 256": (lambda l: _set_pixel(l, 9, "256"), "pixel value", "pixel 10 is '256', outside 0..255"),
    "pixel 1000": (lambda l: _set_pixel(l, 2303, "1000"), "pixel value", "pixel 2304 is '1000', outside 0..255"),
    "tab in pixels": (lambda l: _set_pixel(l, 4, "3\t4"), "pixel value", "pixel 5"),
    "label 7": (lambda l: "7" + l[1:], "label", "label 7 is outside 0..6"),
    "label text": (lambda l: "x" + l[1:], "label", "label 'x' is not an integer"),
    "unknown usage": (lambda l: l.rsplit(",", 1)[0] + ",Train", "usage", "unknown Usage 'Train'"),
    "duplicate header": (lambda l: HEADER, "duplicate header", "duplicate header"),
}


@pytest.mark.parametrize("case", sorted(BAD_LINES))
def test_bad_line_fails_naming_line_and_problem_or_is_skipped(tmp_path, rows, case):
    mutate, kind, words = BAD_LINES[case]
    lines = csv_lines(*rows)
    lines[3] = mutate(lines[3])
    path = write(tmp_path / "f.csv", lines)
    with pytest.raises(PipelineError) as err:
        decode_fer_csv(path)
    assert f"line 4: {words}" in str(err.value) and str(path) in str(err.value)
    assert "decode.on_bad_row: skip" in str(err.value)

    arrays, report = decode_fer_csv(path, on_bad_row="skip")
    keep = np.arange(12) != 2
    np.testing.assert_array_equal(arrays["images"].reshape(-1, PIXELS), rows[0][keep])
    np.testing.assert_array_equal(arrays["labels"], rows[1][keep])
    assert report["rows"] == 11
    assert report["skipped"] == {"count": 1, "lines": [4], "problems": {kind: 1}}


def test_first_bad_line_is_named_and_others_counted(tmp_path, rows):
    lines = csv_lines(*rows)
    lines[9] = "9" + lines[9][1:]
    lines[2] = _set_pixel(lines[2], 0, "300")
    with pytest.raises(PipelineError, match=r"line 3: pixel 1 is '300'.*\(1 more bad lines\)"):
        decode_fer_csv(write(tmp_path / "f.csv", lines))


def test_skipped_lines_list_is_capped_but_count_exact(tmp_path, monkeypatch):
    monkeypatch.setattr(fer_decode, "MAX_LISTED_LINES", 3)
    images, labels, usage = make_rows(8)
    lines = csv_lines(images, labels, usage)
    for i in range(1, 7):
        lines[i] = "8" + lines[i][1:]
    _, report = decode_fer_csv(write(tmp_path / "f.csv", lines), on_bad_row="skip")
    assert report["skipped"] == {"count": 6, "lines": [2, 3, 4], "problems": {"label": 6}}
    assert report["rows"] == 2


@pytest.mark.parametrize("content,words", [
    (b"", "the file is empty"),
    (b"\n\n", "the file is empty"),
    (b"emotion,pixels,Usage\n", "no data rows after the header"),
    (b"label,pixels,usage\n0,1 2,Training\n", "line 1: header is 'label,pixels,usage', expected"),
    (b"emotion, Usage, pixels\n0, Training, 1 2\n", "icml_face_data.csv layout"),
])
def test_file_level_problems(tmp_path, content, words):
    path = tmp_path / "f.csv"
    path.write_bytes(content)
    for mode in ("fail", "skip"):
        with pytest.raises(PipelineError, match=words):
            decode_fer_csv(path, on_bad_row=mode)


def test_every_line_bad_is_an_error_even_when_skipping(tmp_path, rows):
    lines = [HEADER] + ["0,1 2 3,Training"] * 3
    with pytest.raises(PipelineError, match="none of its 3 data lines is valid"):
        decode_fer_csv(write(tmp_path / "f.csv", lines), on_bad_row="skip")


def test_blank_lines_are_counted_not_decoded(tmp_path, rows):
    lines = csv_lines(*rows)
    lines.insert(5, "")
    arrays, report = decode_fer_csv(write(tmp_path / "f.csv", lines))
    assert report["blank_lines"] == 1 and report["rows"] == 12 and report["skipped"]["count"] == 0


def test_missing_file(tmp_path):
    with pytest.raises(PipelineError, match="not found.*download_fer"):
        decode_fer_csv(tmp_path / "nope.csv")


@pytest.mark.skipif(not REAL.is_file(), reason="the real FER-2013 is not beside this repository")
def test_real_fer2013_decodes_to_the_counts_in_its_rows():
    with gzip.open(REAL, "rb") as fh:
        raw = fh.read()
    arrays, report = decode_fer_buffer(np.frombuffer(raw, np.uint8).copy(), str(REAL))
    assert report["rows"] == raw.count(b"\n") - 1 == 35_887 and report["skipped"]["count"] == 0
    # The reference counts come straight from the text: each row ends with ",<Usage>\n".
    found = {u: int((arrays["usage"] == u).sum()) for u in USAGES}
    assert found == {u: raw.count(f",{u}\n".encode()) for u in USAGES}
    assert found == {"Training": 28_709, "PublicTest": 3_589, "PrivateTest": 3_589}
    # Pixels and labels of a few lines against a per-row split.
    starts = [0, 1, 17_000, 35_886]
    lines = raw.split(b"\n", max(starts) + 2)
    for i in starts:
        label, pixels, _ = lines[i + 1].split(b",")
        np.testing.assert_array_equal(arrays["images"][i].ravel(), np.array(pixels.split(), dtype=np.uint8))
        assert arrays["labels"][i] == int(label)


# ----------------------------------------------------------------------------- the stage

def _stage(tmp_path: Path, csv: Path, synthetic: bool, on_bad_row: str = "fail",
           ferplus: Path | None = None) -> tuple[int, Path]:
    from stages.decode_fer import main

    params = tmp_path / "params.yaml"
    labels = f"ferplus\n  ferplus_path: {ferplus}" if ferplus else f"fer\n  ferplus_path: {tmp_path}"
    params.write_text(f"decode:\n  on_bad_row: {on_bad_row}\nfer:\n  labels: {labels}\n")
    meta = tmp_path / "fer2013.meta.json"
    meta.write_text(json.dumps({"source": "file", "origin": "x", "file": "fer2013.csv", "md5": "0" * 32,
                                "md5_expected": None, "rows": 12, "synthetic": synthetic}))
    out = tmp_path / "out"
    rc = run_stage(main, ["--params", str(params), "--csv", str(csv), "--meta", str(meta),
                          "--out", str(out / "fer2013.npz"), "--reports", str(out / "reports")])
    return rc, out


def test_stage_writes_contract_metrics_and_figures(tmp_path, rows):
    images, labels, usage = rows
    rc, out = _stage(tmp_path, write(tmp_path / "f.csv", csv_lines(*rows)), synthetic=False)
    assert rc == 0
    fer = load_npz(out / "fer2013.npz")
    assert sorted(fer) == ["images", "labels", "source", "usage"]
    assert fer["images"].shape == (12, 48, 48) and fer["images"].dtype == np.uint8
    assert fer["labels"].dtype == np.int64 and fer["usage"].tolist() == usage.tolist()
    assert fer["source"].shape == () and str(fer["source"]) == "file"
    metrics = json.loads((out / "reports" / "counts.json").read_text())
    assert metrics["usage"] == {"Training": 4, "PublicTest": 4, "PrivateTest": 4}
    assert sum(metrics["classes"].values()) == 12 and metrics["synthetic"] is False
    assert metrics["skipped"]["count"] == 0
    pngs = sorted(p.name for p in (out / "reports").iterdir())
    assert pngs == ["counts.json", "figure6_class_distribution.png", "samples.png"]

    first = {p.name: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert _stage(tmp_path, tmp_path / "f.csv", synthetic=False)[0] == 0
    again = {p.name: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert first == again, "a rerun must give the same bytes, or DVC reruns every later stage"


def test_stage_marks_synthetic_data(tmp_path, rows):
    rc, out = _stage(tmp_path, write(tmp_path / "f.csv", csv_lines(*rows)), synthetic=True)
    assert rc == 0
    assert str(load_npz(out / "fer2013.npz")["source"]) == "synthetic"
    assert json.loads((out / "reports" / "counts.json").read_text())["synthetic"] is True


def test_stage_fails_with_one_line_and_writes_nothing(tmp_path, rows, capsys):
    lines = csv_lines(*rows)
    lines[5] = _set_pixel(lines[5], 100, "x")
    rc, out = _stage(tmp_path, write(tmp_path / "f.csv", lines), False)
    err = capsys.readouterr().err
    assert rc == 1 and err.count("\n") == 1 and "line 6: pixel 101 is 'x'" in err
    assert not out.exists()


def _valid_by_reference(line: str) -> bool:
    """A plain reading of the format, independent of the decoder."""
    fields = line.split(",")
    if len(fields) != 3 or fields[0] not in "0123456" or len(fields[0]) != 1 or fields[2] not in USAGES:
        return False
    tokens = [t for t in fields[1].split(" ") if t]
    return len(tokens) == PIXELS and all(t.isascii() and t.isdigit() and len(t) <= 3 and int(t) <= 255
                                         for t in tokens)


def test_random_damage_is_caught_exactly_where_a_plain_reading_finds_it(tmp_path, monkeypatch):
    monkeypatch.setattr(fer_decode, "_CHUNK_LINES", 16)
    rng = np.random.default_rng(7)
    images, labels, usage = make_rows(150, seed=2)
    lines = csv_lines(images, labels, usage)
    alphabet = list("0123456789  ,.-x\t9")
    for i in rng.choice(np.arange(1, 151), 100, replace=False):
        chars = list(lines[i])
        for _ in range(rng.integers(1, 3)):
            pos = int(rng.integers(0, len(chars)))
            action = rng.integers(0, 3)
            if action == 0:
                chars.insert(pos, str(rng.choice(alphabet)))
            elif action == 1:
                del chars[pos]
            else:
                chars[pos] = str(rng.choice(alphabet))
        lines[i] = "".join(chars)
    expected = [_valid_by_reference(line) for line in lines[1:]]
    arrays, report = decode_fer_csv(write(tmp_path / "f.csv", lines), on_bad_row="skip")
    assert report["skipped"]["count"] == expected.count(False) > 20
    assert report["skipped"]["lines"] == [i + 2 for i, ok in enumerate(expected) if not ok]
    # Every kept line decodes to what the plain reading gives.
    kept = [line for line, ok in zip(lines[1:], expected) if ok]
    reference = np.array([[int(t) for t in line.split(",")[1].split(" ") if t] for line in kept], np.uint8)
    np.testing.assert_array_equal(arrays["images"].reshape(len(kept), -1), reference)
    assert arrays["labels"].tolist() == [int(line[0]) for line in kept]


def test_stage_with_ferplus_labels(tmp_path, rows, capsys):
    from tests.test_ferplus import one_hot, write_votes
    images, labels, usage = rows
    csv = write(tmp_path / "f.csv", csv_lines(*rows))
    votes = np.array([one_hot("happiness")] * 11 + [one_hot("NF")])
    rc, out = _stage(tmp_path, csv, False, ferplus=write_votes(tmp_path / "new.csv", usage.tolist(), votes))
    assert rc == 0
    fer = load_npz(out / "fer2013.npz")
    assert fer["labels"].tolist() == [3] * 11 + [-1] and fer["usage"].tolist() == usage.tolist()
    metrics = json.loads((out / "reports" / "counts.json").read_text())
    assert metrics["labels"] == "ferplus" and metrics["ferplus"]["dropped"]["not_a_face"] == 1
    assert sum(metrics["classes"].values()) == 11 and metrics["classes"]["Happy"] == 11

    shuffled = write_votes(tmp_path / "bad.csv", usage[::-1].tolist(), votes)
    (tmp_path / "again").mkdir()
    rc, out = _stage(tmp_path / "again", csv, False, ferplus=shuffled)
    err = capsys.readouterr().err
    assert rc == 1 and err.count("\n") == 1 and "bad.csv: line 2: Usage" in err and not out.exists()
