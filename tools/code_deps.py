"""The code dependencies of every DVC stage, derived from the imports of its script.

A stage's output can change whenever any in-repo Python file its script imports changes, and
only then. This module reads each stage's ``cmd`` in dvc.yaml (``python stages/<x>.py ...``),
follows the script's imports through the repository (every ``import`` and ``from ... import``
anywhere in a file, function-level ones included, with the ``__init__.py`` of each package on
the way), and compares or rewrites the stage's code deps, one file a line, with that closure:

    python tools/code_deps.py           # check: names each missing or superfluous path, exit 1
    python tools/code_deps.py --write   # rewrite the code deps in dvc.yaml (`make deps`)

A stage's ``cmd`` runs ``python path/to/script.py`` or ``python -m pkg.module`` (``-m pkg``
runs ``pkg/__main__.py``). A dep counts as code when it lies under a folder that holds the
project's Python (``stages/``, ``staged_fer/``), is a package folder or ends in ``.py``; every
other dep (data, ``${...}`` paths) is kept as written, before the code deps. Imports the graph
cannot see (``importlib.import_module``, ``__import__``, ``runpy``'s functions, however
imported or renamed) are refused with their file and line: registries must import what they
list with plain ``import`` statements. Imports under ``if TYPE_CHECKING:`` never run, so they
are not dependencies.
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
# Functions that import a module named at run time, which the graph cannot follow.
DYNAMIC_IMPORTS = {"importlib": {"import_module"}, "runpy": {"run_module", "run_path"}}


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
            dynamic = _dynamic_import(node)
            if dynamic:
                raise DepsError(f"{rel}:{node.lineno}: {dynamic} hides an import from the import graph that "
                                f"derives the stages' code deps; use a plain import statement")
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


def _dynamic_import(node: ast.AST) -> str | None:
    """What in ``node`` imports a module named at run time: ``from importlib import import_module``
    (the import itself, whatever the name is bound to), a call of ``importlib.import_module``
    (``import importlib as il`` then ``il.import_module``: any attribute of that name), or a
    call of ``__import__``."""
    if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module in DYNAMIC_IMPORTS:
        hidden = [a.name for a in node.names if a.name in DYNAMIC_IMPORTS[node.module] or a.name == "*"]
        if hidden:
            return f"from {node.module} import {hidden[0]}"
    if isinstance(node, ast.Call):
        f = node.func
        if isinstance(f, ast.Name) and f.id == "__import__":
            return "__import__()"
        if isinstance(f, ast.Attribute) and any(f.attr in names for names in DYNAMIC_IMPORTS.values()):
            return f"{ast.unparse(f)}()"
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


def stage_script(name: str, cmd: str, root: Path = ROOT) -> str:
    """The repo-relative file a stage's ``cmd`` runs with python: the script, or for ``-m pkg.mod``
    ``pkg/mod.py`` or, for a package, ``pkg/mod/__main__.py``."""
    words = shlex.split(cmd if isinstance(cmd, str) else " ".join(cmd))
    for i, word in enumerate(words[:-1]):
        if PurePosixPath(word).name.startswith("python"):
            if words[i + 1] == "-m" and i + 2 < len(words):
                base = words[i + 2].replace(".", "/")
                for candidate in (f"{base}/__main__.py", f"{base}.py"):
                    if (root / candidate).is_file():
                        return candidate
                raise DepsError(f"dvc.yaml: stage {name}: `-m {words[i + 2]}` is neither {base}.py nor "
                                f"{base}/__main__.py")
            if words[i + 1].endswith(".py"):
                return PurePosixPath(words[i + 1]).as_posix()
    raise DepsError(f"dvc.yaml: stage {name}: cmd does not run a python script: {cmd!r}")


def is_code_dep(dep: str, root: Path = ROOT) -> bool:
    if "${" in dep:
        return False
    return dep.endswith(".py") or PurePosixPath(dep).parts[0] in CODE_DIRS or (root / dep / "__init__.py").is_file()


def body(stage: dict) -> dict:
    """What a stage runs and depends on: a `foreach` stage keeps it under `do`."""
    return stage["do"] if "foreach" in stage else stage


def derived_deps(dvc_yaml: Path = ROOT / "dvc.yaml") -> dict[str, list[str]]:
    """Per stage: its script, then the files it imports, sorted."""
    graph = ImportGraph(dvc_yaml.parent)
    stages = _yaml().load(dvc_yaml.read_text())["stages"]
    out = {}
    for name, stage in stages.items():
        script = stage_script(name, body(stage)["cmd"], dvc_yaml.parent)
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
        listed = [_dep_path(d) for d in body(stage).get("deps", [])]
        code = {d for d in listed if is_code_dep(d, dvc_yaml.parent)}
        for path in sorted(set(wanted[name]) - code):
            problems.append(f"{name}: missing code dep {path} (its script imports it)")
        for path in sorted(code - set(wanted[name])):
            problems.append(f"{name}: superfluous code dep {path} (its script does not import it)")
    return problems


def write(dvc_yaml: Path = ROOT / "dvc.yaml") -> bool:
    """Rewrite each stage's code deps as derived, after its data deps (which keep their order
    and comments). True if the file changed."""
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
        if list(deps[:len(data)]) != data:
            raise DepsError(f"dvc.yaml: stage {name}: list its data deps before its code deps")
        del deps[len(data):]   # the data deps' end-of-line comments stay with them
        deps.extend(wanted[name])
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
