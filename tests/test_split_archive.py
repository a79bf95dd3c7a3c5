"""Splits placed as zip archives (staged_fer/data/split_archive.py, `make data PACK=1`): the
scan and the aligner find in them exactly what they find in the folders they were packed from,
and a bad archive is refused, or a bad member logged, naming it."""
from __future__ import annotations

import os
import shutil
import zipfile

import pytest

from faces_samples import align_config, write_sfew_fixture
from staged_fer.data.target import scan_sfew
from staged_fer.data.raw_pack import pack
from staged_fer.errors import PipelineError
from staged_fer.faces.decode import Unreadable
from staged_fer.faces.photos import Photos
from staged_fer.faces.pipeline import align_all

SPLITS = ("Train", "Val", "Test")


@pytest.fixture(scope="module")
def trees(module_tmp):
    """The bad-input fixture tree, and a copy of it with every split packed."""
    folders = module_tmp("folders")
    write_sfew_fixture(folders)
    archives = module_tmp("archives") / "tree"
    shutil.copytree(folders, archives)
    for split in SPLITS:
        assert pack(archives / split) == archives / f"{split}.zip"
    assert sorted(p.name for p in archives.iterdir()) == ["Test.zip", "Train.zip", "Val.zip"]
    return folders, archives


def test_the_scan_finds_the_same_tasks_empty_folders_and_skips(trees):
    folders, archives = trees
    by_folder, by_archive = scan_sfew(folders), scan_sfew(archives)
    assert by_archive.tasks == by_folder.tasks          # hidden files left out alike
    assert by_archive.empty == by_folder.empty and "Val/Disgust" in by_archive.empty   # an empty folder survives
    assert by_archive.skipped == by_folder.skipped
    assert by_folder.archived == () and by_archive.archived == SPLITS


def test_the_aligner_gives_the_same_results_from_the_archives_in_worker_processes(trees):
    folders, archives = trees
    scan = scan_sfew(archives)
    expected = align_all(scan.tasks, folders, align_config(workers=1))
    got = align_all(scan.tasks, Photos(archives, scan.archived), align_config(workers=2))
    assert [r.task for r in got] == [r.task for r in expected]
    for r, e in zip(got, expected):
        assert (r.outcome, r.reason, r.box, r.fit) == (e.outcome, e.reason, e.box, e.fit), r.task.path
        assert (r.face is None and e.face is None) or (r.face == e.face).all(), r.task.path
    assert {r.outcome for r in got} == {"aligned", "unreadable", "dropped", "fallback"}


def test_the_same_files_pack_to_the_same_bytes(tmp_path):
    archives = []
    for name, mtime in (("a", 1_000_000), ("b", 2_000_000)):
        folder = tmp_path / name / "Train"
        (folder / "Happy").mkdir(parents=True)
        (folder / "Happy" / "x.png").write_bytes(b"photo")
        os.utime(folder / "Happy" / "x.png", (mtime, mtime))
        archives.append(pack(folder).read_bytes())
    assert archives[0] == archives[1]


def test_a_folder_the_scan_would_read_otherwise_is_left_as_it_was(tmp_path):
    """A link to a folder inside a class folder: the folder's scan does not follow it, so an
    archive holding its photos would change what is aligned."""
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "y.png").write_bytes(b"photo")
    train = tmp_path / "Train"
    (train / "Happy").mkdir(parents=True)
    (train / "Happy" / "x.png").write_bytes(b"photo")
    (train / "Happy" / "more").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(PipelineError, match=f"Train.zip.partial: the scan finds other photos in it than in {train} "):
        pack(train)
    assert (train / "Happy" / "x.png").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["Train", "elsewhere"]


def test_a_split_placed_both_ways_is_refused(trees, tmp_path):
    _, archives = trees
    shutil.copy(archives / "Train.zip", tmp_path)
    shutil.copy(archives / "Val.zip", tmp_path)
    (tmp_path / "Train").mkdir()
    with pytest.raises(PipelineError, match=r"both Train/ and Train.zip are placed; keep one"):
        scan_sfew(tmp_path)


def test_an_archive_that_is_not_a_zip_is_refused_naming_it(tmp_path):
    (tmp_path / "Train.zip").write_bytes(b"not a zip")
    (tmp_path / "Val").mkdir()
    with pytest.raises(PipelineError, match=f"^{tmp_path / 'Train.zip'}: not a readable zip archive"):
        scan_sfew(tmp_path)


@pytest.mark.parametrize("member", ["../Happy/x.png", "/Happy/x.png", "Happy//x.png"])
def test_a_member_outside_the_split_is_refused(tmp_path, member):
    with zipfile.ZipFile(tmp_path / "Train.zip", "w") as archive:
        archive.writestr(member, b"photo")
    (tmp_path / "Val").mkdir()
    with pytest.raises(PipelineError, match=f"Train.zip: member '{member}' is not a plain relative path"):
        scan_sfew(tmp_path)


def test_an_unknown_class_folder_in_an_archive_names_it(tmp_path):
    with zipfile.ZipFile(tmp_path / "Train.zip", "w") as archive:
        archive.writestr("Joy/x.png", b"photo")
    (tmp_path / "Val").mkdir()
    with pytest.raises(PipelineError, match=r"Train.zip \(Joy/\): unknown emotion folder 'Joy'"):
        scan_sfew(tmp_path)


def test_a_member_whose_bytes_changed_is_logged_as_unreadable(trees, tmp_path):
    _, archives = trees
    shutil.copy(archives / "Test.zip", tmp_path)
    (tmp_path / "Train").mkdir()
    (tmp_path / "Val").mkdir()
    with zipfile.ZipFile(tmp_path / "Test.zip") as archive:
        info = archive.getinfo("gray.png")
    with open(tmp_path / "Test.zip", "r+b") as f:   # one byte of the member's data, past its header
        f.seek(info.header_offset + 30 + len(info.filename.encode()) + len(info.extra) + 100)
        byte = f.read(1)
        f.seek(-1, os.SEEK_CUR)
        f.write(bytes([byte[0] ^ 0xFF]))
    scan = scan_sfew(tmp_path)
    photos = Photos(tmp_path, scan.archived)
    with pytest.raises(Unreadable, match="corrupt in Test.zip: Bad CRC-32 for file 'gray.png'"):
        photos.read("Test/gray.png")
    with pytest.raises(Unreadable, match="^not in Test.zip$"):
        photos.read("Test/gone.png")
    r, = align_all(scan.tasks, photos, align_config(workers=1))
    assert (r.task.path, r.outcome) == ("Test/gray.png", "unreadable") and "corrupt in Test.zip" in r.reason
