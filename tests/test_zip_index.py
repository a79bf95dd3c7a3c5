"""The compact reader of split archives (staged_fer/data/zip_index.py) finds the names and bytes
that ``zipfile`` finds, in every layout of the format it meets, and holds far less per member."""
from __future__ import annotations

import struct
import tracemalloc
import zipfile
import zlib

import pytest

from staged_fer.data.zip_index import ZipIndex

MEMBERS = {"Happy/": b"", "Happy/x.png": b"photo" * 100, "Happy/sub/y.png": b"y", "Sad/ä 日本.png": b"\x00" * 999,
           "top.jpg": b"", ".hidden": b"h"}


def _zip(path, members=MEMBERS, compression=zipfile.ZIP_STORED, comment=b""):
    with zipfile.ZipFile(path, "w", compression=compression) as archive:
        for name, data in reversed(list(members.items())):   # not in sorted order
            archive.writestr(name, data)
        archive.comment = comment
    return path


def _same_as_zipfile(path):
    index = ZipIndex(path)
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        assert list(index.names()) == sorted(names) and len(index) == len(names)
        for name in names:
            assert index.read(name) == archive.read(name), name
    index.close()


@pytest.mark.parametrize("compression", [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED])
def test_names_and_bytes_are_those_zipfile_reads(tmp_path, compression):
    _same_as_zipfile(_zip(tmp_path / "a.zip", compression=compression, comment=b"a comment"))


def test_an_archive_after_a_stub_is_read_at_its_shifted_offsets(tmp_path):
    data = _zip(tmp_path / "a.zip").read_bytes()
    (tmp_path / "stub.zip").write_bytes(b"#!/bin/sh\nexit 0\n" + data)   # as a self-extracting archive
    _same_as_zipfile(tmp_path / "stub.zip")


def test_names_under_a_prefix_are_a_sorted_range(tmp_path):
    names = ["Happy/", "Happy/x", "Happyish/z", "Happy/ä", "Sad/b"]
    index = ZipIndex(_zip(tmp_path / "a.zip", dict.fromkeys(names, b"")))
    assert list(index.names("Happy/")) == ["Happy/", "Happy/x", "Happy/ä"]
    assert list(index.names("Sad/")) == ["Sad/b"] and list(index.names("Z")) == []


def test_more_than_65535_members_take_the_zip64_end_record(tmp_path):
    members = {f"Happy/{i:06d}.png": b"" for i in range(70_000)}
    path = _zip(tmp_path / "big.zip", members)
    index = ZipIndex(path)
    assert len(index) == 70_000 and next(index.names()) == "Happy/000000.png"
    assert index.read("Happy/069999.png") == b""


def test_sizes_and_offsets_in_a_zip64_extra_field_are_read(tmp_path):
    """An entry whose sizes and offset are in its ZIP64 extra field (as for members over 4 GiB)."""
    name, data = b"Happy/x.png", b"zip64 photo"
    crc = zlib.crc32(data)
    local = struct.pack("<4s5H3L2H", b"PK\x03\x04", 45, 0, 0, 0, 0x21, crc, len(data), len(data), len(name), 0)
    extra = struct.pack("<2H3Q", 1, 24, len(data), len(data), 0)
    central = struct.pack("<4s6H3L5H2L", b"PK\x01\x02", 45, 45, 0, 0, 0, 0x21, crc, 0xFFFFFFFF, 0xFFFFFFFF,
                          len(name), len(extra), 0, 0, 0, 0, 0xFFFFFFFF) + name + extra
    at = len(local) + len(name) + len(data)
    end = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, 1, 1, len(central), at, 0)
    path = tmp_path / "zip64.zip"
    path.write_bytes(local + name + data + central + end)
    _same_as_zipfile(path)


def test_bad_bytes_a_missing_member_and_a_bad_archive_are_told_apart(tmp_path):
    path = _zip(tmp_path / "a.zip")
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo("Happy/x.png")
    raw = bytearray(path.read_bytes())
    raw[info.header_offset + 30 + len(info.filename) + 10] ^= 0xFF
    path.write_bytes(bytes(raw))
    index = ZipIndex(path)
    with pytest.raises(zipfile.BadZipFile, match=r"^Bad CRC-32 for file 'Happy/x.png'"):
        index.read("Happy/x.png")
    with pytest.raises(KeyError):
        index.read("Happy/gone.png")
    assert index.read("Happy/sub/y.png") == b"y"
    (tmp_path / "not.zip").write_bytes(b"not a zip at all")
    with pytest.raises(zipfile.BadZipFile, match="not a zip file"):
        ZipIndex(tmp_path / "not.zip")
    (tmp_path / "cut.zip").write_bytes(raw[:len(raw) // 2] + raw[-22:])   # the end record, the directory lost
    with pytest.raises(zipfile.BadZipFile):
        ZipIndex(tmp_path / "cut.zip")


def test_a_member_costs_tens_of_bytes_not_a_zipinfo(tmp_path):
    n = 20_000
    path = _zip(tmp_path / "many.zip", {f"Happy/photo-with-a-longish-name-{i:07d}.jpg": b"" for i in range(n)})
    held = {}
    for name, opener in (("ZipIndex", ZipIndex), ("zipfile", zipfile.ZipFile)):
        tracemalloc.start()
        try:
            opened = opener(path)
            held[name] = tracemalloc.get_traced_memory()[0] / n
            opened.close()
        finally:
            tracemalloc.stop()
    name_len = len("Happy/photo-with-a-longish-name-0000000.jpg")
    assert held["ZipIndex"] < name_len + 48 and held["zipfile"] > 5 * held["ZipIndex"], held
