"""Decode FER-2013's CSV (``emotion,pixels,Usage``) into arrays, validating every line.

The pixel column is 35,887 x 2,304 small integers written as text: parsing it row by row
(``np.array(row.split())``) costs tens of seconds. Here the whole file is one byte array
and every step is a numpy operation over many rows at once:

1. Newline positions give the lines, and each line's two commas (at known places in a
   well-formed line) its fields; labels and Usage are checked for all lines together.
2. Every byte outside the pixel fields is overwritten with a space, so the buffer becomes
   one stream of digit runs separated by spaces. A digit run ends where a digit is followed
   by a non-digit; from each end, the last digit and the two bytes before it give the
   value (a space before the last digit ends the run there), in a few operations over all
   runs at once.
3. Per line, the number of runs must be 2,304, every byte of the field a digit or a space,
   and every value at most 255.

Lines the vectorised checks flag are diagnosed one at a time with plain Python, which
words the message (and keeps the fast path honest: a flagged line with no findable problem
is a bug, not bad data). The fast path and the diagnosis are one module because they must
agree on what a well-formed line is, byte for byte.
"""
from __future__ import annotations

import os
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from ..errors import PipelineError
from ..labels import EMOTIONS, NUM_CLASSES
from .fer_csv import HEADER, SIDE, USAGES

PIXELS = SIDE * SIDE
# Lines listed by number in the report when bad lines are skipped; the count is always exact.
MAX_LISTED_LINES = 100
# Lines parsed per vectorised step: about 2 MB of text, so that a step's temporaries stay
# in the CPU cache (measured 2x faster than 9 MB steps) and peak memory is about the file
# plus the decoded images. Steps run on a few threads: numpy releases the GIL inside them.
_CHUNK_LINES = 256
_THREADS = max(1, min(4, os.cpu_count() or 1))

_NEWLINE, _CR, _COMMA, _SPACE = 10, 13, 44, 32
_BOM = b"\xef\xbb\xbf"
_DIGITS = re.compile(rb"[0-9]+")


@dataclass(frozen=True)
class DecodeConfig:
    """The `decode` section of params.yaml."""
    on_bad_row: Literal["fail", "skip"]


def decode_fer_csv(path: str | Path, on_bad_row: Literal["fail", "skip"] = "fail"
                   ) -> tuple[dict[str, np.ndarray], dict]:
    """Decode a canonical FER-2013 CSV file.

    Returns ``(arrays, report)``: arrays ``images`` (N,48,48) uint8, ``labels`` (N,) int64
    (FER order), ``usage`` (N,) str; the report holds ``lines`` (data lines read),
    ``rows`` (decoded), ``data_rows`` (non-blank lines after the header), ``row_index`` (each
    decoded face's data-row index), ``blank_lines`` and ``skipped`` (``count``, the first
    ``MAX_LISTED_LINES`` ``lines`` by 1-based line number, and counts per ``problems``).
    With ``on_bad_row="fail"`` the first bad line raises PipelineError naming its number.
    """
    path = Path(path)
    if not path.is_file():
        raise PipelineError(f"{path}: FER-2013 CSV not found (run `dvc repro download_fer`)")
    # np.fromfile gives a private, writable copy: step 2 above overwrites it in place.
    return decode_fer_buffer(np.fromfile(path, dtype=np.uint8), str(path), on_bad_row)


def decode_fer_buffer(buf: np.ndarray, name: str, on_bad_row: Literal["fail", "skip"] = "fail"
                      ) -> tuple[dict[str, np.ndarray], dict]:
    """Decode the bytes of a FER-2013 CSV held in ``buf`` (uint8, writable; it is overwritten).

    ``name`` is the file name used in error messages. See ``decode_fer_csv``.
    """
    if on_bad_row not in ("fail", "skip"):
        raise PipelineError(f"params.yaml: `decode.on_bad_row` is {on_bad_row!r}; expected 'fail' or 'skip'")
    if buf.dtype != np.uint8 or buf.ndim != 1 or not buf.flags.writeable:
        raise TypeError("decode_fer_buffer needs a writable 1-D uint8 array")
    starts, ends = _lines(buf)
    if not (ends > starts).any():
        raise PipelineError(f"{name}: the file is empty; expected a header `{HEADER}` and 35,887 rows "
                            f"(rerun `dvc repro download_fer`)")
    header = buf[starts[0]:ends[0]].tobytes()
    if header.startswith(_BOM):
        header = header[len(_BOM):]
    if header.decode("utf-8", "replace") != HEADER:
        raise PipelineError(
            f"{name}: line 1: header is {_show(header)}, expected `{HEADER}`"
            + (" (an icml_face_data.csv layout: let download_fer normalise it)" if b"Usage" in header
               and b"pixels" in header else ""))
    starts, ends = starts[1:], ends[1:]
    line_no = np.arange(2, len(starts) + 2)

    blank = ends == starts
    n_blank = int(blank.sum())
    starts, ends, line_no = starts[~blank], ends[~blank], line_no[~blank]
    if len(starts) == 0:
        raise PipelineError(f"{name}: no data rows after the header")

    c1, c2, shaped = _fields(buf, starts, ends)
    labels = _parse_labels(buf, starts, c1, shaped)
    usage_idx = _parse_usage(buf, c2, ends, shaped)
    fields_ok = shaped & (labels >= 0) & (usage_idx >= 0)

    # Diagnose the label/Usage/shape failures now, while those bytes are still intact.
    problems: dict[int, tuple[str, str]] = {}
    for i in np.flatnonzero(~fields_ok):
        problems[int(i)] = _line_problem(buf[starts[i]:ends[i]].tobytes())

    _blank_outside_pixels(buf, c1[shaped], c2[shaped])
    images, pixels_ok = _parse_pixels(buf, c1[shaped], c2[shaped])
    pixel_rows = np.flatnonzero(shaped)
    for j in np.flatnonzero(~pixels_ok):
        i = int(pixel_rows[j])
        if i not in problems:
            # Label and Usage passed; their bytes are blanked now, so the line is rebuilt.
            line = b"%d,%s,%s" % (labels[i], buf[c1[i] + 1:c2[i]].tobytes(), USAGES[usage_idx[i]].encode())
            problems[i] = _line_problem(line)

    bad = sorted(problems)
    unexplained = [i for i in bad if problems[i][0] == "internal"]
    if unexplained:
        raise RuntimeError(f"{name}: line {line_no[unexplained[0]]}: rejected by the decoder, but no problem "
                           f"found in it (a decoder bug)")
    if bad and on_bad_row == "fail":
        i = bad[0]
        more = f" ({len(bad) - 1} more bad lines)" if len(bad) > 1 else ""
        raise PipelineError(f"{name}: line {line_no[i]}: {problems[i][1]}{more}; fix the file, or set "
                            f"`decode.on_bad_row: skip` to drop bad lines")

    keep_shaped = pixels_ok & fields_ok[shaped]
    keep = np.zeros(len(starts), bool)
    keep[pixel_rows[keep_shaped]] = True
    if not keep.any():
        raise PipelineError(f"{name}: none of its {len(starts)} data lines is valid "
                            f"(first problem, line {line_no[bad[0]]}: {problems[bad[0]][1]})")
    images = images if keep_shaped.all() else images[keep_shaped]
    arrays = {
        "images": images.reshape(-1, SIDE, SIDE),
        "labels": labels[keep].astype(np.int64),
        "usage": np.array(USAGES)[usage_idx[keep]],
    }
    kinds: dict[str, int] = {}
    for i in bad:
        kinds[problems[i][0]] = kinds.get(problems[i][0], 0) + 1
    report = {
        "lines": int(len(starts) + n_blank),
        "data_rows": int(len(starts)),
        "row_index": np.flatnonzero(keep),   # each decoded face's data-row index (blank lines not counted)
        "rows": int(keep.sum()),
        "blank_lines": n_blank,
        "skipped": {
            "count": len(bad),
            "lines": [int(line_no[i]) for i in bad[:MAX_LISTED_LINES]],
            "problems": dict(sorted(kinds.items())),
        },
    }
    return arrays, report


def counts(arrays: dict[str, np.ndarray]) -> dict:
    """Rows per Usage, per class, and per class within each Usage (class names, FER order);
    unlabeled rows (-1, faces FER+ drops) count in ``usage`` only."""
    labels, usage = arrays["labels"], arrays["usage"]

    def per_class(mask: np.ndarray) -> dict[str, int]:
        found = np.bincount(labels[mask & (labels >= 0)], minlength=NUM_CLASSES)
        return {EMOTIONS[k]: int(found[k]) for k in range(NUM_CLASSES)}

    return {
        "usage": {u: int((usage == u).sum()) for u in USAGES},
        "classes": per_class(np.ones(len(labels), bool)),
        "classes_by_usage": {u: per_class(usage == u) for u in USAGES},
    }


# ----------------------------------------------------------------------------- structure

def _positions(buf: np.ndarray, byte: int, block: int = 1 << 24) -> np.ndarray:
    """Positions of ``byte``, found block by block so the boolean temporary stays small."""
    found = [np.flatnonzero(buf[off:off + block] == byte) + off for off in range(0, buf.size, block)]
    return np.concatenate(found) if found else np.zeros(0, np.int64)


def _lines(buf: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start and end (exclusive, without a trailing CR) of every line."""
    newlines = _positions(buf, _NEWLINE)
    starts = np.concatenate([[0], newlines + 1])
    ends = np.concatenate([newlines, [buf.size]])
    if starts[-1] == buf.size:  # the file ends with a newline: no last, empty line
        starts, ends = starts[:-1], ends[:-1]
    has_cr = (ends > starts) & (buf[np.maximum(ends - 1, 0)] == _CR) if buf.size else ends > starts
    return starts, ends - has_cr


def _fields(buf: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Positions of each line's two commas, and whether the line has exactly two.

    In a well-formed line the label is one byte and Usage one of three words, so both
    commas sit at known places and need no search through the 9 kB of pixels; only the
    other lines are searched, one by one. A third comma inside the pixels is not seen here:
    the pixel checks reject the byte and the diagnosis counts the columns.
    """
    c1 = starts + 1
    c2 = np.full(len(starts), -1)
    last = buf.size - 1
    for word in USAGES:
        pos = ends - len(word) - 1
        hit = (c2 < 0) & (pos > c1) & (buf[np.clip(pos, 0, last)] == _COMMA)
        c2[hit] = pos[hit]
    shaped = (c2 > c1) & (buf[np.minimum(c1, last)] == _COMMA)
    for i in np.flatnonzero(~shaped):
        line = buf[starts[i]:ends[i]].tobytes()
        if line.count(b",") == 2:
            c1[i], c2[i], shaped[i] = starts[i] + line.index(b","), starts[i] + line.rindex(b","), True
    c1[~shaped] = c2[~shaped] = starts[~shaped]
    return c1, c2, shaped


def _parse_labels(buf: np.ndarray, starts: np.ndarray, c1: np.ndarray, shaped: np.ndarray) -> np.ndarray:
    """Label per line, -1 where the field is not one digit 0..6."""
    single = shaped & (c1 - starts == 1)
    digit = buf[starts].astype(np.int64) - ord("0")
    return np.where(single & (digit >= 0) & (digit < NUM_CLASSES), digit, -1)


def _parse_usage(buf: np.ndarray, c2: np.ndarray, ends: np.ndarray, shaped: np.ndarray) -> np.ndarray:
    """Index into USAGES per line, -1 where the field is none of them."""
    found = np.full(len(c2), -1)
    length = ends - c2 - 1
    for k, usage in enumerate(USAGES):
        word = np.frombuffer(usage.encode(), np.uint8)
        rows = np.flatnonzero(shaped & (length == len(word)))
        if len(rows):
            text = buf[c2[rows, None] + 1 + np.arange(len(word))]
            found[rows[(text == word).all(axis=1)]] = k
    return found


def _blank_outside_pixels(buf: np.ndarray, c1: np.ndarray, c2: np.ndarray) -> None:
    """Overwrite every byte outside the pixel fields (open intervals (c1, c2)) with a space."""
    gap_starts = np.concatenate([[0], c2])
    gap_ends = np.concatenate([c1 + 1, [buf.size]])
    lengths = gap_ends - gap_starts
    offsets = np.repeat(gap_starts - np.concatenate([[0], np.cumsum(lengths)[:-1]]), lengths)
    buf[offsets + np.arange(lengths.sum())] = _SPACE


# ----------------------------------------------------------------------------- pixels

def _parse_pixels(buf: np.ndarray, c1: np.ndarray, c2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pixels of each line's field (c1, c2) as (lines, 2304) uint8, and which lines are valid.

    ``buf`` holds only spaces outside the fields (see ``_blank_outside_pixels``); rows of
    invalid lines are left zero.
    """
    n = len(c1)
    images = np.zeros((n, PIXELS), np.uint8)
    ok = np.ones(n, bool)

    def step(lo: int) -> None:
        hi = min(lo + _CHUNK_LINES, n)
        ok[lo:hi] = _parse_chunk(buf, c1[lo:hi], c2[lo:hi], images[lo:hi])

    with ThreadPoolExecutor(_THREADS) as pool:
        list(pool.map(step, range(0, n, _CHUNK_LINES)))
    return images, ok


def _parse_chunk(buf: np.ndarray, c1: np.ndarray, c2: np.ndarray, out: np.ndarray) -> np.ndarray:
    """Parse the fields of a run of lines into ``out``; return which lines are valid."""
    # The segment starts two bytes before the first field so that every run's last digit
    # has two bytes before it inside the segment (they are blanks: comma and label).
    a, b = int(c1[0]) - 2, int(c2[-1]) + 1
    seg = buf[a:b]
    digit = seg >= ord("0")  # exact once the alphabet check below has passed
    # Run ends: a digit followed by a non-digit. Index k in `ends` means byte k + 2 of seg.
    ends = np.flatnonzero(np.greater(digit[2:-1], digit[3:]))
    hundreds, tens, units = seg.take(ends), seg[1:].take(ends), seg[2:].take(ends)
    tens_is_digit = tens >= ord("0")
    hundreds_is_digit = hundreds >= ord("0")
    hundreds_is_digit &= tens_is_digit  # "7 5": the 7 belongs to the run before
    # uint8 arithmetic wraps for spaces (32 - 48); multiplying by the digit flags zeroes them.
    tens -= np.uint8(ord("0"))
    tens *= tens_is_digit
    hundreds -= np.uint8(ord("0"))
    hundreds *= hundreds_is_digit
    value = units.astype(np.uint16)
    value -= ord("0")
    value += tens * np.uint8(10)
    value += hundreds.astype(np.uint16) * np.uint16(100)
    digits_in_runs = len(ends) + np.count_nonzero(tens_is_digit) + np.count_nonzero(hundreds_is_digit)

    # Runs per line, from the run-end positions and the field bounds (both sorted).
    lo = np.searchsorted(ends, c1 - a - 2)
    hi = np.searchsorted(ends, c2 - a - 2)
    per_line = hi - lo
    ok = per_line == PIXELS

    # A byte other than a digit or a space, a run of four digits or more (only its last
    # three were read), or a value over 255 spoils its line.
    n_digits = np.count_nonzero(digit)
    if seg.max(initial=0) > ord("9") or np.count_nonzero(seg == _SPACE) + n_digits != seg.size \
            or n_digits != digits_in_runs or value.max(initial=0) > 255:
        digit &= seg <= ord("9")
        odd = np.flatnonzero(~digit & (seg != _SPACE))
        long_run = np.flatnonzero(digit[3:] & digit[2:-1] & digit[1:-2] & digit[:-3]) + 3
        big = ends[value > 255] + 2
        spoiled = np.concatenate([odd, long_run, big]) + a
        ok[np.unique(np.searchsorted(c1, spoiled, side="right") - 1)] = False

    if ok.all():
        out[:] = value.reshape(-1, PIXELS)
    elif ok.any():
        out[ok] = value[np.repeat(ok, per_line)].reshape(-1, PIXELS)
    return ok


# ----------------------------------------------------------------------------- diagnosis

def _show(raw: bytes, limit: int = 40) -> str:
    text = raw.decode("utf-8", "replace")
    return repr(text if len(text) <= limit else text[:limit] + "...")


def _line_problem(line: bytes) -> tuple[str, str]:
    """(kind, message) for a data line the field checks rejected."""
    if line.decode("utf-8", "replace").strip() == HEADER:
        return "duplicate header", f"duplicate header `{HEADER}` inside the data (files concatenated?)"
    fields = line.split(b",")
    if len(fields) != 3:
        return "column count", f"{len(fields)} columns, expected 3 (`{HEADER}`)"
    label, pixels, usage = fields
    if not _DIGITS.fullmatch(label):
        return "label", f"label {_show(label)} is not an integer 0..6"
    if int(label) >= NUM_CLASSES:
        return "label", f"label {int(label)} is outside 0..6"
    if usage.decode("utf-8", "replace") not in USAGES:
        return "usage", f"unknown Usage {_show(usage)} (expected one of: {', '.join(USAGES)})"
    if len(label) != 1:  # "06": an integer 0..6, but the format writes one digit
        return "label", f"label {_show(label)} is not a single digit 0..6"
    return _pixel_problem(pixels)


def _pixel_problem(field: bytes) -> tuple[str, str]:
    """(kind, message) for a pixel field the vectorised checks rejected."""
    tokens = [t for t in field.split(b" ") if t]
    for k, token in enumerate(tokens, start=1):
        if not _DIGITS.fullmatch(token):
            return "pixel value", f"pixel {k} is {_show(token)}, not an integer 0..255"
        if len(token) > 3 or int(token) > 255:
            return "pixel value", f"pixel {k} is {_show(token)}, outside 0..255"
    if len(tokens) != PIXELS:
        return "pixel count", f"{len(tokens)} pixels, expected {PIXELS} ({SIDE}x{SIDE})"
    return "internal", "no problem found"
