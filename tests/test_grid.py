"""The paper's grid: 2 models x 6 schemes queued as named DVC experiments."""
from __future__ import annotations

import json
import pytest

from staged_fer.evaluation import grid
from tests.dvc_project import BIN, TINY_PARAMS, DvcProject

EXPECTED = {
    "fer28": ("fer28", "none"), "fer32": ("fer32", "none"), "fer32-target": ("fer32_target", "none"),
    "fer28-to-target": ("fer28", "target"), "fer32-to-target": ("fer32", "target"),
    "imagenet-to-target": ("none", "target"),
}


def test_dry_run_prints_the_twelve_commands(capsys):
    assert grid.main(["--dry-run", "-S", "phase1.epochs=3"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 12
    assert lines[0] == ("dvc exp run --queue --name alexnet-fer28 -S model=alexnet -S phase1.data=fer28 "
                        "-S phase2.data=none -S phase1.epochs=3")
    assert lines[-1] == ("dvc exp run --queue --name vgg_m-imagenet-to-target -S model=vgg_m -S phase1.data=none "
                         "-S phase2.data=target -S phase1.epochs=3")
    expected = {f"{m}-{s}": (m, *d) for m in ("alexnet", "vgg_m") for s, d in EXPECTED.items()}
    seen = {}
    for line in lines:
        words = line.split()
        sets = dict(w.split("=", 1) for w in words[words.index("--name") + 3::2])
        seen[words[words.index("--name") + 1]] = (sets["model"], sets["phase1.data"], sets["phase2.data"])
    assert seen == expected


def test_every_scheme_is_one_the_pipeline_builds():
    from staged_fer.params import load_params, read_stage_params
    from staged_fer.data.splits import NONE, SplitsParams
    defined = (*read_stage_params(load_params("params.yaml"), SplitsParams).schemes, NONE)
    for s in grid.RECIPES:
        assert s.phase1 in defined and s.phase2 in defined
        assert grid.recipe_of_params(s.phase1, s.phase2) is s


@pytest.mark.parametrize("bad", ["model=vgg_m", "phase2.data=none", "params.yaml:phase1.data=fer28", "epochs"])
def test_overrides_the_grid_sets_itself_are_refused(bad, capsys):
    with pytest.raises(SystemExit) as exc:
        grid.main(["--dry-run", "-S", bad])
    assert exc.value.code == 2 and bad in capsys.readouterr().err


def _project(tmp_path) -> DvcProject:
    project = DvcProject.copy_of_repo(tmp_path, TINY_PARAMS)
    if not (project.path / ".dvc").is_dir():
        project.dvc("init", "-q")
        project.run("git", "add", "-A")
        project.run("git", "commit", "-q", "-m", "dvc init")
    return project


def _queued(project: DvcProject) -> dict[str, tuple]:
    """name -> (model, phase1.data, phase2.data, phase1.epochs) of the queued experiments."""
    queued = {}
    for commit in json.loads(project.dvc("exp", "show", "--json").stdout):
        for exp in commit.get("experiments") or []:
            for rev in exp["revs"]:
                p = rev["data"]["params"]["params.yaml"]["data"]
                assert exp["executor"]["state"] == "queued"
                queued[rev["name"]] = (p["model"], p["phase1"]["data"], p["phase2"]["data"], p["phase1"]["epochs"])
    return queued


def test_grid_queues_a_real_experiment(tmp_path):
    project = _project(tmp_path)
    result = project.run(str(BIN / "python"), "-m", "staged_fer.evaluation.grid", "--models", "vgg_m",
                         "--recipes", "fer32-to-target", "-S", "phase1.epochs=2")
    assert "queued 1 experiments" in result.stdout
    assert _queued(project) == {"vgg_m-fer32-to-target": ("vgg_m", "fer32", "target", 2)}


@pytest.mark.slow
def test_grid_queues_twelve_experiments(tmp_path):
    project = _project(tmp_path)
    result = project.run(str(BIN / "python"), "-m", "staged_fer.evaluation.grid", "-S", "phase1.epochs=2")
    assert "queued 12 experiments" in result.stdout
    assert _queued(project) == {f"{m}-{s}": (m, *d, 2) for m in ("alexnet", "vgg_m") for s, d in EXPECTED.items()}


def test_seeds_name_each_run_and_set_its_seed(capsys):
    assert grid.main(["--dry-run", "--models", "alexnet", "--recipes", "fer28", "--seeds", "0", "2"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        f"dvc exp run --queue --name alexnet-fer28-s{s} -S model=alexnet -S phase1.data=fer28 -S phase2.data=none "
        f"-S seed={s}" for s in (0, 2)]


@pytest.mark.parametrize("argv, message", [
    (["--seeds", "0", "1", "-S", "seed=3"], "-S 'seed=3': expected KEY=VALUE for a key the grid does not set itself"),
    (["--seeds", "1", "1"], "--seeds 1 1: a seed is listed twice"),
])
def test_seed_arguments_that_cannot_work_are_refused(argv, message, capsys):
    with pytest.raises(SystemExit) as exc:
        grid.main(["--dry-run", *argv])
    assert exc.value.code == 2 and message in capsys.readouterr().err


def test_devices_per_run_follow_the_last_override():
    assert grid.devices_per_run({"runtime": {"devices": 1}}, []) == 1
    assert grid.devices_per_run({"runtime": {"devices": 1}}, ["runtime.devices=4", "params.yaml:runtime.devices=2"]) == 2


def test_gpus_that_cannot_serve_a_run_are_refused_before_anything_is_queued(tmp_path):
    project = _project(tmp_path)
    result = project.run(str(BIN / "python"), "-m", "staged_fer.evaluation.grid", "--models", "alexnet",
                         "--recipes", "fer28", "--gpus", "0,1", "-S", "runtime.devices=3", check=False)
    assert result.returncode == 1
    assert result.stderr.strip() == ("error: GPUS=0,1: each run needs 3 GPUs (`runtime.devices`) but only 2 are "
                                     "listed")
    assert _queued(project) == {} and "alexnet-fer28" not in project.dvc("queue", "status").stdout


def test_pull_lets_every_run_restore_from_the_remote(capsys):
    assert grid.main(["--dry-run", "--pull", "--models", "alexnet", "--recipes", "fer28"]) == 0
    assert capsys.readouterr().out.startswith("dvc exp run --queue --pull --name alexnet-fer28 ")


class FakeDvc:
    """`dvc` as run_queue calls it: each `--run-all` turns the next of ``rounds`` (queue status
    text, experiments recorded) into what `queue status` and `exp list` print; queueing is recorded."""

    def __init__(self, monkeypatch, rounds):
        import subprocess
        self.rounds, self.calls, self.queued, self.now = list(rounds), [], [], ("", [])

        def run(cmd, **kwargs):
            self.calls.append((cmd[3:], kwargs.get("env", {}).get("STAGED_FER_GPUS")))
            if "--run-all" in cmd:
                self.now = self.rounds.pop(0)
            out = self.now[0] if "status" in cmd else "".join(f"{n}\n" for n in self.now[1]) if "list" in cmd else ""
            return subprocess.CompletedProcess(cmd, 0, stdout=out)
        monkeypatch.setattr(grid.subprocess, "run", run)
        monkeypatch.setattr(grid, "dvc_main", lambda argv: self.queued.append(argv) or 0)


def status_of(*rows: str) -> str:
    return "Task     Name              Created    Status\n" + "".join(f"{row}\n" for row in rows)


def test_running_the_queue_fails_when_an_experiment_of_the_grid_failed(monkeypatch, capsys):
    status = status_of("3eea8b5  alexnet-fer28     10:02 PM   Success",
                       "dab4746  alexnet-fer32     10:03 PM   Failed",
                       "0a1b2c3  vgg_m-fer28       09:00 PM   Failed")   # an earlier run, not this grid's
    cmds = grid.commands(["alexnet"], ["fer28", "fer32"])
    dvc = FakeDvc(monkeypatch, [(status, ["alexnet-fer28"])])
    assert grid.run_queue(("0", "1", "2", "3"), 2, cmds) == 1
    assert dvc.calls[0] == (["exp", "run", "--run-all", "--jobs", "2"], "0,1,2,3")
    assert capsys.readouterr().err == ("error: 1 experiment(s) failed: alexnet-fer32; see `dvc queue logs <name>`\n")
    FakeDvc(monkeypatch, [(status, ["alexnet-fer28"])])
    assert grid.run_queue(("0",), 1, cmds[:1]) == 0


def test_a_run_the_queue_calls_a_success_but_did_not_record_is_run_once_more(monkeypatch, capsys):
    cmds = grid.commands(["alexnet"], ["fer28", "fer32"])
    first = status_of("3eea8b5  alexnet-fer28     10:02 PM   Success", "dab4746  alexnet-fer32     10:03 PM   Success")
    again = first + "5f5f5f5  alexnet-fer32     10:09 PM   Success\n"
    dvc = FakeDvc(monkeypatch, [(first, ["alexnet-fer28"]), (again, ["alexnet-fer28", "alexnet-fer32"])])
    assert grid.run_queue(("0", "1"), 1, cmds) == 0
    assert dvc.queued == [cmds[1][1:]]                       # only the lost one, queued as before
    assert [call for call, _ in dvc.calls].count(["exp", "run", "--run-all", "--jobs", "2"]) == 2
    assert ("DVC's queue ended without recording 1 experiment(s) as finished: alexnet-fer32; "
            "queueing and running them once more") in capsys.readouterr().err

    # Lost twice: the grid says so and fails rather than try for ever.
    FakeDvc(monkeypatch, [(first, ["alexnet-fer28"]), (again, ["alexnet-fer28"])])
    assert grid.run_queue(("0", "1"), 1, cmds) == 1
    assert capsys.readouterr().err.endswith(
        "error: 1 experiment(s) not recorded after two tries: alexnet-fer32; "
        "see `dvc queue status` and `dvc queue logs <name>`\n")
