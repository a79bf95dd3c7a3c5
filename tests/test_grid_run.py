"""A 2x2 grid (both networks, FER28 single and FER28->EmotiW double) run through the DVC queue
on the tiny synthetic configuration, then the report over it."""
from __future__ import annotations

import json
import time

import pytest

from tests.dvc_project import BIN
from tests.test_grid import _project

NAMES = ["alexnet-fer28", "alexnet-fer28-to-target", "vgg_m-fer28", "vgg_m-fer28-to-target"]


@pytest.mark.slow
def test_two_by_two_grid_runs_and_reports(tmp_path):
    project = _project(tmp_path)
    project.run(str(BIN / "python"), "-m", "staged_fer.evaluation.grid", "--recipes", "fer28", "fer28-to-target")
    project.dvc("queue", "start", "--jobs", "1")
    deadline = time.monotonic() + 3600
    while True:
        status = project.dvc("queue", "status").stdout
        if not any(word in status for word in ("Queued", "Running")):
            break
        assert time.monotonic() < deadline, status
        time.sleep(10)
    assert status.count("Success") == 4, status + "\n".join(
        project.dvc("queue", "logs", n, check=False).stdout[-3000:] for n in NAMES if f"{n} " in status)

    out = project.run(str(BIN / "python"), "-m", "staged_fer.evaluation.report", "--out", "reports/grid").stdout
    assert (project.path / "reports" / "grid" / "table.png").is_file()
    table, mcnemar = out.split("## McNemar")
    rows = {line.split(" | ")[0].lstrip("| "): line for line in table.splitlines() if line.startswith("| ")}
    for name in NAMES:
        assert "synthetic" in rows[name]
    assert "46.9 / 54.0 (S1)" in rows["alexnet-fer28"] and "47.8 / 52.1 (S5)" in rows["vgg_m-fer28-to-target"]
    tests = [line for line in mcnemar.splitlines() if line.startswith("| ") and "---" not in line]
    pairs = {tuple(line.split(" | ")[:2]) for line in tests[1:]}
    assert pairs == {("| alexnet-fer28", "alexnet-fer28-to-target"), ("| vgg_m-fer28", "vgg_m-fer28-to-target"),
                     ("| alexnet-fer28", "vgg_m-fer28"), ("| alexnet-fer28-to-target", "vgg_m-fer28-to-target")}
    # A double run's phase 1 is its single run's model, restored from the run-cache: the same
    # predictions on Target Val, so the same accuracy to the last digit.
    from staged_fer.evaluation.report import parse_exp_show
    metrics = {e.name: e.metrics for e in parse_exp_show(json.loads(project.dvc("exp", "show", "--json").stdout))}
    for model in ("alexnet", "vgg_m"):
        assert metrics[f"{model}-fer28-to-target"]["target_val_phase1"] == metrics[f"{model}-fer28"]["target_val"]
