"""`make demo`'s machinery: experiments from the committed params, the workspace left alone."""
from __future__ import annotations

import json
import sys

import pytest
import yaml

from staged_fer import demo
from tests.documented_outputs import differences, documented, written
from tests.dvc_project import TINY_PARAMS, DvcProject
from tests.params_baseline import committed_text

# On top of the demo's own overrides: one epoch per phase, so the whole pipeline runs in seconds.
TINY_DEMO = ("phase1.epochs=1", "phase2.epochs=1", "evaluate.bootstrap=20")


def test_overrides_name_real_params_and_put_the_model_and_extras_last():
    committed = yaml.safe_load(committed_text("params.yaml"))
    for value in demo.OVERRIDES:
        node = committed
        *parents, last = value.split("=", 1)[0].split(".")
        for key in parents:
            node = node[key]
        assert last in node, value
    assert demo.overrides("vgg_m", ["phase1.epochs=1"])[-2:] == ["model=vgg_m", "phase1.epochs=1"]
    # VGG-CNN-M-2048's Caffe weights are a download: the demo must not ask for them.
    assert "models.vgg_m.weights=none" in demo.OVERRIDES


def test_committed_checkout_holds_head_shares_the_cache_and_leaves_no_trace(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    env = DvcProject(repo)
    env.run("git", "init", "-q", "-b", "main")
    env.dvc("init", "-q")
    (repo / "params.yaml").write_text("seed: 0\n")
    env.run("git", "add", "-A")
    env.run("git", "commit", "-q", "-m", "init")
    (repo / "params.yaml").write_text("seed: 7\n")    # an uncommitted edit
    status = env.run("git", "status", "--porcelain").stdout

    with demo.committed_checkout(repo) as checkout:
        assert (checkout / "params.yaml").read_text() == "seed: 0\n"
        cache = env.run(str(demo._dvc_exe()), "cache", "dir").stdout.strip()
        assert DvcProject(checkout).run(str(demo._dvc_exe()), "cache", "dir").stdout.strip() == cache
    assert not checkout.exists()
    assert env.run("git", "worktree", "list").stdout.count("\n") == 1
    assert env.run("git", "status", "--porcelain").stdout == status
    assert (repo / "params.yaml").read_text() == "seed: 7\n"


def _exp_commit(project: DvcProject, name: str) -> str:
    refs = project.run("git", "for-each-ref", "--format=%(refname) %(objectname)", "refs/exps").stdout
    found = [sha for ref, sha in (line.split() for line in refs.splitlines()) if ref.endswith("/" + name)]
    assert len(found) == 1, refs
    return found[0]


@pytest.mark.slow
def test_demo_runs_from_committed_params_and_leaves_the_workspace_as_it_was(tmp_path):
    project = DvcProject.copy_of_repo(tmp_path / "repo", TINY_PARAMS)
    # Uncommitted edits a user might have: params, code that would break the run, a new file.
    params_file = project.path / "params.yaml"
    params = yaml.safe_load(params_file.read_text())
    params["seed"] = 7
    params["phase1"]["momentum"] = 0.5
    params_file.write_text(yaml.safe_dump(params, sort_keys=False))
    evaluate = project.path / "stages" / "evaluate.py"
    evaluate.write_text(evaluate.read_text() + "\nraise SystemExit('an uncommitted edit ran')\n")
    (project.path / "notes.txt").write_text("mine\n")
    status = project.run("git", "status", "--porcelain").stdout
    edited = params_file.read_bytes()

    sets = [a for v in TINY_DEMO for a in ("-S", v)]
    project.env.pop("COLUMNS", None)   # output to a pipe, no terminal width: as in a log file
    run = project.run(sys.executable, "-m", "staged_fer.demo", "--models", "alexnet", *sets)

    assert project.run("git", "status", "--porcelain").stdout == status
    assert params_file.read_bytes() == edited
    assert project.run("git", "worktree", "list").stdout.count("\n") == 1   # the checkout is gone
    sha = _exp_commit(project, "demo-alexnet")
    used = yaml.safe_load(project.run("git", "show", f"{sha}:params.yaml").stdout)
    assert used["seed"] == 0 and used["phase1"]["momentum"] == 0.9      # committed values
    demo_lr = yaml.safe_load(dict(v.split("=", 1) for v in demo.OVERRIDES)["phase1.lr"])
    assert used["phase1"]["lr"] == demo_lr and used["phase1"]["epochs"] == 1  # demo's, then extras
    assert used["models"]["alexnet"]["weights"] == "none"
    metrics = json.loads(project.run("git", "show", f"{sha}:metrics/eval.json").stdout)
    assert 0 <= metrics["target_val"]["accuracy"] <= 1
    # The table in full, as in a 120-column terminal: no column cut to `…`.
    lines = run.stdout.splitlines()
    # The header row (the last line to start with "Experiment"; DVC's "Experiment results ..." is earlier).
    header = max(i for i, line in enumerate(lines) if line.split()[:1] == ["Experiment"])
    table = "\n".join(lines[header:header + 4])   # the header, the commit and its experiment
    for column in ("demo-alexnet", "target_val.accuracy", "target_val_phase1.accuracy", "model", "phase1.data",
                   "phase2.data"):
        assert column in table, run.stdout
    assert "…" not in table and max(map(len, table.splitlines())) <= demo.SHOW_WIDTH, run.stdout
    assert "Viola-Jones detector found" in run.stdout

    # A second demo replaces the experiment of the same name (the run-cache restores it).
    project.run(sys.executable, "-m", "staged_fer.demo", "--models", "alexnet", *sets)
    assert _exp_commit(project, "demo-alexnet")

    # The run's metrics keys and plot files, brought into the workspace as docs/results.md says
    # (`dvc exp apply`), are exactly those that page lists.
    project.dvc("exp", "apply", "demo-alexnet")
    listed = documented((project.path / "docs" / "results.md").read_text())
    assert differences(listed, written(project.path, project.path / "dvc.yaml")) == []
