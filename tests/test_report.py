"""The grid report rendered from `dvc exp show --json` output and predictions CSVs."""
from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
import pytest

from staged_fer.errors import PipelineError
from staged_fer.evaluation import experiments, grid, report
from staged_fer.labels import EMOTIONS
from staged_fer.models import MODELS, PAPER_MODELS
from staged_fer.pipeline_paths import pipeline_paths

ROOT = Path(__file__).resolve().parents[1]
METRICS_FILE = pipeline_paths(ROOT / "dvc.yaml")["eval_metrics"]


@pytest.fixture(autouse=True)
def at_the_repository_root(monkeypatch):
    """The report reads dvc.yaml where it runs, as `make report` runs it: the repository root."""
    monkeypatch.chdir(ROOT)


def block(acc, n=100):
    return {"n": n, "accuracy": acc, "accuracy_ci95_low": acc - 0.05, "accuracy_ci95_high": acc + 0.05,
            "balanced_accuracy": acc - 0.1, "macro_f1": acc - 0.2, "cost_accuracy": acc + 0.1, "synthetic": True,
            "per_class": {e: {"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 10} for e in EMOTIONS}}


def rev(sha, name, model, s1, s2, acc=None, metrics_file=METRICS_FILE):
    """One revision as `dvc exp show --json` (DVC 3) lists it."""
    metrics = {}
    if acc is not None:
        metrics = {metrics_file: {"data": {
            "synthetic": True, "model": model, "schemes": f"{s1} -> {s2}",
            "fer_public_test": block(0.6), "fer_private_test": block(0.61),
            "target_val": block(acc), "target_val_phase1": block(acc - 0.02)}}}
    return {"rev": sha, "name": name, "data": {
        "rev": sha, "timestamp": "2026-11-27T19:23:08",
        "params": {"params.yaml": {"data": {"seed": 0, "model": model, "phase1": {"data": s1, "epochs": 1},
                                            "phase2": {"data": s2, "epochs": 1}}}},
        "metrics": metrics, "deps": {}, "outs": {}, "meta": {}}, "error": None, "experiments": None}


def exp(r, state="success"):
    return {"revs": [r], "executor": {"state": state, "name": "dvc-task", "local": None}, "name": r["name"]}


EXP_SHOW = [
    {**rev("workspace", None, "alexnet", "fer28", "target", 0.50), "rev": "workspace"},
    {**rev("a" * 40, "main", "alexnet", "fer28", "target", 0.50), "experiments": [
        exp(rev("b" * 40, "alexnet-fer28", "alexnet", "fer28", "none", 0.45)),
        exp(rev("c" * 40, "vgg_m-fer28-to-target", "vgg_m", "fer28", "target", 0.40)),
        exp(rev("d" * 40, "vgg_m-fer28", "vgg_m", "fer28", "none", 0.35)),
        exp(rev("e" * 40, "alexnet-fer28-to-target", "alexnet", "fer28", "target", 0.55)),
        exp(rev("f" * 40, "vgg_m-fer32", "vgg_m", "fer32", "none"), state="queued"),
    ]},
]


def predictions_csv(truth, pred):
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["id", "true", "predicted", *(f"p_{e}" for e in EMOTIONS)])
    for i, (t, p) in enumerate(zip(truth, pred)):
        w.writerow([f"Val/{i:03d}.png", EMOTIONS[t], EMOTIONS[p], *["0.142857"] * 7])
    return buf.getvalue()


@pytest.fixture
def no_png(monkeypatch):
    """The PNG table is checked once (test_report_renders_table_next_to_the_paper); elsewhere it
    only costs time."""
    monkeypatch.setattr(report, "render_png", lambda experiments, path: None)


@pytest.fixture
def reader():
    """Predictions per experiment commit: 40 samples; each model's double run fixes 12 of its
    single run's errors and breaks 2 (McNemar exact: p = 2 * P(X <= 2 | 14, 1/2))."""
    truth = np.arange(40) % 7
    single = truth.copy()
    single[:20] = (truth[:20] + 1) % 7
    double = single.copy()
    double[:12] = truth[:12]
    double[30:32] = (truth[30:32] + 3) % 7
    files = {"b": (truth, single), "e": (truth, double), "d": (truth, single), "c": (truth, double)}
    calls = []

    def read(path, rev):
        calls.append((path, rev))
        assert path == "reports/eval/predictions/target_val.csv"
        t, p = files[rev[0]]
        # rows in a different order than the other experiment's: matching is by id
        order = np.arange(len(t))[::-1] if rev[0] in "ce" else np.arange(len(t))
        rows = predictions_csv(t, p).splitlines()
        return "\n".join([rows[0]] + [rows[1 + i] for i in order]) + "\n"
    read.calls = calls
    return read


def test_parse_exp_show_finds_commits_and_experiments():
    exps = experiments.parse_exp_show(EXP_SHOW)
    assert [e.name for e in exps] == ["main", "alexnet-fer28", "vgg_m-fer28-to-target", "vgg_m-fer28",
                                      "alexnet-fer28-to-target", "vgg_m-fer32"]
    queued = exps[-1]
    assert queued.state == "queued" and queued.metrics is None and queued.recipe.name == "fer32"
    assert exps[2].model == "vgg_m" and exps[2].recipe.paper == "FER28->EmotiW"


def test_report_renders_table_next_to_the_paper(tmp_path, reader):
    text = report.build_report(EXP_SHOW, tmp_path, read=reader)
    assert (tmp_path / "report.md").read_text() == text
    assert (tmp_path / "table.png").read_bytes()[:4] == b"\x89PNG"
    rows = [line for line in text.splitlines() if line.startswith("| ") and "experiment" not in line]
    table = [r for r in rows if r.count("|") == len(report.TABLE_HEADER) + 1]
    # model-major, then the paper's scheme order; the commit itself is a row too
    assert [r.split(" | ")[0].lstrip("| ") for r in table] == [
        "alexnet-fer28", "alexnet-fer28-to-target", "main", "vgg_m-fer28", "vgg_m-fer28-to-target"]
    alex_double = next(r for r in table if r.startswith("| alexnet-fer28-to-target "))
    assert "55.0 [50.0, 60.0]" in alex_double and "53.0 [48.0, 58.0]" in alex_double
    assert "48.5 / 55.6 (S3)" in alex_double and "double" in alex_double and "synthetic" in alex_double
    vgg_single = next(r for r in table if r.startswith("| vgg_m-fer28 "))
    assert "42.9 / 47.0 (S2)" in vgg_single and "VGG-CNN-M-2048" in vgg_single
    assert "Without metrics (queued, running or failed): vgg_m-fer32 (queued)\n" in text
    assert "synthetic data" in text.lower()


def test_mcnemar_between_single_and_double(tmp_path, reader, no_png):
    text = report.build_report(EXP_SHOW, tmp_path, read=reader)
    p = 2 * (1 + 14 + 91) / 2 ** 14
    assert f"| alexnet-fer28 | alexnet-fer28-to-target | 40 | 2 | 12 | exact | {p:.4g} |" in text
    assert f"| vgg_m-fer28 | vgg_m-fer28-to-target | 40 | 2 | 12 | exact | {p:.4g} |" in text
    # and across models on the same scheme: identical predictions
    assert "| alexnet-fer28 | vgg_m-fer28 | 40 | 0 | 0 | exact | 1 |" in text
    assert ("reports/eval/predictions/target_val.csv", "e" * 40) in reader.calls


def test_explicit_pair_and_unknown_experiment(tmp_path, reader, no_png):
    text = report.build_report(EXP_SHOW, tmp_path, read=reader, pairs=[("vgg_m-fer28-to-target", "alexnet-fer28")])
    assert text.count("| exact |") == 1
    with pytest.raises(PipelineError, match="'vgg_m-fer32'"):
        report.build_report(EXP_SHOW, tmp_path, read=reader, pairs=[("vgg_m-fer32", "alexnet-fer28")])


def test_pairs_on_different_samples_are_refused(tmp_path, reader, no_png):
    def shifted(path, rev):
        text = reader(path, rev)
        return text.replace("Val/000.png", "Val/999.png") if rev[0] == "e" else text
    with pytest.raises(PipelineError, match="alexnet-fer28 and alexnet-fer28-to-target scored different samples"):
        report.build_report(EXP_SHOW, tmp_path, read=shifted, pairs=[("alexnet-fer28", "alexnet-fer28-to-target")])


def test_cli_reads_a_saved_exp_show(tmp_path, capsys, no_png):
    saved = tmp_path / "exp.json"
    # without predictions to pair: one experiment per model and scheme
    main = rev("a" * 40, "main", "alexnet", "fer28", "target")
    saved.write_text(json.dumps([{**main, "experiments": EXP_SHOW[1]["experiments"][:1]}]))
    from staged_fer.cli import run_stage
    assert run_stage(report.main, ["--out", str(tmp_path / "out"), "--exp-show", str(saved)]) == 0
    out = capsys.readouterr().out
    assert "No pair of finished experiments" in out and "main" not in out  # a commit without a run
    assert (tmp_path / "out" / "report.md").is_file()


def test_accuracy_chosen_on_its_own_set_is_starred():
    block = {"accuracy": 0.5, "accuracy_ci95_low": 0.4, "accuracy_ci95_high": 0.6, "selected_here": True}
    exp = experiments.Experiment("x", "a" * 40, "alexnet", None, {"target_val": block, "synthetic": False})
    assert report.table_rows([exp])[0][4] == "50.0* [40.0, 60.0]"
    exp.metrics["target_val"] = {**block, "selected_here": False}
    assert report.table_rows([exp])[0][4] == "50.0 [40.0, 60.0]"


def seeded_rev(sha, model, scheme, seed, acc):
    r = rev(sha, f"{model}-{scheme.name}-s{seed}", model, scheme.phase1, scheme.phase2, acc)
    r["data"]["params"]["params.yaml"]["data"]["seed"] = seed
    return r


def test_cells_over_seeds_and_the_paper_comparisons_they_hold_in(tmp_path, no_png):
    single, double = grid.RECIPE_OF["fer28"], grid.RECIPE_OF["fer28-to-target"]
    # AlexNet: double above single in seeds 0 and 1, below in seed 2 (the paper: above); VGG-M's
    # single run has one seed only, so its comparisons need two seeds in common and are left out.
    accs = {("alexnet", single): (0.40, 0.42, 0.50), ("alexnet", double): (0.45, 0.47, 0.44)}
    runs, sha = [], iter("0123456789abcdef")
    truth = np.arange(40) % 7
    files = {}
    for (model, scheme), values in accs.items():
        for seed, acc in enumerate(values):
            s = next(sha) * 40
            runs.append(exp(seeded_rev(s, model, scheme, seed, acc)))
            right = int(acc * 40)   # the first `right` samples right, the rest wrong
            pred = truth.copy()
            pred[right:] = (truth[right:] + 1) % 7
            files[s] = predictions_csv(truth, pred)
    s = next(sha) * 40
    runs.append(exp(seeded_rev(s, "vgg_m", single, 0, 0.30)))
    files[s] = predictions_csv(truth, truth)
    doc = [{**rev("f" * 40, "main", "alexnet", "fer28", "target"), "experiments": runs}]
    text = report.build_report(doc, tmp_path, read=lambda path, r: files[r])

    over = text.split("## Over seeds")[1].split("## McNemar")[0]
    cell = next(line for line in over.splitlines() if line.startswith("| AlexNet | FER28 | single"))
    values = 100 * np.array(accs["alexnet", single])
    assert (f"| 0, 1, 2 | {values.mean():.1f} ± {values.std(ddof=1):.1f} [40.0, 50.0] |" in cell
            and "46.9 / 54.0 (S1)" in cell)
    assert "| VGG-CNN-M-2048 | FER28 | single | 0 | 30.0 |" in over
    # Pooled: per seed the double run gets samples 16-17, 16-17 right that single does not, and
    # single gets 17-19 right in seed 2 that double does not: 4 vs 3 discordant, exact test.
    only_a, only_b = 3, 4
    p = 2 * sum(__import__("math").comb(7, i) for i in range(only_a + 1)) / 2 ** 7
    assert (f"| alexnet FER28 | alexnet FER28->EmotiW | 46.9 / 48.5 | 0, 1, 2 | 2 of 3 | {only_a} | {only_b} | "
            f"120 | exact | {min(1.0, p):.4g} |") in over
    assert over.count("\n| alexnet ") == 1 and "vgg_m FER28" not in over
    # ... while each seed's own pair is tested beside the per-seed rows
    assert "| alexnet-fer28-s2 | alexnet-fer28-to-target-s2 | 40 | 3 | 0 | exact |" in text


def test_a_single_seed_grid_has_no_section_over_seeds(tmp_path, reader, no_png):
    assert "## Over seeds" not in report.build_report(EXP_SHOW, tmp_path, read=reader)


def test_evaluates_files_are_where_dvc_yaml_puts_them(tmp_path, no_png):
    """The metrics key and the predictions CSVs follow dvc.yaml's `vars`, not a copy of them."""
    dvc_yaml = tmp_path / "dvc.yaml"
    dvc_yaml.write_text("vars:\n  - eval_metrics: out/m.json\n    eval_reports: out/r\n")
    truth = np.arange(14) % 7
    doc = [{**rev("a" * 40, "main", "alexnet", "fer28", "none"), "experiments": [
        exp(rev(sha * 40, f"{model}-fer28", model, "fer28", "none", 0.5, metrics_file="out/m.json"))
        for sha, model in (("b", "alexnet"), ("c", "vgg_m"))]}]
    read = []
    text = report.build_report(doc, tmp_path / "report", dvc_yaml=dvc_yaml,
                               read=lambda path, r: read.append(path) or predictions_csv(truth, truth))
    assert "| alexnet-fer28 | vgg_m-fer28 | 14 | 0 | 0 | exact | 1 |" in text
    assert set(read) == {"out/r/predictions/target_val.csv"}
    dvc_yaml.write_text("vars:\n  - eval_metrics: out/m.json\n")
    with pytest.raises(PipelineError, match=rf"{dvc_yaml}: `vars` has no path named 'eval_reports'"):
        report.build_report(doc, tmp_path / "report", dvc_yaml=dvc_yaml, read=lambda path, r: "")


def test_the_papers_networks_and_numbers_are_the_registrys():
    """Which networks the paper ran, and what it reports for each, is in the model registry."""
    cross = [(a[0], b[0]) for a, b in report.paper_comparisons() if a[0] != b[0]]
    assert set(cross) == {("alexnet", "vgg_m")} and set(PAPER_MODELS) == {"alexnet", "vgg_m"}
    recipes = {r.name: r for r in grid.RECIPES}
    assert report._paper("vgg_m", recipes["fer32-target"]) == "46.9 / 52.2 (S9)"
    assert report._paper("alexnet", recipes["fer32"]) == "not reported"
    assert report._paper("resnet18", recipes["fer28"]) == report.BEYOND_PAPER
    assert all(r.recipe in recipes for name in PAPER_MODELS for r in MODELS[name].paper)
