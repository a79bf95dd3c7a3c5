"""The raw data as DVC dependencies, through the real `dvc` CLI: the FER-2013 file and the SFEW
tree a run used are pinned in dvc.lock, and a change reruns exactly what it affects.

The project reads a small FER CSV and SFEW tree from its default raw-data folders
(data/external/fer2013, data/external/SFEW_2.0), recorded with `make data` and committed, as
a user's checkout would. Slow (a whole run of the pipeline and a second one from alignment
on); `tests/test_code_deps.py`, `tests/test_raw_snapshot.py` and `tests/test_raw_record.py`
cover the same ground in the default suite without running it.
"""
from __future__ import annotations

import hashlib
import json
import shutil

import pytest
import yaml

from tests.dvc_project import BIN, TINY_PARAMS, DvcProject

ALL_STAGES = ["download_fer", "decode_fer", "align_target", "build_splits",
              "train_phase1", "train_phase2", "evaluate"]
pytestmark = pytest.mark.slow

FER_DIR = "data/external/fer2013"
SFEW_DIR = "data/external/SFEW_2.0"


@pytest.fixture(scope="module")
def project(module_tmp):
    from staged_fer.synthetic.fer import write_fer_csv
    from staged_fer.synthetic.sfew import write_sfew_tree

    params = {**TINY_PARAMS, "fer.source": "file", "fer.md5": None, "target.source": "dir"}
    project = DvcProject.copy_of_repo(module_tmp("repo"), params)
    fer = TINY_PARAMS["fer.synthetic"]
    write_fer_csv(project.path / FER_DIR / "fer2013.csv",
                  {"Training": fer["train"], "PublicTest": fer["public_test"], "PrivateTest": fer["private_test"]}, 0)
    sfew = TINY_PARAMS["target.synthetic"]
    tree = module_tmp("sfew") / "SFEW_2.0"
    write_sfew_tree(tree, sfew["train_per_class"], sfew["val_per_class"], sfew["test"], 0)
    for split in tree.iterdir():   # beside the folder's README
        shutil.move(str(split), project.path / SFEW_DIR / split.name)
    record(project)
    project.run("git", "add", "-A")
    project.run("git", "commit", "-q", "-m", "raw data")
    return project


def record(project) -> None:
    """`make data`."""
    project.run(str(BIN / "python"), "-m", "staged_fer.data.raw_record")


def replace(path, data: bytes) -> None:
    """Put a new file at ``path``, as copying over it does. Not an edit in place: the placed
    file is DVC's cached copy itself (a hard link; .dvc/config's cache.type)."""
    path.unlink()
    path.write_bytes(data)


def lock_deps(project, stage: str) -> dict[str, dict]:
    lock = yaml.safe_load((project.path / "dvc.lock").read_text())
    return {d["path"]: d for d in lock["stages"][stage]["deps"]}


def changed_stages(project) -> set[str]:
    return set(json.loads(project.dvc("status", "--json").stdout))


def test_the_lock_pins_the_raw_fer_file_and_sfew_tree(project):
    assert sorted(project.repro()) == sorted(ALL_STAGES)
    fer = lock_deps(project, "download_fer")[FER_DIR]
    sfew = lock_deps(project, "align_target")[SFEW_DIR]
    photos = sum(1 for p in (project.path / SFEW_DIR).rglob("*.png"))
    # the CSV, its .dvc record and the README; the photos, a record per split and the README
    assert fer["md5"].endswith(".dir") and fer["nfiles"] == 3
    assert sfew["md5"].endswith(".dir") and sfew["nfiles"] == photos + 3 + 1
    assert project.repro() == [] and changed_stages(project) == set()


def test_replacing_one_photo_reruns_alignment_and_what_follows(project):
    before = lock_deps(project, "train_phase1")["data/processed/phase1"]["md5"]
    val = sorted((project.path / SFEW_DIR / "Val").rglob("*.png"))
    # A Val photo is always kept (aligned, or a fallback crop), so the aligned faces change.
    replace(val[0], val[-1].read_bytes())
    assert changed_stages(project) == {"data/external/SFEW_2.0/Val.dvc", "align_target"}
    record(project)
    assert changed_stages(project) == {"align_target"}
    # build_splits rewrites the phase-1 split with the same bytes (FER28 holds no EmotiW face), so
    # DVC keeps the phase-1 model; phase 2 trains on EmotiW and reruns, and so does evaluate.
    assert project.repro() == ["align_target", "build_splits", "train_phase2", "evaluate"]
    assert lock_deps(project, "train_phase1")["data/processed/phase1"]["md5"] == before


def test_adding_a_fer_row_reruns_from_download_fer(project):
    csv = project.path / FER_DIR / "fer2013.csv"
    last = csv.read_bytes().splitlines(keepends=True)[-1]
    replace(csv, csv.read_bytes() + last)
    record(project)
    assert changed_stages(project) == {"download_fer"}
    assert project.repro("--single-item", "download_fer") == ["download_fer"]
    meta = json.loads((project.path / "data/raw/fer2013.meta.json").read_text())
    assert meta["rows"] == sum(TINY_PARAMS["fer.synthetic"].values()) + 1
    assert meta["md5"] == hashlib.md5(csv.read_bytes()).hexdigest()
    assert changed_stages(project) == {"decode_fer"}   # its input CSV changed: the chain goes on


def test_a_missing_raw_file_stops_with_one_line_naming_the_key(project):
    csv = project.path / FER_DIR / "fer2013.csv"
    aside = csv.with_name("fer2013.aside")
    csv.rename(project.path / "fer2013.aside")
    try:
        result = project.dvc("repro", "--single-item", "download_fer", check=False)
    finally:
        (project.path / "fer2013.aside").rename(csv)
    assert result.returncode != 0 and not aside.exists()
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and errors[0].startswith(f"error: `fer.path`: no FER-2013 file in folder {FER_DIR}")


def test_a_raw_path_that_does_not_exist_is_refused_before_the_stage_runs(project, tmp_path):
    # DVC checks deps before it runs a stage's command, so the stage cannot name the key;
    # docs/data.md quotes DVC's line, which names the stage and the path.
    missing = tmp_path / "nowhere" / "fer2013.csv"
    params = (project.path / "params.yaml").read_text()
    lock = (project.path / "dvc.lock").read_bytes()
    project.set_params(fer__path=str(missing))
    try:
        result = project.dvc("repro", "--single-item", "download_fer", check=False)
    finally:
        (project.path / "params.yaml").write_text(params)
    assert result.returncode != 0 and "Running stage" not in result.stdout
    dvc_line = f"failed to reproduce 'download_fer': [Errno 2] No such file or directory: '{missing}'"
    assert dvc_line in result.stderr
    assert (project.path / "dvc.lock").read_bytes() == lock
