"""The whole pipeline through the real `dvc` CLI, on a tiny synthetic configuration.

One copy of the project serves the tests of this module, in order: each builds on the
state the previous one left (as a researcher's repository would be).
"""
from __future__ import annotations

import json
import os
import re
import shlex
from pathlib import Path

import numpy as np
import pytest
import yaml

from staged_fer.pipeline_paths import fill, pipeline_paths
from tests.dvc_project import ROOT, TINY_PARAMS, DvcProject
from tools import plots_template
from tools.code_deps import derived_deps

ALL_STAGES = ["download_fer", "decode_fer", "align_target", "build_splits",
              "train_phase1", "train_phase2", "evaluate"]

# Loaded by every Python process of the project copy (through PYTHONPATH): on exit, a stage
# script lists the in-repo files it actually imported, whichever code paths it took.
IMPORT_LOG_HOOK = """\
import atexit, os, sys

def _log_imports():
    script = sys.argv[0] if sys.argv else ""
    if not script.endswith(".py"):
        return
    root = os.getcwd() + os.sep
    paths = {os.path.abspath(m.__file__) for m in list(sys.modules.values())
             if isinstance(getattr(m, "__file__", None), str)}
    # (some modules, such as torch._ops, carry a bare file name that is no file here)
    files = sorted(os.path.relpath(p, root) for p in paths if p.startswith(root) and os.path.isfile(p))
    name = os.path.basename(script) + "." + str(os.getpid())
    with open(os.path.join(os.environ["IMPORT_LOG_DIR"], name), "w") as fh:
        fh.write("\\n".join(files))

atexit.register(_log_imports)
"""


@pytest.fixture(scope="module")
def project(module_tmp):
    plots_template.write()   # what `make setup` does: `dvc plots show` needs the page template
    project = DvcProject.copy_of_repo(module_tmp("repo"), TINY_PARAMS)
    hook, log = module_tmp("hook"), module_tmp("imports")
    (hook / "sitecustomize.py").write_text(IMPORT_LOG_HOOK)
    project.env.update(PYTHONPATH=str(hook), IMPORT_LOG_DIR=str(log))
    project.import_log = log
    return project


def changed_stages(project) -> set[str]:
    return set(json.loads(project.dvc("status", "--json").stdout))


def test_repro_runs_every_stage(project):
    ran = project.repro()
    assert sorted(ran) == sorted(ALL_STAGES)
    metrics = json.loads((project.path / "metrics" / "eval.json").read_text())
    assert metrics["synthetic"] is True
    assert (project.path / "dvc.lock").is_file()
    assert "**Synthetic data.**" in (project.path / "reports" / "model_card.md").read_text()


def test_every_file_a_stage_imported_while_running_is_one_of_its_deps(project):
    """The import graph behind dvc.yaml's code deps against what each script really loaded."""
    derived = derived_deps(project.path / "dvc.yaml")
    loaded: dict[str, set[str]] = {}
    for log in project.import_log.iterdir():
        loaded.setdefault(log.name.rsplit(".", 1)[0], set()).update(log.read_text().split())
    # Each stage's script comes first in its deps; train_phase1 and train_phase2 share theirs.
    scripts = {stage: derived[stage][0] for stage in ALL_STAGES}
    assert sorted(loaded) == sorted({Path(script).name for script in scripts.values()})
    for stage, script in scripts.items():
        unlisted = loaded[Path(script).name] - set(derived[stage])
        assert not unlisted, f"{stage} imported files its deps do not list: {sorted(unlisted)}"
        assert {script, "staged_fer/io.py"} <= loaded[Path(script).name]


def test_second_repro_reruns_nothing(project):
    assert project.repro() == []
    assert "up to date" in project.dvc("status").stdout


def test_phase2_param_reruns_only_phase2_and_evaluate(project):
    project.set_params(phase2__lr=0.002)
    assert sorted(project.repro()) == ["evaluate", "train_phase2"]


def test_run_cache_restores_a_stage_seen_before(project):
    project.set_params(phase2__lr=0.001)
    # Both phases were run with these exact inputs before: DVC restores them, runs nothing.
    assert project.repro() == []
    project.run("git", "add", "-A")
    project.run("git", "commit", "-q", "-m", "baseline run")


def edit_flags(project, rel: str) -> set[str]:
    """The stages `dvc status` calls changed after a comment is appended to ``rel``."""
    path = project.path / rel
    original = path.read_bytes()
    path.write_bytes(original + b"\n# an edit\n")
    try:
        return changed_stages(project)
    finally:
        path.write_bytes(original)


def test_editing_a_library_file_flags_exactly_the_stages_that_import_it(project):
    derived = derived_deps(project.path / "dvc.yaml")
    # io.py is imported by every stage, labels.py (the class order) by all but build_splits,
    # figures.py by evaluate alone.
    assert edit_flags(project, "staged_fer/io.py") == set(ALL_STAGES)
    assert edit_flags(project, "staged_fer/labels.py") == set(ALL_STAGES) - {"build_splits"}
    assert edit_flags(project, "staged_fer/evaluation/figures.py") == {"evaluate"}
    assert {s for s, files in derived.items() if "staged_fer/data/splits.py" in files} == \
        edit_flags(project, "staged_fer/data/splits.py")
    assert changed_stages(project) == set()   # the same bytes again: nothing to rerun


@pytest.mark.slow
def test_editing_each_library_file_flags_exactly_its_importers(project):
    # Every stage of dvc.yaml takes part: the optional export stage is switched on for one
    # checkpoint, and the pipeline reproduced (all of it when this test runs alone).
    params = (project.path / "params.yaml").read_bytes()
    export = "export@phase2"   # the stage instance that export.onnx = [phase2] makes
    project.set_params(export__onnx=["phase2"])
    project.repro()
    derived = derived_deps(project.path / "dvc.yaml")
    instances = project.dvc("stage", "list", "--name-only").stdout.split()   # foreach stages by instance
    assert export in instances
    wrong = {}
    try:
        for path in sorted(p for d in ("staged_fer", "stages") for p in (project.path / d).rglob("*.py")):
            rel = path.relative_to(project.path).as_posix()
            expected = {i for i in instances if rel in derived[i.partition("@")[0]]}
            flagged = edit_flags(project, rel)
            if flagged != expected:
                wrong[rel] = (sorted(flagged), sorted(expected))
        assert changed_stages(project) == set()
    finally:   # back to the module's state: export off, and none of its outputs left behind
        lock = yaml.safe_load((project.path / "dvc.lock").read_text())["stages"]
        for out in lock.get(export, {}).get("outs", []):
            (project.path / out["path"]).unlink(missing_ok=True)
        (project.path / "params.yaml").write_bytes(params)
        project.repro()
    assert wrong == {}


def test_experiment_with_vgg_m(project):
    project.dvc("exp", "run", "-n", "vgg", "-S", "model=vgg_m")
    shown = project.dvc("exp", "show", "--json").stdout
    assert '"vgg"' in shown


def readme_command(start: str) -> list[str]:
    """The README's command line that begins with ``start``, as arguments."""
    line = next(l for l in (ROOT / "README.md").read_text().splitlines() if l.startswith(start))
    return shlex.split(line.split("#")[0])


def test_the_readme_exp_show_line_reads_in_120_columns(project):
    """Per experiment: the model, both data schemes, Target Val accuracy of the final and the
    phase-1 model, in full (no `…`) in a 120-column terminal."""
    args = readme_command("dvc exp show ")
    project.env["COLUMNS"] = "120"
    try:
        shown = project.run(*args, "--no-pager").stdout
        diff = project.dvc("metrics", "diff", "HEAD", "vgg").stdout
    finally:
        del project.env["COLUMNS"]
    save_for_the_record(project, "exp_show_120.txt", shown)
    save_for_the_record(project, "metrics_diff_120.txt", diff)
    assert "…" not in shown and max(map(len, shown.splitlines())) <= 120
    for column in ("model", "phase1.data", "phase2.data", "target_val.accuracy", "target_val_phase1.accuracy"):
        assert column in shown
    assert "vgg_m" in shown and "alexnet" in shown and "fer28" in shown and "target" in shown
    # Two experiments compared figure by figure on one screen.
    assert len(diff.splitlines()) <= 50 and max(map(len, diff.splitlines())) <= 120 and "…" not in diff


def save_for_the_record(project, name: str, text: str) -> None:
    """Where RECORD_DIR is set, keep what a test saw (the README quotes these outputs)."""
    if os.environ.get("RECORD_DIR"):
        Path(os.environ["RECORD_DIR"], name).write_text(text)


def test_metrics_show_lists_a_few_dozen_headline_figures(project):
    shown = project.dvc("metrics", "show").stdout
    save_for_the_record(project, "metrics_show.txt", shown)
    figures = 0
    (workspace,) = json.loads(project.dvc("metrics", "show", "--json").stdout).values()
    for block in workspace["data"].values():
        figures += len(flatten(block["data"]))
    # 44: 4 scored sets x 8 and the synthetic flag, the alignment rate and its 6 attempts' shares,
    # the kept epoch and its accuracy per training phase
    assert 30 <= figures <= 46, figures
    assert "per_class" not in shown and "counts" not in shown


def flatten(tree, prefix="") -> dict:
    if not isinstance(tree, dict):
        return {prefix: tree}
    return {k: v for key, sub in tree.items() for k, v in flatten(sub, f"{prefix}{key}.").items()}


@pytest.mark.slow
def test_experiment_with_ferplus_labels(project, tmp_path):
    """Phase 1 on FER+ majority labels: a label file row-aligned with the project's FER CSV,
    where every fifth face has no majority and the first is not a face."""
    from tests.test_ferplus import one_hot, write_votes

    project.repro()   # a no-op after the module's earlier tests; the whole pipeline when run alone
    rows = [line.rsplit(",", 1) for line in (project.path / "data/raw/fer2013.csv").read_text().splitlines()[1:]]
    columns = ("anger", "disgust", "fear", "happiness", "sadness", "surprise", "neutral")  # FER order
    votes = np.array([[3, 3, 4, 0, 0, 0, 0, 0, 0, 0] if i % 5 == 4 else one_hot(columns[int(row[0][0])])
                      for i, row in enumerate(rows)])
    votes[0] = one_hot("NF")
    path = write_votes(tmp_path / "fer2013new.csv", [row[1] for row in rows], votes)
    out = project.dvc("exp", "run", "-n", "ferplus", "-S", "fer.labels=ferplus",
                      "-S", f"fer.ferplus_path={path}").stdout
    ran = set(re.findall(r"Running stage '([^']+)'", out))
    assert {"decode_fer", "build_splits", "train_phase1", "evaluate"} <= ran
    assert not ran & {"download_fer", "align_target"}, "download_fer reads no FER+ params"
    decoded = json.loads((project.path / "reports" / "fer" / "counts.json").read_text())   # the run's, in the workspace
    assert decoded["labels"] == "ferplus"
    assert decoded["ferplus"]["dropped"] == {"no_image": 0, "unknown": len(rows) // 5, "not_a_face": 1,
                                             "contempt": 0}
    assert sum(decoded["classes"].values()) == len(rows) - len(rows) // 5 - 1
    # The label file is a dependency of decode_fer: the lock pins it, and changing it flags the stage.
    lock = yaml.safe_load((project.path / "dvc.lock").read_text())
    pinned = {d["path"]: d for d in lock["stages"]["decode_fer"]["deps"]}
    assert re.fullmatch(r"[0-9a-f]{32}", pinned[str(path)]["md5"]), pinned
    original = path.read_bytes()
    path.write_bytes(original.replace(b"fer0000001.png", b"fer0000001.jpg", 1))
    try:
        status = project.dvc("status", "decode_fer").stdout
    finally:
        path.write_bytes(original)
    assert "changed deps" in status and str(path) in status, status


def test_metrics_diff_shows_both_accuracies(project):
    # AlexNet (the commit) against the VGG-M experiment, whatever a later experiment left in the workspace
    out = project.dvc("metrics", "diff", "HEAD", "vgg", "--md").stdout
    assert "metrics/eval.json" in out
    assert "fer_public_test.accuracy" in out
    assert "target_val.accuracy" in out


def test_plots_show_writes_the_confusion_data(project):
    # Every file the top-level plots name was written (DVC would only warn about a missing one).
    names = pipeline_paths(project.path / "dvc.yaml")
    plots = yaml.safe_load((project.path / "dvc.yaml").read_text())["plots"]
    files = [fill(f, names) for plot in plots for entry in plot.values() for f in entry["y"]]
    assert len(files) == 13 and [f for f in files if not (project.path / f).is_file()] == []
    project.dvc("plots", "show", "-o", "plots_page")
    page = (project.path / "plots_page" / "index.html").read_text()
    assert "predicted" in page and "actual" in page
