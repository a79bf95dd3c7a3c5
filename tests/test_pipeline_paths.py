"""Every path of the pipeline is written once, in dvc.yaml's `vars`: the stages get it as an
argument, and code that reads a run's outputs from outside a stage asks dvc.yaml for it."""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
import yaml

from staged_fer.data.splits import SOURCES
from staged_fer.errors import PipelineError
from staged_fer.evaluation.scoring import set_key
from staged_fer.pipeline_paths import fill, pipeline_paths

ROOT = Path(__file__).resolve().parents[1]
DVC_YAML = ROOT / "dvc.yaml"
PYTHON = sorted([*(ROOT / "staged_fer").rglob("*.py"), *(ROOT / "stages").glob("*.py")])


def _code_strings(path: Path) -> list[tuple[int, str]]:
    """(line, text) of the string constants of ``path``, docstrings left out (they may show a
    command line as an example)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
                  and node.body and isinstance(node.body[0], ast.Expr)
                  and isinstance(node.body[0].value, ast.Constant)}
    return [(node.lineno, node.value) for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings]


def test_no_path_of_the_vars_is_spelled_again_in_dvc_yaml():
    paths = pipeline_paths(DVC_YAML)
    assert {"fer_npz", "phase2_model", "eval_metrics", "eval_reports", "confusion_plots"} <= set(paths)
    stages = DVC_YAML.read_text().split("\nstages:\n", 1)[1]
    assert [p for p in paths.values() if p in stages] == []
    assert [name for name in paths if f"${{{name}}}" not in stages] == []   # and each is used


def test_no_path_of_the_vars_is_spelled_in_the_code():
    values = set(pipeline_paths(DVC_YAML).values())
    spelled = [f"{path.relative_to(ROOT)}:{line}: {value}" for path in PYTHON
               for line, text in _code_strings(path) for value in values if value in text]
    assert spelled == []


def test_the_top_level_confusion_plots_name_sets_that_evaluate_scores():
    spec = yaml.safe_load(DVC_YAML.read_text())
    folder = pipeline_paths(DVC_YAML)["confusion_plots"]
    files = [fill(f, pipeline_paths(DVC_YAML)) for plot in spec["plots"] for entry in plot.values()
             for f in (entry.get("y") or {})]
    stems = [f[len(folder) + 1:].removesuffix(".json") for f in files if f.startswith(folder + "/")]
    keys = {set_key(source, scored, role) for source in SOURCES.values()
            for scored in source.scored for role in scored.roles}   # every set evaluate may score
    assert stems and set(stems) <= keys, stems


def test_a_missing_file_or_name_is_one_clear_error(tmp_path):
    with pytest.raises(PipelineError, match=r"dvc.yaml: not found; run this from the repository root"):
        pipeline_paths(tmp_path / "dvc.yaml")
    (tmp_path / "dvc.yaml").write_text("vars:\n  - params.yaml\n  - model: m.pt\nstages: {}\n")
    paths = pipeline_paths(tmp_path / "dvc.yaml")
    assert paths == {"model": "m.pt"}
    with pytest.raises(PipelineError, match=re.escape(f"{tmp_path / 'dvc.yaml'}: `vars` has no path named "
                                                      "'card'; it names: model")):
        paths["card"]


def test_fill_leaves_params_keys_and_items_as_written():
    assert fill("a ${model} ${fer.path} models/${item}.pt", {"model": "m.pt"}) == "a m.pt ${fer.path} models/${item}.pt"
