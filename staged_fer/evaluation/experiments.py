"""The grid's runs as `dvc exp show --json` reports them, and the predictions of two runs
paired by sample, which the report (staged_fer/evaluation/report.py) compares.

An experiment's evaluate metrics are read from the file dvc.yaml's `vars` name
(``eval_metrics``); its predictions CSVs from the DVC cache at the experiment's commit
(``dvc.api.read``), so experiments pulled from another box are read like local ones.
"""
from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from ..cli import dvc_output
from ..errors import PipelineError
from ..labels import LABEL_OF
from ..pipeline_paths import pipeline_paths
from .grid import Recipe, recipe_of_params
from .stats import McNemar, mcnemar


@dataclass
class Experiment:
    name: str
    rev: str
    model: str | None
    recipe: Recipe | None
    metrics: dict | None               # evaluate's metrics file, None when the run has none
    state: str = "success"             # success | queued | running | failed | ...
    params: dict = field(default_factory=dict)
    commit: bool = False               # a Git commit (baseline) rather than an experiment

    @property
    def seed(self):
        return self.params.get("seed")



def lookup(d: dict | None, *keys):
    """``d[k1][k2]...``, or None where a key is missing (exp show leaves out what a run lacks)."""
    for k in keys:
        if not isinstance(d, dict) or k not in d:
            return None
        d = d[k]
    return d



def _experiment(entry: dict, state: str, metrics_file: str) -> Experiment:
    data = entry.get("data") or {}
    params = lookup(data, "params", "params.yaml", "data") or {}
    model = params.get("model")
    s1, s2 = lookup(params, "phase1", "data"), lookup(params, "phase2", "data")
    recipe = recipe_of_params(s1, s2) if s1 and s2 else None
    metrics = lookup(data, "metrics", metrics_file, "data")
    return Experiment(entry.get("name") or str(entry.get("rev", ""))[:7], str(entry.get("rev", "")),
                      model, recipe, metrics or None, state, params)



def parse_exp_show(doc: list, metrics_file: str | None = None) -> list[Experiment]:
    """Commits and their experiments from `dvc exp show --json`, the workspace left out.
    ``metrics_file``: evaluate's metrics JSON, as `dvc exp show` keys it (dvc.yaml's
    `eval_metrics` when not given)."""
    if metrics_file is None:
        metrics_file = pipeline_paths()["eval_metrics"]
    if not isinstance(doc, list):
        raise PipelineError("dvc exp show --json: expected a list of commits")
    out = []
    for commit in doc:
        if commit.get("rev") == "workspace":
            continue
        base = _experiment(commit, "success" if not commit.get("error") else "failed", metrics_file)
        base.commit = True
        out.append(base)
        for exp in commit.get("experiments") or []:
            state = lookup(exp, "executor", "state") or "success"
            for rev in exp.get("revs") or []:
                if rev.get("error"):
                    state = "failed"
                out.append(_experiment(rev, state, metrics_file))
    return out



def read_predictions(text: str, where: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ids, true and predicted label ids from a predictions CSV written by `evaluate`."""
    reader = csv.DictReader(io.StringIO(text))
    ids, true, pred = [], [], []
    for line, row in enumerate(reader, start=2):
        try:
            ids.append(row["id"])
            true.append(LABEL_OF[row["true"]])
            pred.append(LABEL_OF[row["predicted"]])
        except KeyError as exc:
            raise PipelineError(f"{where}: line {line}: missing column or unknown class {exc}") from None
    return np.array(ids, dtype=str), np.array(true), np.array(pred)



def paired_predictions(a: Experiment, b: Experiment, path: str,
                       read: Callable[[str, str], str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """True labels and the two experiments' predictions in the predictions CSV ``path``,
    matched by sample id."""
    ids_a, true_a, pred_a = read_predictions(read(path, a.rev), f"{path}@{a.name}")
    ids_b, true_b, pred_b = read_predictions(read(path, b.rev), f"{path}@{b.name}")
    order_a, order_b = np.argsort(ids_a), np.argsort(ids_b)
    if not np.array_equal(ids_a[order_a], ids_b[order_b]):
        raise PipelineError(f"{path}: experiments {a.name} and {b.name} scored different samples; "
                            f"McNemar needs the same split (rerun both on the same data)")
    if not np.array_equal(true_a[order_a], true_b[order_b]):
        raise PipelineError(f"{path}: experiments {a.name} and {b.name} disagree on the true labels")
    return true_a[order_a], pred_a[order_a], pred_b[order_b]



def paired_test(a: Experiment, b: Experiment, path: str, read: Callable[[str, str], str]) -> McNemar:
    """McNemar between two experiments' predictions in the predictions CSV ``path``, matched by
    sample id."""
    return mcnemar(*paired_predictions(a, b, path, read))



def dvc_reader(path: str, rev: str) -> str:
    import dvc.api
    try:
        return dvc.api.read(path, rev=rev)
    except Exception as exc:  # dvc raises many types; each means the same thing here
        raise PipelineError(f"{path} at experiment commit {rev[:7]}: cannot read it from the DVC cache "
                            f"({type(exc).__name__}: {exc}); run `dvc exp pull` for experiments run elsewhere, "
                            f"or run the report in the repository that ran them") from None



def exp_show_json(path: str | None) -> list:
    if path:
        return json.loads(Path(path).read_text())
    return json.loads(dvc_output("exp", "show", "--json"))
