"""A zip archive's members as a compact table, for split archives of hundreds of thousands of photos.

``zipfile.ZipFile`` holds a ZipInfo object per member, about 530 bytes each: a 300,000-photo
split archive would cost 160 MB in every process that opens it, the scan's and each aligner
worker's. Here the central directory is read in one pass into columns: the member names as one
array of UTF-8 bytes, sorted (UTF-8 byte order is code point order, the order of Python's
``sorted``), and each member's header offset, sizes, CRC-32 and method, 40 bytes a member
beside its name. A member is found by binary search and read as ``zipfile`` reads it: its local
header skipped, its bytes inflated if deflated, its CRC-32 checked. ZIP64 archives (over 4 GiB
or 65,535 members) are read too; encrypted members are refused.
"""
from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path
from typing import Iterator
from zipfile import BadZipFile

import numpy as np

# The records of the zip format (APPNOTE.TXT, sections 4.3.7 to 4.3.16), little-endian.
_END = struct.Struct("<4s4H2LH")           # end of central directory
_END64_LOCATOR = struct.Struct("<4sLQL")   # ZIP64 end of central directory locator
_END64 = struct.Struct("<4sQ2H2L4Q")       # ZIP64 end of central directory
_CENTRAL = struct.Struct("<4s6H3L5H2L")    # central directory file header
_LOCAL = struct.Struct("<4s5H3L2H")        # local file header
_END_SIG, _END64_LOCATOR_SIG, _END64_SIG = b"PK\x05\x06", b"PK\x06\x07", b"PK\x06\x06"
_CENTRAL_SIG, _LOCAL_SIG = b"PK\x01\x02", b"PK\x03\x04"
_ZIP64_EXTRA = 0x0001
_ENCRYPTED, _UTF8 = 0x1, 0x800
_STORED, _DEFLATED = 0, 8
_CHUNK = 1 << 16   # names converted to an array this many at a time


class ZipIndex:
    """The members of the zip archive at ``path``: their names, sorted, and ``read(name)``.
    Raises BadZipFile when the file is not a zip archive this reads. The archive is opened
    again on the first ``read``, and stays open until ``close``."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self._file = None
        try:
            with open(self.path, "rb") as f:
                self._read_central_directory(f)
        except struct.error as exc:
            raise BadZipFile(f"truncated ({exc})") from None

    def _read_central_directory(self, f) -> None:
        size = f.seek(0, os.SEEK_END)
        tail_at = max(0, size - _END.size - 0xFFFF)    # the record, then a comment of up to 64 KiB
        f.seek(tail_at)
        tail = f.read()
        at = tail.rfind(_END_SIG)
        if at < 0:
            raise BadZipFile("File is not a zip file")
        _, _, _, _, count, cd_size, cd_offset, _ = _END.unpack_from(tail, at)
        end_at = tail_at + at
        if at >= _END64_LOCATOR.size and tail[at - _END64_LOCATOR.size:][:4] == _END64_LOCATOR_SIG:
            _, _, end64_at, _ = _END64_LOCATOR.unpack_from(tail, at - _END64_LOCATOR.size)
            f.seek(end64_at)
            sig, _, _, _, _, _, _, count, cd_size, cd_offset = _END64.unpack(f.read(_END64.size))
            if sig != _END64_SIG:
                raise BadZipFile("ZIP64 end of central directory record not found")
            end_at -= _END64_LOCATOR.size + _END64.size
        # Bytes before the archive (a self-extracting stub) shift every offset the archive records.
        self._shift = end_at - cd_size - cd_offset
        f.seek(cd_offset + self._shift)
        chunks: list[np.ndarray] = []
        names: list[bytes] = []
        numbers = np.zeros((count, 5), np.int64)   # offset, compressed size, size, crc, method
        for i in range(count):
            (sig, _, _, flags, method, _, _, crc, csize, usize, name_len, extra_len, comment_len,
             _, _, _, offset) = _CENTRAL.unpack(f.read(_CENTRAL.size))
            if sig != _CENTRAL_SIG:
                raise BadZipFile(f"bad central directory entry {i}")
            name = f.read(name_len)
            extra = f.read(extra_len)
            f.seek(comment_len, os.SEEK_CUR)
            if not flags & _UTF8:
                name = name.decode("cp437").encode()
            if 0xFFFFFFFF in (usize, csize, offset):
                usize, csize, offset = _zip64_sizes(extra, usize, csize, offset, name)
            if flags & _ENCRYPTED:
                method = -1
            numbers[i] = offset, csize, usize, crc, method
            names.append(name)
            if len(names) == _CHUNK:
                chunks.append(np.array(names, dtype=bytes))
                names.clear()
        chunks.append(np.array(names, dtype=bytes).reshape(len(names)))
        joined = np.concatenate(chunks)
        order = np.argsort(joined, kind="stable")
        self._names, self._numbers = joined[order], numbers[order]

    def names(self, prefix: str = "") -> Iterator[str]:
        """The names that start with ``prefix``, sorted (a folder's ends with ``/``)."""
        key = prefix.encode()
        lo = np.searchsorted(self._names, key, "left")
        hi = np.searchsorted(self._names, key + b"\xff", "left") if key else len(self._names)
        for name in self._names[lo:hi]:
            yield name.decode()

    def __len__(self) -> int:
        return len(self._names)

    def read(self, name: str) -> bytes:
        """The bytes of member ``name``; KeyError if there is none, BadZipFile if they are not
        the bytes the archive recorded."""
        key = name.encode()
        at = int(np.searchsorted(self._names, key))
        if at == len(self._names) or self._names[at] != key:
            raise KeyError(name)
        offset, csize, usize, crc, method = (int(v) for v in self._numbers[at])
        if self._file is None:
            self._file = open(self.path, "rb")
        f = self._file
        f.seek(offset + self._shift)
        header = f.read(_LOCAL.size)
        if len(header) < _LOCAL.size or header[:4] != _LOCAL_SIG:
            raise BadZipFile(f"Bad magic number for file header of {name!r}")
        *_, name_len, extra_len = _LOCAL.unpack(header)
        f.seek(name_len + extra_len, os.SEEK_CUR)
        data = f.read(csize)
        if len(data) < csize:
            raise BadZipFile(f"Truncated file {name!r}")
        if method == _DEFLATED:
            data = zlib.decompressobj(-15).decompress(data)
        elif method != _STORED:
            raise BadZipFile(f"{name!r}: {'encrypted' if method < 0 else f'compression method {method}'} "
                             f"is not read; store or deflate the member")
        if len(data) != usize or zlib.crc32(data) != crc:
            raise BadZipFile(f"Bad CRC-32 for file {name!r}")
        return data

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def _zip64_sizes(extra: bytes, usize: int, csize: int, offset: int, name: bytes) -> tuple[int, int, int]:
    """The sizes and offset a ZIP64 extra field gives for those its central entry marks 0xFFFFFFFF."""
    at = 0
    while at + 4 <= len(extra):
        kind, length = struct.unpack_from("<2H", extra, at)
        if kind == _ZIP64_EXTRA:
            values = iter(struct.unpack_from(f"<{length // 8}Q", extra, at + 4))
            try:
                usize = next(values) if usize == 0xFFFFFFFF else usize
                csize = next(values) if csize == 0xFFFFFFFF else csize
                offset = next(values) if offset == 0xFFFFFFFF else offset
            except StopIteration:
                break
            return usize, csize, offset
        at += 4 + length
    raise BadZipFile(f"{name!r}: ZIP64 sizes missing from its extra field")
