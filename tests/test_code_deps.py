"""Each stage's code deps in dvc.yaml are exactly the in-repo files its script imports.

`tools/code_deps.py` derives them from the import graph (`make deps` rewrites dvc.yaml); these
tests fail, naming the stage and the path, when dvc.yaml and the imports disagree, and check
the graph itself on a small made-up repository.
"""
from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from tests.dvc_project import ROOT
from tests.params_baseline import baseline_params
from tools.code_deps import DepsError, ImportGraph, compare, derived_deps, stage_script, write


def test_dvc_yaml_code_deps_are_the_import_closure_of_each_script():
    problems = compare(ROOT / "dvc.yaml")
    assert problems == [], "dvc.yaml's code deps differ from the imports (run `make deps`):\n" + "\n".join(problems)


def test_editing_any_library_file_flags_exactly_the_stages_that_import_it(tmp_path):
    """What DVC itself makes of dvc.yaml (its own path resolution, directories included): for
    every Python file of the project, the stages whose deps cover it are the stages whose
    script imports it, so an edit leaves no importer "up to date" and reruns no other stage.

    DVC reads dvc.yaml in a scratch repository with the committed params.yaml and every optional
    stage switched on, so neither the working params nor `export.onnx: []` hide a stage."""
    import yaml
    from dvc.repo import Repo

    importers: dict[str, set[str]] = {}
    for stage, files in derived_deps(ROOT / "dvc.yaml").items():
        for f in files:
            importers.setdefault(f, set()).add(stage)
    params = baseline_params()
    params["export"]["onnx"] = ["phase1", "phase2"]
    (tmp_path / "dvc.yaml").write_text((ROOT / "dvc.yaml").read_text())
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    Repo.init(str(tmp_path), no_scm=True).close()
    deps: dict[str, list[Path]] = {}
    with Repo(str(tmp_path)) as repo:
        for s in repo.index.stages:   # a foreach stage's instances (export@phase1, ...) as one
            deps.setdefault(s.name.split("@")[0], []).extend(Path(d.fs_path) for d in s.deps)
    assert set(deps) == {s for names in importers.values() for s in names}
    wrong = []
    for path in sorted(p for d in ("staged_fer", "stages") for p in (ROOT / d).rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        there = tmp_path / rel
        covering = {name for name, paths in deps.items() if any(there == d or d in there.parents for d in paths)}
        if covering != importers.get(rel, set()):
            wrong.append(f"{rel}: flags {sorted(covering)}, imported by {sorted(importers.get(rel, set()))}")
    assert wrong == []


def make_repo(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(textwrap.dedent(text))
    return root


TOY = {
    "pkg/__init__.py": "",
    "pkg/a.py": "from . import b\nimport json\n",
    "pkg/b.py": "def f():\n    from .sub.deep import x  # function-level: runs when f is called\n",
    "pkg/sub/__init__.py": "from .. import c\n",
    "pkg/sub/deep.py": "x = 1\n",
    "pkg/c.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from . import unused\nelse:\n    import pkg.d\n",
    "pkg/d.py": "",
    "pkg/unused.py": "",
    "pkg/lonely.py": "",
    "stages/run.py": "import sys\nfrom pkg import a\n",
}


def test_closure_follows_function_level_relative_and_package_imports(tmp_path):
    graph = ImportGraph(make_repo(tmp_path, TOY))
    assert graph.closure("stages/run.py") == {
        "stages/run.py", "pkg/__init__.py", "pkg/a.py", "pkg/b.py", "pkg/sub/__init__.py",
        "pkg/sub/deep.py", "pkg/c.py", "pkg/d.py"}   # not unused.py (TYPE_CHECKING) nor lonely.py


@pytest.mark.parametrize("source,line,what", [
    ("import importlib\n\nimportlib.import_module('pkg.lonely')\n", 3, r"importlib.import_module\(\)"),
    ("import importlib as il\nil.import_module('pkg.lonely')\n", 2, r"il.import_module\(\)"),
    ("from importlib import import_module\n", 1, "from importlib import import_module"),
    ("from importlib import import_module as load\n", 1, "from importlib import import_module"),
    ("from runpy import run_path\n", 1, "from runpy import run_path"),
    ("x = __import__('pkg.lonely')\n", 1, r"__import__\(\)"),
])
def test_a_dynamic_import_is_refused_with_its_line(tmp_path, source, line, what):
    graph = ImportGraph(make_repo(tmp_path, {**TOY, "pkg/d.py": source}))
    with pytest.raises(DepsError, match=rf"pkg/d.py:{line}: {what} hides an import"):
        graph.closure("stages/run.py")


def test_python_dash_m_runs_the_module_or_the_package_main(tmp_path):
    root = make_repo(tmp_path, {**TOY, "pkg/tool/__init__.py": "", "pkg/tool/__main__.py": "from .. import d\n"})
    assert stage_script("s", "python -m pkg.a --x 1", root) == "pkg/a.py"
    assert stage_script("s", "python -m pkg.tool", root) == "pkg/tool/__main__.py"
    with pytest.raises(DepsError, match=r"stage s: `-m pkg.nothing` is neither pkg/nothing.py nor "
                                        r"pkg/nothing/__main__.py"):
        stage_script("s", "python -m pkg.nothing", root)


DVC_YAML = """\
stages:
  run:
    cmd: python stages/run.py --out out.txt
    deps:
      - data.csv                # the input
      - stages/run.py
      - pkg/lonely.py
    outs:
      - out.txt
"""


def test_compare_names_each_missing_and_superfluous_path_and_write_fixes_it(tmp_path):
    root = make_repo(tmp_path, {**TOY, "dvc.yaml": DVC_YAML})
    problems = compare(root / "dvc.yaml")
    assert "run: superfluous code dep pkg/lonely.py (its script does not import it)" in problems
    assert "run: missing code dep pkg/sub/deep.py (its script imports it)" in problems
    assert len(problems) == 8
    assert write(root / "dvc.yaml") is True
    assert compare(root / "dvc.yaml") == []
    text = (root / "dvc.yaml").read_text()
    # The data dep keeps its place and comment; the code deps follow, one file a line.
    assert text == DVC_YAML.replace("      - pkg/lonely.py\n", "".join(
        f"      - {f}\n" for f in ["pkg/__init__.py", "pkg/a.py", "pkg/b.py", "pkg/c.py", "pkg/d.py",
                               "pkg/sub/__init__.py", "pkg/sub/deep.py"]))
    assert write(root / "dvc.yaml") is False   # derived already: the file is left as it is


def test_a_folder_listed_as_a_code_dep_is_named(tmp_path):
    root = make_repo(tmp_path, {**TOY, "dvc.yaml": DVC_YAML.replace("pkg/lonely.py", "pkg/sub")})
    assert "run: superfluous code dep pkg/sub (its script does not import it)" in compare(root / "dvc.yaml")


def test_a_data_dep_after_the_code_deps_is_refused(tmp_path):
    root = make_repo(tmp_path, {**TOY, "dvc.yaml": DVC_YAML.replace("      - pkg/lonely.py\n",
                                                                    "      - pkg/lonely.py\n      - late.csv\n")})
    with pytest.raises(DepsError, match="stage run: list its data deps before its code deps"):
        write(root / "dvc.yaml")
