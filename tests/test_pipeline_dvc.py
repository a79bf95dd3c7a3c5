"""The whole pipeline through the real `dvc` CLI, on a tiny synthetic configuration.

One copy of the project serves the tests of this module, in order: each builds on the
state the previous one left (as a researcher's repository would be).
"""
from __future__ import annotations

import json

import pytest

from tests.dvc_project import TINY_PARAMS, DvcProject

ALL_STAGES = ["download_fer", "decode_fer", "align_emotiw", "build_splits",
              "train_stage1", "train_stage2", "evaluate"]


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    return DvcProject.copy_of_repo(tmp_path_factory.mktemp("repo"), TINY_PARAMS)


def test_repro_runs_every_stage(project):
    ran = project.repro()
    assert sorted(ran) == sorted(ALL_STAGES)
    metrics = json.loads((project.path / "metrics" / "eval.json").read_text())
    assert metrics["synthetic"] is True
    assert (project.path / "dvc.lock").is_file()
    assert "**Synthetic data.**" in (project.path / "reports" / "model_card.md").read_text()


def test_second_repro_reruns_nothing(project):
    assert project.repro() == []
    assert "up to date" in project.dvc("status").stdout


def test_stage2_param_reruns_only_stage2_and_evaluate(project):
    project.set_params(stage2__lr=0.002)
    assert sorted(project.repro()) == ["evaluate", "train_stage2"]


def test_run_cache_restores_a_stage_seen_before(project):
    project.set_params(stage2__lr=0.001)
    # Both stages were run with these exact inputs before: DVC restores them, runs nothing.
    assert project.repro() == []
    project.run("git", "add", "-A")
    project.run("git", "commit", "-q", "-m", "baseline run")


def test_experiment_with_vgg_m(project):
    project.dvc("exp", "run", "-n", "vgg", "-S", "model=vgg_m")
    shown = project.dvc("exp", "show", "--json").stdout
    assert '"vgg"' in shown


def test_metrics_diff_shows_both_accuracies(project):
    out = project.dvc("metrics", "diff", "HEAD", "--md").stdout
    assert "metrics/eval.json" in out
    assert "fer_public_test.accuracy" in out
    assert "emotiw_val.accuracy" in out


def test_plots_show_writes_the_confusion_data(project):
    project.dvc("plots", "show", "-o", "plots_page")
    page = (project.path / "plots_page" / "index.html").read_text()
    assert "predicted" in page and "actual" in page
