"""The code dependencies of every DVC stage, derived from the imports of its script.

A stage's output can change whenever any in-repo Python file its script imports changes, and
only then. This module reads each stage's ``cmd`` in dvc.yaml (``python stages/<x>.py ...``),
follows the script's imports through the repository (every ``import`` and ``from ... import``
anywhere in a file, function-level ones included, with the ``__init__.py`` of each package on
the way), and compares or rewrites the stage's code deps with that closure:

    python tools/code_deps.py           # check: names each missing or superfluous path, exit 1
    python tools/code_deps.py --write   # rewrite the code deps in dvc.yaml (`make deps`)

A package folder whose every module the script imports is written as the folder, which is the
same dependency in fewer lines (DVC parses dvc.yaml and dvc.lock on every command).

A dep counts as code when it lies under a folder that holds the project's Python (``stages/``,
``staged_fer/``), is a package folder or ends in ``.py``; every other dep (data, ``${...}`` paths) is kept as written.
Imports the graph cannot see (``importlib.import_module``, ``__import__``) are refused with
their file and line: registries must import what they list with plain ``import`` statements.
Imports under ``if TYPE_CHECKING:`` never run, so they are not dependencies.
"""
from __future__ import annotations

import argparse
import ast
import io
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

ROOT = Path(__file__).resolve().parents[1]
CODE_DIRS = ("stages", "staged_fer")   # top-level folders of the project's own Python
DYNAMIC_IMPORTS = {("importlib", "import_module"), (None, "__import__"), ("runpy", "run_module"),
                   ("runpy", "run_path")}


class DepsError(Exception):
    """The import graph cannot be derived (a dynamic import, a stage without a script...)."""


@dataclass(frozen=True)
class Module:
    name: str        # dotted name, as imported ("" for a script run as a file)
    path: str        # repo-relative posix path
    is_package: bool


class ImportGraph:
    """In-repo modules and the in-repo files each one imports, resolved like Python does for a
    script run as ``python stages/x.py`` from the repository root (which the scripts put first
    on ``sys.path``)."""

    def __init__(self, root: Path = ROOT):
        self.root = root
        self._edges: dict[str, set[str]] = {}

    # -- resolution

    def _module(self, dotted: str) -> Module | None:
        parts = dotted.split(".")
        base = self.root.joinpath(*parts)
        if (base / "__init__.py").is_file():
            return Module(dotted, self._rel(base / "__init__.py"), True)
        if base.with_suffix(".py").is_file() and parts[-1] != "__init__":
            return Module(dotted, self._rel(base.with_suffix(".py")), False)
        return None

    def _rel(self, path: Path) -> str:
        return path.relative_to(self.root).as_posix()

    def _with_parents(self, dotted: str) -> list[Module]:
        """``a.b.c`` runs a/__init__.py, a/b/__init__.py and a/b/c.py: the in-repo ones of those."""
        parts = dotted.split(".")
        found = []
        for i in range(1, len(parts) + 1):
            m = self._module(".".join(parts[:i]))
            if m is None:
                break   # not in the repository (stdlib, third party) or not a module
            found.append(m)
        return found

    def _package_of(self, rel: str) -> str:
        p = PurePosixPath(rel)
        parts = list(p.parent.parts)
        if p.name != "__init__.py" and not (self.root / p.parent / "__init__.py").is_file():
            return ""       # a script: not part of a package
        return ".".join(parts)

    # -- scanning

    def imports_of(self, rel: str) -> set[str]:
        """The in-repo files that running ``rel`` imports directly (not transitively)."""
        if rel in self._edges:
            return self._edges[rel]
        source = (self.root / rel).read_text()
        tree = ast.parse(source, filename=rel)
        package = self._package_of(rel)
        found: set[str] = set()
        for node in _executed_nodes(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    found.update(m.path for m in self._with_parents(alias.name))
            elif isinstance(node, ast.ImportFrom):
                base = self._absolute(node, package, rel)
                modules = self._with_parents(base) if base else []
                found.update(m.path for m in modules)
                if modules and modules[-1].name == base and modules[-1].is_package:
                    for alias in node.names:
                        names = _star_names(self.root / modules[-1].path) if alias.name == "*" else [alias.name]
                        for name in names:
                            sub = self._module(f"{base}.{name}")
                            if sub is not None:   # `from pkg import sub` imports the submodule
                                found.add(sub.path)
            elif isinstance(node, ast.Call):
                dynamic = _dynamic_import(node)
                if dynamic:
                    raise DepsError(f"{rel}:{node.lineno}: {dynamic}() hides an import from the import "
                                    f"graph that derives the stages' code deps; use a plain import statement")
        found.discard(rel)
        self._edges[rel] = found
        return found

    def _absolute(self, node: ast.ImportFrom, package: str, rel: str) -> str:
        if node.level == 0:
            return node.module or ""
        parts = package.split(".") if package else []
        if node.level > len(parts):
            raise DepsError(f"{rel}:{node.lineno}: relative import beyond the top-level package")
        base = parts[:len(parts) - node.level + 1]
        return ".".join(base + ([node.module] if node.module else []))

    def closure(self, script: str) -> set[str]:
        """``script`` and every in-repo file it imports, transitively."""
        seen, todo = {script}, [script]
        while todo:
            for dep in self.imports_of(todo.pop()):
                if dep not in seen:
                    seen.add(dep)
                    todo.append(dep)
        return seen


def _executed_nodes(tree: ast.AST):
    """Every node of ``tree`` except those under ``if TYPE_CHECKING:`` (which never runs)."""
    todo = [tree]
    while todo:
        node = todo.pop()
        yield node
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            todo.extend(node.orelse)
            continue
        todo.extend(ast.iter_child_nodes(node))


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or \
        (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _dynamic_import(call: ast.Call) -> str | None:
    f = call.func
    if isinstance(f, ast.Name) and (None, f.id) in DYNAMIC_IMPORTS:
        return f.id
    if isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name) and (f.value.id, f.attr) in DYNAMIC_IMPORTS:
        return f"{f.value.id}.{f.attr}"
    return None


def _star_names(init: Path) -> list[str]:
    """``__all__`` of a package, which ``from pkg import *`` imports (submodules included)."""
    for node in ast.parse(init.read_text()).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "__all__" for t in node.targets):
            try:
                return [str(n) for n in ast.literal_eval(node.value)]
            except ValueError:
                return []
    return []


# ----------------------------------------------------------------------------- dvc.yaml

def _yaml():
    from ruamel.yaml import YAML

    y = YAML()   # round-trip: comments and layout survive a rewrite
    y.indent(mapping=2, sequence=4, offset=2)
    y.width = 4096
    y.preserve_quotes = True
    return y


def stage_script(name: str, cmd: str) -> str:
    """The repo-relative script a stage's ``cmd`` runs with python."""
    words = shlex.split(cmd if isinstance(cmd, str) else " ".join(cmd))
    for i, word in enumerate(words[:-1]):
        if PurePosixPath(word).name.startswith("python"):
            if words[i + 1] == "-m" and i + 2 < len(words):
                return words[i + 2].replace(".", "/") + ".py"
            if words[i + 1].endswith(".py"):
                return PurePosixPath(words[i + 1]).as_posix()
    raise DepsError(f"dvc.yaml: stage {name}: cmd does not run a python script: {cmd!r}")


def is_code_dep(dep: str, root: Path = ROOT) -> bool:
    if "${" in dep:
        return False
    return dep.endswith(".py") or PurePosixPath(dep).parts[0] in CODE_DIRS or (root / dep / "__init__.py").is_file()


def python_files(root: Path, dep: str) -> set[str]:
    """The Python files a code dep stands for: itself, or every .py file under the folder."""
    path = root / dep
    if path.is_dir():
        return {p.relative_to(root).as_posix() for p in path.rglob("*.py") if "__pycache__" not in p.parts}
    return {dep}


def folded(root: Path, files: list[str]) -> list[str]:
    """``files`` with each package folder whose every file is among them written as the folder:
    the same dependency, in a fraction of the lines of dvc.yaml and dvc.lock (which DVC parses
    on every `dvc status`). A folder holding anything but Python files (and the __pycache__
    that .dvcignore hides from DVC) stays listed file by file, since DVC would hash the rest too."""
    wanted = set(files)
    out: list[str] = []
    covered: set[str] = set()
    for f in files:
        if f in covered:
            continue
        top = None
        parent = PurePosixPath(f).parent
        while parent != PurePosixPath(".") and (root / parent / "__init__.py").is_file():
            folder = root / parent
            others = [p for p in folder.rglob("*") if p.is_file() and "__pycache__" not in p.parts
                      and p.suffix != ".py"]
            if others or not python_files(root, parent.as_posix()) <= wanted:
                break
            top = parent.as_posix()
            parent = parent.parent
        if top is None:
            out.append(f)
        else:
            out.append(top)
            covered |= python_files(root, top)
    return out


def body(stage: dict) -> dict:
    """What a stage runs and depends on: a `foreach` stage keeps it under `do`."""
    return stage["do"] if "foreach" in stage else stage


def derived_deps(dvc_yaml: Path = ROOT / "dvc.yaml") -> dict[str, list[str]]:
    """Per stage: its script, then the files it imports, sorted."""
    graph = ImportGraph(dvc_yaml.parent)
    stages = _yaml().load(dvc_yaml.read_text())["stages"]
    out = {}
    for name, stage in stages.items():
        script = stage_script(name, body(stage)["cmd"])
        if not (dvc_yaml.parent / script).is_file():
            raise DepsError(f"dvc.yaml: stage {name}: script {script} not found")
        out[name] = [script] + sorted(graph.closure(script) - {script})
    return out


def _dep_path(entry) -> str:
    return next(iter(entry)) if isinstance(entry, dict) else str(entry)


def compare(dvc_yaml: Path = ROOT / "dvc.yaml") -> list[str]:
    """One line per stage and path where dvc.yaml's code deps differ from the import closure."""
    wanted = derived_deps(dvc_yaml)
    stages = _yaml().load(dvc_yaml.read_text())["stages"]
    problems = []
    for name, stage in stages.items():
        listed = set().union(*(python_files(dvc_yaml.parent, _dep_path(d)) for d in body(stage).get("deps", [])
                               if is_code_dep(_dep_path(d), dvc_yaml.parent)))
        for path in sorted(set(wanted[name]) - listed):
            problems.append(f"{name}: missing code dep {path} (its script imports it)")
        for path in sorted(listed - set(wanted[name])):
            problems.append(f"{name}: superfluous code dep {path} (its script does not import it)")
    return problems


def write(dvc_yaml: Path = ROOT / "dvc.yaml") -> bool:
    """Rewrite each stage's code deps as derived; data deps keep their place. True if changed."""
    y = _yaml()
    text = dvc_yaml.read_text()
    doc = y.load(text)
    wanted = derived_deps(dvc_yaml)
    for name, stage in doc["stages"].items():
        stage = body(stage)
        deps = stage.get("deps")
        if deps is None:
            from ruamel.yaml.comments import CommentedSeq
            deps = stage["deps"] = CommentedSeq()
        data = [d for d in deps if not is_code_dep(_dep_path(d), dvc_yaml.parent)]
        # An end-of-line comment belongs to its dep, wherever the dep lands in the new list.
        comments = {_dep_path(d): deps.ca.items[i] for i, d in enumerate(deps) if i in deps.ca.items}
        deps[:] = data + folded(dvc_yaml.parent, wanted[name])
        deps.ca.items.clear()
        for i, d in enumerate(deps):
            if _dep_path(d) in comments:
                deps.ca.items[i] = comments[_dep_path(d)]
    buf = io.StringIO()
    y.dump(doc, buf)
    if buf.getvalue() == text:
        return False
    dvc_yaml.write_text(buf.getvalue())
    return True


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--write", action="store_true", help="rewrite the code deps in dvc.yaml")
    p.add_argument("--dvc-yaml", type=Path, default=ROOT / "dvc.yaml")
    args = p.parse_args(argv)
    try:
        if args.write:
            changed = write(args.dvc_yaml)
            print(f"{args.dvc_yaml}: code deps {'rewritten' if changed else 'already derived'}")
            return 0
        problems = compare(args.dvc_yaml)
    except DepsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for line in problems:
        print(line)
    if problems:
        print("run `make deps` to derive them", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
