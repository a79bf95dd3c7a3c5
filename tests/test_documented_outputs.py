"""docs/results.md's metrics and plots against a run's: the comparison the slow demo test makes,
here on a run folder written by hand, laid out as the demo's runs are (both phases trained, the
target set's Test unlabelled)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tests.documented_outputs import declared, differences, documented, written
from tests.dvc_project import ROOT

DOC = ROOT / "docs" / "results.md"
DVC_YAML = ROOT / "dvc.yaml"

SETS = ("fer_public_test", "fer_private_test", "target_val", "target_val_phase1")
FIGURES = {"n": 350, "accuracy": 0.5, "accuracy_ci95_low": 0.45, "accuracy_ci95_high": 0.55,
           "balanced_accuracy": 0.5, "macro_f1": 0.48, "cost_accuracy": 0.6, "selected_here": False}
ATTEMPTS = ("frontal", "frontal_padded", "frontal_small", "profile", "profile_padded", "whole_photo")
CURVES = ("train_loss", "train_acc", "val_loss", "val_acc", "lr")
METRICS = {
    "metrics/eval.json": {"synthetic": True, **{s: dict(FIGURES) for s in SETS}},
    "metrics/align.json": {"alignment_rate": 0.9, "aligned_by": {a: 0.15 for a in ATTEMPTS}},
    "dvclive/phase1/metrics.json": {"kept_epoch": 7, "best_val_acc": 0.5},
    "dvclive/phase2/metrics.json": {"kept_epoch": 12, "best_val_acc": 0.8},
}
PLOT_FILES = [f"plots/confusion/{s}.json" for s in SETS] + [
    f"dvclive/{stage}/plots/metrics/{curve}.tsv" for stage in ("phase1", "phase2") for curve in CURVES]


def write_run(folder: Path, metrics: dict = METRICS, plot_files=PLOT_FILES) -> Path:
    for file, content in metrics.items():
        (folder / file).parent.mkdir(parents=True, exist_ok=True)
        (folder / file).write_text(json.dumps(content))
    for file in plot_files:
        (folder / file).parent.mkdir(parents=True, exist_ok=True)
        (folder / file).write_text("step\tvalue\n0\t1\n")
    return folder


def compare(run: Path, dvc_yaml: Path = DVC_YAML) -> list[str]:
    return differences(documented(DOC.read_text()), written(run, dvc_yaml))


def test_the_run_here_is_laid_out_as_dvc_yaml_declares():
    metrics, stage_plots, top = declared(DVC_YAML)
    assert sorted(metrics) == sorted(METRICS)
    drawn = {f for files in top.values() for f in files}
    assert all(any(f.startswith(p + "/") for p in stage_plots) or f in drawn for f in PLOT_FILES)


def test_the_docs_list_exactly_what_such_a_run_writes(tmp_path):
    assert compare(write_run(tmp_path)) == []


def test_a_set_scored_only_when_labelled_may_be_there_or_not(tmp_path):
    metrics = {**METRICS, "metrics/eval.json": {**METRICS["metrics/eval.json"], "target_test": dict(FIGURES)}}
    assert compare(write_run(tmp_path, metrics, [*PLOT_FILES, "plots/confusion/target_test.json"])) == []


def test_a_metric_the_docs_do_not_list_fails(tmp_path):
    eval_json = json.loads(json.dumps(METRICS["metrics/eval.json"]))
    eval_json["target_val"]["top2_accuracy"] = 0.7
    assert compare(write_run(tmp_path, {**METRICS, "metrics/eval.json": eval_json})) == [
        "metrics: written by the run, not listed in docs/results.md: metrics/eval.json: target_val.top2_accuracy"]


def test_a_listed_metric_the_run_did_not_write_fails(tmp_path):
    align = {"alignment_rate": 0.9, "aligned_by": {a: 0.2 for a in ATTEMPTS if a != "whole_photo"}}
    assert compare(write_run(tmp_path, {**METRICS, "metrics/align.json": align})) == [
        "metrics: listed in docs/results.md, not written by the run: metrics/align.json: aligned_by.whole_photo"]


def test_a_plot_file_the_docs_do_not_list_fails(tmp_path):
    assert compare(write_run(tmp_path, plot_files=[*PLOT_FILES, "dvclive/phase1/plots/metrics/val_f1.tsv"])) == [
        "plot files: written by the run, not listed in docs/results.md: dvclive/phase1/plots/metrics/val_f1.tsv"]


def test_a_missing_curve_fails_as_a_file_and_as_the_plot_that_draws_it(tmp_path):
    files = [f for f in PLOT_FILES if f != "dvclive/phase2/plots/metrics/lr.tsv"]
    assert compare(write_run(tmp_path, plot_files=files)) == [
        "plots: listed in docs/results.md, not written by the run: phase2_lr",
        "plot files: listed in docs/results.md, not written by the run: dvclive/phase2/plots/metrics/lr.tsv"]


def test_a_plot_dvc_yaml_adds_that_the_docs_do_not_list_fails(tmp_path):
    spec = yaml.safe_load(DVC_YAML.read_text())
    spec["plots"].append({"confusion_fer_public_test_normalised": {
        "template": "confusion_normalized", "x": "predicted", "y": {"plots/confusion/fer_public_test.json": "actual"}}})
    dvc_yaml = tmp_path / "dvc.yaml"
    dvc_yaml.write_text(yaml.safe_dump(spec, sort_keys=False))
    assert compare(write_run(tmp_path / "run"), dvc_yaml) == [
        "plots: written by the run, not listed in docs/results.md: confusion_fer_public_test_normalised"]


def test_a_doc_without_one_of_the_tables_is_refused():
    text = DOC.read_text().replace("## Plots", "## Charts")
    with pytest.raises(ValueError, match=r"docs/results.md: no `## Plots` section"):
        documented(text)
