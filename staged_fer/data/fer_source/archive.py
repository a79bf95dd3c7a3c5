"""The FER CSV inside whatever it is packed in: plain, gzip, tar(.gz) or zip.

An archive is refused whole when any member could land outside an extraction folder (an
absolute or ``..`` path, a link, a device or special file): Kaggle's fer2013.tar.gz holds
none, so a file packed like that is not the one expected.
"""
from __future__ import annotations

import contextlib
import gzip
import re
import tarfile
import zipfile
from pathlib import Path, PurePosixPath
from typing import BinaryIO, Iterator

from ...errors import PipelineError
from .layouts import CSV_NAMES


@contextlib.contextmanager
def open_csv(src: Path) -> Iterator[tuple[BinaryIO, str]]:
    """Open the FER CSV in ``src`` (plain, gzip, tar(.gz) or zip); yield (stream, description)."""
    with open(src, "rb") as fh:
        magic = fh.read(4)
    if magic.startswith(b"PK\x03\x04"):
        with zipfile.ZipFile(src) as zf:
            infos = zf.infolist()
            _check_zip(src, infos)
            name = _pick(src, [i.filename for i in infos if not i.is_dir()])
            with zf.open(name) as stream:
                yield stream, f"{src}:{name}"
        return
    if _is_tar(src):
        with tarfile.open(src, "r:*") as tf:
            members = tf.getmembers()
            _check_tar(src, members)
            name = _pick(src, [m.name for m in members if m.isfile()])
            stream = tf.extractfile(name)
            assert stream is not None  # _check_tar admits regular files only
            with stream:
                yield stream, f"{src}:{name}"
        return
    if magic.startswith(b"\x1f\x8b"):
        with gzip.open(src, "rb") as stream:
            yield stream, str(src)
        return
    with open(src, "rb") as stream:
        yield stream, str(src)


def _is_tar(src: Path) -> bool:
    try:
        with tarfile.open(src, "r:*") as tf:
            return tf.next() is not None
    except (tarfile.TarError, OSError, EOFError):
        return False


def _pick(archive: Path, names: list[str]) -> str:
    """The archive member holding the CSV, by CSV_NAMES' order of preference."""
    for wanted in CSV_NAMES:
        hits = [n for n in names if PurePosixPath(n).name == wanted]
        if len(hits) > 1:
            raise PipelineError(f"{archive}: several members are named {wanted}: {hits}")
        if hits:
            return hits[0]
    shown = ", ".join(names[:10]) + (" ..." if len(names) > 10 else "")
    raise PipelineError(f"{archive}: holds neither fer2013.csv nor icml_face_data.csv (members: {shown})")


def _check_member_name(archive: Path, name: str) -> None:
    parts = PurePosixPath(name.replace("\\", "/")).parts
    if name.startswith(("/", "\\")) or re.match(r"[A-Za-z]:", name) or ".." in parts:
        raise PipelineError(f"{archive}: member {name!r} would land outside the extraction folder; "
                            f"refusing this archive (expected Kaggle's fer2013.tar.gz)")


def _check_tar(archive: Path, members: list[tarfile.TarInfo]) -> None:
    for m in members:
        _check_member_name(archive, m.name)
        if m.issym() or m.islnk():
            raise PipelineError(f"{archive}: member {m.name!r} is a link (to {m.linkname!r}); refusing this "
                                f"archive, as a link can point outside the extraction folder")
        if not (m.isfile() or m.isdir()):
            raise PipelineError(f"{archive}: member {m.name!r} is a device or special file; refusing this archive")


def _check_zip(archive: Path, infos: list[zipfile.ZipInfo]) -> None:
    for info in infos:
        _check_member_name(archive, info.filename)
        if (info.external_attr >> 16) & 0o170000 == 0o120000:
            raise PipelineError(f"{archive}: member {info.filename!r} is a link; refusing this archive")
