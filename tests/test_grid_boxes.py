"""Several boxes, one Git remote and one DVC remote: docs/boxes.md's recipe, step by step,
on the tiny configuration. Box A and box B each run part of the grid through the queue and push
their experiments with the run-cache; box B restores the stages it shares with box A from the
run-cache instead of running them; a third clone pulls every experiment and reports them.

What box B can restore is what DVC pushes with the run-cache: a stage's cached outputs. The data
stages' outputs are all cached; the training phases and evaluate have an uncached one (their
`cache: false` metrics, committed with each experiment) and run again, since DVC 3 keeps
uncached outputs for its run-cache in the local cache only."""
from __future__ import annotations

import re

import pytest

from tests.dvc_project import TINY_PARAMS, DvcProject

pytestmark = pytest.mark.slow

A = "alexnet-fer28"
B = "alexnet-fer28-to-target"
# What box B restores from box A's run-cache: the data stages, but build_splits, which reads
# `phase2.data` (none in A's run, target in B's).
SHARED = ["download_fer", "decode_fer", "align_target"]


@pytest.fixture
def remotes(tmp_path):
    """The project on a bare Git remote, with a local-folder DVC remote as its default."""
    project = DvcProject.copy_of_repo(tmp_path / "start", TINY_PARAMS)
    origin = tmp_path / "origin.git"
    project.run("git", "init", "-q", "--bare", "-b", "main", str(origin))
    project.dvc("remote", "add", "-d", "shared", str(tmp_path / "dvc-storage"))
    project.run("git", "commit", "-q", "-m", "shared DVC remote", ".dvc/config")
    project.run("git", "remote", "add", "origin", str(origin))
    project.run("git", "push", "-q", "origin", "main")
    return origin


def box(origin, path, locks) -> DvcProject:
    project = DvcProject.clone(origin, path)
    project.env["STAGED_FER_GPU_LOCKS"] = str(locks)
    return project


def test_two_boxes_share_one_remote_and_a_third_reports_both(remotes, tmp_path):
    a = box(remotes, tmp_path / "box-a", tmp_path / "locks-a")
    ran_a = a.make("grid", "GPUS=0", "GRID=--models alexnet --recipes fer28")
    assert "Running stage 'align_target'" in ran_a.stdout
    a.dvc("exp", "push", "--run-cache", "origin", A)

    b = box(remotes, tmp_path / "box-b", tmp_path / "locks-b")
    b.dvc("fetch", "--run-cache")
    ran_b = b.make("grid", "GPUS=0", "GRID=--pull --models alexnet --recipes fer28-to-target").stdout
    for stage in SHARED:
        assert f"Stage '{stage}' is cached - skipping run, checking out outputs" in ran_b, ran_b[-3000:]
    assert sorted(re.findall(r"Running stage '([^']+)'", ran_b)) == [
        "build_splits", "evaluate", "train_phase1", "train_phase2"]
    b.dvc("exp", "push", "--run-cache", "origin", B)

    c = box(remotes, tmp_path / "box-c", tmp_path / "locks-c")
    c.dvc("exp", "pull", "origin", A, B)
    report = c.make("report").stdout
    rows = {line.split(" | ")[0].lstrip("| "): line for line in report.splitlines()
            if line.startswith("| alexnet") and line.endswith("| synthetic |")}
    for name in (A, B):
        assert re.search(r"\| \d+\.\d \[\d+\.\d, \d+\.\d\] \|", rows[name]), report
    assert f"| {A} | {B} | " in report   # the single vs double McNemar test: both runs' predictions pulled
    assert c.run("git", "status", "--porcelain").stdout == ""
