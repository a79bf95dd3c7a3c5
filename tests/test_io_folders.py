"""The atomic folder writer: a folder is replaced whole or not at all."""
import os
import stat

import pytest

from staged_fer import io as io_mod
from staged_fer.io import StagedFolder, atomic_folder


def _tree(root):
    return {str(p.relative_to(root)): p.read_text() for p in sorted(root.rglob("*")) if p.is_file()}


def _old_folder(tmp_path):
    target = tmp_path / "reports"
    (target / "sub").mkdir(parents=True)
    (target / "a.txt").write_text("old a")
    (target / "sub" / "stale.txt").write_text("old only")
    return target


def test_new_folder_replaces_the_old_one_whole(tmp_path):
    target = _old_folder(tmp_path)
    with atomic_folder(target) as tmp:
        assert tmp.parent == tmp_path and tmp != target
        assert _tree(target) == {"a.txt": "old a", "sub/stale.txt": "old only"}   # untouched meanwhile
        (tmp / "a.txt").write_text("new a")
        (tmp / "b").mkdir()
        (tmp / "b" / "c.txt").write_text("new c")
    assert _tree(target) == {"a.txt": "new a", "b/c.txt": "new c"}   # no file of the old run is left
    assert sorted(p.name for p in tmp_path.iterdir()) == ["reports"]
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o777 & ~umask    # not mkdtemp's owner-only 0700


def test_folder_is_created_with_its_parents(tmp_path):
    target = tmp_path / "a" / "b" / "out"
    with atomic_folder(target) as tmp:
        (tmp / "x.txt").write_text("x")
    assert _tree(target) == {"x.txt": "x"}
    assert sorted(p.name for p in target.parent.iterdir()) == ["out"]


def test_failure_midway_keeps_the_previous_folder_and_leaves_no_temporary(tmp_path):
    target = _old_folder(tmp_path)
    with pytest.raises(RuntimeError, match="interrupted"):
        with atomic_folder(target) as tmp:
            (tmp / "a.txt").write_text("half written")
            raise RuntimeError("interrupted")
    assert _tree(target) == {"a.txt": "old a", "sub/stale.txt": "old only"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["reports"]


def test_failure_without_a_previous_folder_leaves_nothing(tmp_path):
    target = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt):
        with atomic_folder(target) as tmp:
            (tmp / "a.txt").write_text("half")
            raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []


def test_failed_swap_puts_the_previous_folder_back(tmp_path, monkeypatch):
    """The rename of the new folder into place fails after the old one was moved aside."""
    target = _old_folder(tmp_path)
    real_replace = os.replace

    def replace(src, dst):
        if str(src).endswith(".tmp"):
            raise OSError("disk gone")
        return real_replace(src, dst)

    monkeypatch.setattr(io_mod.os, "replace", replace)
    with pytest.raises(OSError, match="disk gone"):
        with atomic_folder(target) as tmp:
            (tmp / "a.txt").write_text("new a")
    assert _tree(target) == {"a.txt": "old a", "sub/stale.txt": "old only"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["reports"]


def test_staged_folder_commit_and_discard(tmp_path):
    target = _old_folder(tmp_path)
    staged = StagedFolder(target)
    (staged.tmp / "n.txt").write_text("new")
    staged.discard()
    assert _tree(target) == {"a.txt": "old a", "sub/stale.txt": "old only"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["reports"]
    staged = StagedFolder(target)
    (staged.tmp / "n.txt").write_text("new")
    staged.commit()
    assert _tree(target) == {"n.txt": "new"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["reports"]


def test_a_file_in_the_way_is_replaced(tmp_path):
    target = tmp_path / "out"
    target.write_text("a file, not a folder")
    with atomic_folder(target) as tmp:
        (tmp / "x.txt").write_text("x")
    assert _tree(target) == {"x.txt": "x"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
