"""`make data` (staged_fer/data/raw_record.py): the placed raw data recorded with `dvc add`, so a
--temp experiment sees it; and the one-line refusals when it is not recorded as it is."""
from __future__ import annotations

import shutil

import pytest

from staged_fer.data import raw_record
from tests.dvc_project import BIN, TINY_PARAMS, DvcProject

FER_DIR = "data/external/fer2013"
SFEW_DIR = "data/external/SFEW_2.0"


def test_what_a_raw_folder_records_and_what_is_the_projects_own(tmp_path):
    folder = tmp_path / "SFEW_2.0"
    for name in ("Train/Happy", "Val/Happy"):
        (folder / name).mkdir(parents=True)
    for name in ("README.md", ".gitignore", "Train.dvc", "notes.txt"):
        (folder / name).write_text("x")
    assert raw_record.placed(folder) == [folder / "Train", folder / "Val", folder / "notes.txt"]
    assert raw_record.records(folder) == [folder / "Train.dvc"]
    assert raw_record.restore_hint(folder) == ""
    shutil.rmtree(folder / "Train")
    assert raw_record.restore_hint(folder) == (f"; `make data` recorded it in {folder / 'Train.dvc'}: "
                                               f"`dvc checkout {folder / 'Train.dvc'}` restores it")
    assert raw_record.placed(folder / "notes.txt") == [folder / "notes.txt"]
    assert raw_record.placed(folder / "nothing") == []


@pytest.fixture(scope="module")
def project(module_tmp):
    from staged_fer.synthetic.fer import write_fer_csv
    from staged_fer.synthetic.sfew import write_sfew_tree

    params = {**TINY_PARAMS, "fer.source": "file", "fer.md5": None, "target.source": "dir"}
    project = DvcProject.copy_of_repo(module_tmp("repo"), params)
    write_fer_csv(project.path / FER_DIR / "fer2013.csv", {"Training": 21, "PublicTest": 7, "PrivateTest": 7}, 0)
    tree = module_tmp("sfew") / "SFEW_2.0"
    write_sfew_tree(tree, 1, 1, 1, 0)
    for split in tree.iterdir():
        shutil.move(str(split), project.path / SFEW_DIR / split.name)
    return project


def make_data(project, *args: str, check: bool = True):
    return project.run(str(BIN / "python"), "-m", "staged_fer.data.raw_record", *args, check=check)


def one_error(result) -> str:
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


def test_placed_data_is_refused_until_recorded_and_committed(project):
    assert one_error(make_data(project, "--check", check=False)) == (
        f"error: {FER_DIR}/fer2013.csv (`fer.path`): placed but not recorded, so queued and --temp experiments "
        "do not see it: run `make data`")
    out = make_data(project).stdout
    dvcfiles = [f"{SFEW_DIR}/{split}.dvc" for split in ("Test", "Train", "Val")] + [f"{FER_DIR}/fer2013.csv.dvc"]
    assert f"git add {' '.join(sorted(dvcfiles))} && git commit" in out
    for name in dvcfiles:
        assert (project.path / name).is_file()
    error = one_error(make_data(project, "--check", check=False))
    assert error.startswith(f"error: {SFEW_DIR}/Test.dvc: not committed")
    project.run("git", "add", *dvcfiles)
    project.run("git", "commit", "-q", "-m", "raw data")
    assert make_data(project, "--check").stderr == ""
    assert project.run("git", "status", "--porcelain").stdout == ""   # the data itself stays out of Git


def test_a_temp_experiment_sees_the_recorded_data(project):
    result = project.dvc("exp", "run", "--temp", "download_fer")
    assert f"download_fer: 35 rows from {FER_DIR} (fer2013.csv)" in result.stdout + result.stderr


def test_data_changed_or_missing_after_make_data_is_one_line_with_the_command(project):
    photo = sorted((project.path / SFEW_DIR / "Val").rglob("*.png"))[0]
    data = photo.read_bytes()
    photo.unlink()   # replaced, not edited in place: the placed file is the cache's (cache.type)
    photo.write_bytes(data + b"\0")
    assert one_error(make_data(project, "--check", check=False)) == (
        f"error: {SFEW_DIR}/Val: modified since `make data` recorded it ({SFEW_DIR}/Val.dvc): "
        f"run `make data` again and commit {SFEW_DIR}/Val.dvc")
    # ... and `make grid` says the same before it queues anything
    grid = project.run(str(BIN / "python"), "-m", "staged_fer.evaluation.grid", "--models", "alexnet",
                       "--recipes", "fer28", check=False)
    assert one_error(grid).endswith(f"run `make data` again and commit {SFEW_DIR}/Val.dvc")
    assert "alexnet-fer28" not in project.dvc("queue", "status").stdout
    photo.unlink()
    photo.write_bytes(data)
    train = project.path / SFEW_DIR / "Train"
    train.rename(project.path / "Train.aside")
    try:
        assert one_error(make_data(project, "--check", check=False)) == (
            f"error: {SFEW_DIR}/Train: recorded by `make data` ({SFEW_DIR}/Train.dvc) but missing here: run "
            f"`dvc checkout {SFEW_DIR}/Train.dvc` (or `dvc pull`), or place it again and run `make data`")
    finally:
        (project.path / "Train.aside").rename(train)
    assert make_data(project, "--check").returncode == 0


def test_make_data_pack_records_each_split_as_its_archive_and_an_experiment_aligns_from_them(project):
    """`make data PACK=1` after `make data`: the folders' records give way to the archives'."""
    packed = project.run(str(BIN / "python"), "-m", "staged_fer.data.raw_pack").stdout
    assert [line.split(" (")[0] for line in packed.splitlines()] == [
        f"packed {SFEW_DIR}/{split}/ into {split}.zip" for split in ("Train", "Val", "Test")]
    make_data(project)
    sfew = project.path / SFEW_DIR
    assert sorted(p.name for p in sfew.iterdir()) == [
        "README.md", "Test.zip", "Test.zip.dvc", "Train.zip", "Train.zip.dvc", "Val.zip", "Val.zip.dvc"]
    assert sorted(project.run("git", "status", "--porcelain").stdout.splitlines()) == sorted(
        [f" D {SFEW_DIR}/{split}.dvc" for split in ("Test", "Train", "Val")]
        + [f"?? {SFEW_DIR}/{split}.zip.dvc" for split in ("Test", "Train", "Val")])
    project.run("git", "add", "-A")
    project.run("git", "commit", "-q", "-m", "raw data as archives")
    assert make_data(project, "--check").stderr == ""
    result = project.dvc("exp", "run", "--temp", "align_target")
    assert "aligning 15 of 15 images from data/external/SFEW_2.0 " in result.stdout + result.stderr


def test_nothing_placed_is_one_line(module_tmp):
    project = DvcProject.copy_of_repo(module_tmp("empty"), TINY_PARAMS)
    assert one_error(make_data(project, check=False)).startswith(
        "error: make data: nothing placed at `fer.path` (data/external/fer2013), `fer.ferplus_path` "
        "(data/external/ferplus), `target.root` (data/external/SFEW_2.0)")
    assert make_data(project, "--check").returncode == 0   # the synthetic sources need nothing recorded
