"""The grid as a user runs it on a GPU box, on this CPU machine: from a fresh clone, a small real
FER-2013 (rows of ../shared/data/fer2013.csv.gz) and a small target tree placed at the README's
default paths, `make data` and a commit, then `make grid GPUS=0,1` with two seeds runs every
experiment through DVC's queue with two workers, each run on a slot of its own; `make report`
gives each cell's mean and spread over the seeds."""
from __future__ import annotations

import gzip
import itertools
import json
import re
import shutil

import pytest

from staged_fer.evaluation.report import parse_exp_show
from tests.dvc_project import TINY_PARAMS, DvcProject
from tests.test_fer_decode import REAL

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not REAL.is_file(), reason="../shared/data/fer2013.csv.gz is not beside this repository")]

ROWS = {"Training": 210, "PublicTest": 70, "PrivateTest": 70}
NAMES = [f"alexnet-{scheme}-s{seed}" for scheme in ("fer28", "fer28-to-target") for seed in (0, 1)]


def real_fer_rows(dest) -> None:
    """The header and the first ROWS[usage] rows of each Usage of the real file."""
    left = dict(ROWS)
    with gzip.open(REAL, "rt", newline="") as src, open(dest, "w", newline="") as out:
        out.write(src.readline())
        for line in src:
            usage = line.rstrip("\r\n").rsplit(",", 1)[1]
            if left.get(usage, 0) > 0:
                out.write(line)
                left[usage] -= 1
            if not any(left.values()):
                break


def test_a_fresh_clone_runs_the_grid_on_two_gpu_slots_and_reports_over_seeds(tmp_path):
    from staged_fer.synthetic.sfew import write_sfew_tree

    params = {**TINY_PARAMS, "fer.source": "file", "fer.md5": None, "target.source": "dir"}
    start = DvcProject.copy_of_repo(tmp_path / "start", params)
    project = DvcProject.clone(start.path, tmp_path / "clone")
    project.env["STAGED_FER_GPU_LOCKS"] = str(tmp_path / "locks")
    real_fer_rows(project.path / "data/external/fer2013/fer2013.csv")
    sfew = TINY_PARAMS["target.synthetic"]
    write_sfew_tree(tmp_path / "SFEW_2.0", sfew["train_per_class"], sfew["val_per_class"], sfew["test"], 0)
    for split in (tmp_path / "SFEW_2.0").iterdir():
        shutil.move(str(split), project.path / "data/external/SFEW_2.0" / split.name)

    project.make("data")
    records = sorted(str(p.relative_to(project.path)) for p in project.path.glob("data/external/*/*.dvc"))
    project.run("git", "add", *records)
    project.run("git", "commit", "-q", "-m", "raw data")
    ran = project.make("grid", "GPUS=0,1", "GRID=--models alexnet --recipes fer28 fer28-to-target --seeds 0 1")
    assert "GPUS=0,1: no CUDA here, so the ids are slots only" in ran.stderr
    status = project.dvc("queue", "status").stdout
    assert all(re.search(rf"\b{name}\s.*Success", status) for name in NAMES), status

    report = project.make("report").stdout
    # What a failure needs to be read: the whole report, the grid's own log and DVC's record.
    context = (f"{report}\n--- make grid:\n{ran.stdout[-4000:]}\n{ran.stderr[-4000:]}\n--- dvc exp list:\n"
               f"{project.dvc('exp', 'list', '--name-only').stdout}")
    over = report.split("## Over seeds")[1].split("## McNemar")[0]
    for scheme in ("FER28 | single", "FER28->EmotiW | double"):
        cell = next(line for line in over.splitlines() if line.startswith(f"| AlexNet | {scheme} "))
        assert re.search(r"\| 0, 1 \| \d+\.\d ± \d+\.\d \[\d+\.\d, \d+\.\d\] \|", cell), context
        assert "| real |" in cell
    assert "| alexnet FER28 | alexnet FER28->EmotiW | 46.9 / 48.5 | 0, 1 | " in over, context

    # Every step of every run took a slot of 0,1; spans that overlapped held different ones.
    import dvc.api
    revs = {e.name: e.rev for e in parse_exp_show(json.loads(project.dvc("exp", "show", "--json").stdout))
            if e.name in NAMES}
    grants = {}
    for name, rev in revs.items():
        scores = json.loads(dvc.api.read("reports/eval/scores.json", repo=str(project.path), rev=rev))
        for step, grant in scores["gpus"].items():
            assert grant["ids"] in (["0"], ["1"]) and grant["cuda"] is False, (name, step, grant)
            # a stage restored from the run-cache carries the record of the run that made it
            grants[grant["taken_at"], grant["ids"][0]] = grant
    overlapping = [(g, h) for g, h in itertools.combinations(grants.values(), 2)
                   if g["taken_at"] < h["held_until"] and h["taken_at"] < g["held_until"]]
    assert overlapping, "no two steps ran at the same time"
    assert all(g["ids"] != h["ids"] for g, h in overlapping)
    assert project.run("git", "status", "--porcelain").stdout == ""
    print(f"\n{report}")
