"""The step every source ends in: the CSV as shipped, streamed once into the canonical layout
while its MD5 is computed and its rows counted."""
from __future__ import annotations

import hashlib
import tarfile
import zipfile
from pathlib import Path
from typing import BinaryIO

from ...errors import PipelineError
from . import BLOCK_SIZE
from .archive import open_csv
from .layouts import CANONICAL_HEADER, FER_CSV, ICML_CSV, ICML_HEADER, expected_md5

_BOM = b"\xef\xbb\xbf"


def write_canonical_csv(src: Path, out: Path, md5_spec: str | None) -> dict:
    """Stream the CSV in ``src`` to ``out`` as ``emotion,pixels,Usage``, verifying its MD5.

    Returns ``file`` (layout found), ``md5`` (of the CSV as shipped), ``md5_expected`` and
    ``rows``. Raises PipelineError, leaving ``out`` to the caller's atomic_path, when the
    layout is unknown or the checksum does not match.
    """
    digest = hashlib.md5()
    try:
        with open_csv(src) as (stream, what), open(out, "wb") as dst:
            header = stream.readline()
            digest.update(header)
            text = header.rstrip(b"\r\n")
            text = text[len(_BOM):] if text.startswith(_BOM) else text
            if text == CANONICAL_HEADER:
                layout = FER_CSV
                dst.write(header)
                rows = _copy_counting_lines(stream, dst, digest)
            elif text == ICML_HEADER:
                layout = ICML_CSV
                dst.write(CANONICAL_HEADER + b"\n")
                rows = 0
                for line in stream:
                    digest.update(line)
                    dst.write(_icml_to_canonical(line))
                    rows += 1
            elif not header:
                raise PipelineError(f"{what}: the file is empty")
            else:
                raise PipelineError(
                    f"{what}: line 1 is {text[:60].decode('utf-8', 'replace')!r}, neither fer2013.csv's header "
                    f"`emotion,pixels,Usage` nor icml_face_data.csv's `emotion, Usage, pixels`")
    except (OSError, EOFError, zipfile.BadZipFile, tarfile.TarError) as exc:
        raise PipelineError(f"{src}: cannot read it ({type(exc).__name__}: {exc}); the file is damaged: "
                            f"fetch it again") from None
    seen = digest.hexdigest()
    expected = expected_md5(md5_spec, layout)
    if expected is not None and seen != expected:
        raise PipelineError(
            f"{what}: MD5 {seen} does not match the expected {expected} (`fer.md5: {md5_spec}`); the file is "
            f"damaged or another build of FER-2013: fetch it again, or set `fer.md5: null` to accept it")
    return {"file": layout, "md5": seen, "md5_expected": expected, "rows": rows}


def _copy_counting_lines(stream: BinaryIO, dst: BinaryIO, digest) -> int:
    """Copy the rest of ``stream`` to ``dst`` block by block, feeding ``digest``; its lines,
    a last one without a newline included. Blocks, not lines: the canonical layout is copied
    as it is, so no line needs splitting out."""
    lines, last = 0, b"\n"
    for block in iter(lambda: stream.read(BLOCK_SIZE), b""):
        digest.update(block)
        dst.write(block)
        lines += block.count(b"\n")
        last = block[-1:]
    return lines + (last != b"\n")


def _icml_to_canonical(line: bytes) -> bytes:
    """``emotion, Usage, pixels`` -> ``emotion,pixels,Usage``; a malformed line is kept as is for
    decode_fer to report by its line number."""
    body = line.rstrip(b"\r\n")
    fields = body.split(b",")
    if len(fields) != 3:
        return body + b"\n"
    emotion, usage, pixels = (f.strip() for f in fields)
    return b",".join((emotion, pixels, usage)) + b"\n"
