"""What README.md and docs/ name exists: every `make` target, every `-S key=value` and backticked
params key, every repository path, every relative link (and its heading); and every shell block
either runs here or says why not.

Every fenced block names its language (```text for diagrams and listings). A shell block
(```bash) runs, as one script, in a copy of the repository unless the line before it is a
NOT_RUN marker saying what it needs that a test machine does not have:

    <!-- not run by the docs test: needs real data -->

(or GPUs, a DVC remote, minutes of CPU, a finished run; several joined by "and"). Those that
run are the cheap ones (`make deps`, `dvc exp show ...`).
"""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml

from staged_fer.data.splits import PARTS
from staged_fer.pipeline_paths import fill, pipeline_paths
from tests.dvc_project import BIN, ROOT, DvcProject
from tools.reference import entries

DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```(?P<lang>\w*)\n(?P<body>.*?)^```$", re.M | re.S)
SHELL = "bash"
SPAN = re.compile(r"`([^`\n]+)`")
# The line before a shell block that the docs test does not run, and why.
NEEDS = r"(real data|GPUs|a DVC remote|minutes of CPU|a finished run)"
NOT_RUN = re.compile(rf"^<!-- not run by the docs test: needs {NEEDS}( and {NEEDS})* -->$")
LINK = re.compile(r"\[[^\]\n]*\]\(([^)\s]+)\)")
PATHLIKE = re.compile(r"^\.{0,2}/?[\w.@-]+(/[\w.@-]*)+$|^[\w.-]+\.(py|md|yaml|yml|lock|json|csv|sh|txt|toml|npz|pt|onnx)$")


def docs() -> list[tuple[str, str]]:
    return [(p.relative_to(ROOT).as_posix(), p.read_text()) for p in DOCS]


def prose(text: str) -> str:
    """``text`` without its fenced blocks."""
    return FENCE.sub("", text)


def shell_blocks(text: str) -> list[tuple[int, str, str]]:
    """(line number, the line before it, body) of each shell block."""
    out = []
    for m in FENCE.finditer(text):
        if m.group("lang") == SHELL:
            line = text.count("\n", 0, m.start()) + 1
            before = text[:m.start()].rstrip("\n").rpartition("\n")[2]
            out.append((line, before.strip(), m.group("body")))
    return out


def make_targets() -> set[str]:
    text = (ROOT / "Makefile").read_text()
    return {m.group(1) for m in re.finditer(r"^([\w-]+):", text, re.M)}


def params_keys() -> set[str]:
    keys = set()

    def walk(node, prefix):
        for key, value in node.items():
            dotted = f"{prefix}{key}"
            keys.add(dotted)
            if isinstance(value, dict):
                walk(value, dotted + ".")
    walk(yaml.safe_load((ROOT / "params.yaml").read_text()), "")
    return keys


def generated_paths() -> set[str]:
    """What the pipeline writes (dvc.yaml's outs, metrics and plots, `vars` filled in; the folders
    .gitignore names from the root, such as models/ and .resume/) and the raw data a person
    places (params.yaml's raw-data paths): named in the docs, not in Git."""
    spec = yaml.safe_load((ROOT / "dvc.yaml").read_text())
    names = pipeline_paths(ROOT / "dvc.yaml")
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    paths = {params["fer"]["path"], params["fer"]["ferplus_path"], params["target"]["root"]}
    for line in (ROOT / ".gitignore").read_text().splitlines():
        if re.fullmatch(r"/[\w.-]+/", line):
            paths.add(line.strip("/"))
    for stage in spec["stages"].values():
        stage = stage.get("do", stage)
        for kind in ("outs", "metrics", "plots"):
            paths.update(fill(path, names) for path in entries(stage, kind))
    return paths


def named(pattern: re.Pattern, group: int = 1) -> list[tuple[str, str]]:
    """(doc, what) for each match of ``pattern`` in the docs, fenced blocks included."""
    return [(doc, m.group(group)) for doc, text in docs() for m in pattern.finditer(text)]


def test_every_make_target_named_exists():
    targets = make_targets()
    missing = [f"{doc}: make {t}" for doc, t in named(re.compile(r"(?:^|[`$(] ?)make ([a-z][\w-]*)", re.M))
               if t not in targets]
    assert missing == []


def test_every_dash_s_key_names_a_params_key():
    keys = params_keys()
    missing = [f"{doc}: -S {k}" for doc, k in named(re.compile(r"-S ['\"]?([\w.]+)=")) if k not in keys]
    assert missing == []


def test_every_backticked_params_key_exists():
    keys, tops = params_keys(), {k for k in params_keys() if "." not in k}
    missing = []
    for doc, text in docs():
        for span in SPAN.findall(prose(text)):
            key = span.split(":")[0].strip() if re.match(r"^[\w.]+: ", span) else span
            head = key.split(".")[0]
            if (re.fullmatch(r"[a-z_]\w*(\.\w+)+", key) and head in tops and not PATHLIKE.match(key)
                    and key not in keys and key not in PARTS):
                missing.append(f"{doc}: `{span}`")
    assert missing == []


def test_every_repository_path_named_exists():
    generated = generated_paths()

    def known(path: str) -> bool:
        """In the repository, or in the library (the docs name its modules from staged_fer/), or
        one of the paths above or inside one."""
        path = path.rstrip("/")
        if (ROOT / path).exists() or (ROOT / "staged_fer" / path).exists():
            return True
        return any(path == g or path.startswith(g + "/") or g.startswith(path + "/") for g in generated)

    missing = []
    for doc, text in docs():
        for span in SPAN.findall(prose(text)):
            # A path has a slash; `<...>`, `*`, `{...}`, `$` and `..` make a pattern, not a path.
            if "/" in span and not span.startswith("/") and PATHLIKE.match(span) \
                    and not re.search(r"[<>*{}$]|://|\.\.", span) \
                    and not known(span):
                missing.append(f"{doc}: `{span}`")
    assert missing == []


def anchor(heading: str) -> str:
    """The fragment GitHub gives a heading: lower case, punctuation dropped, spaces as hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_every_relative_link_reaches_a_file_and_its_heading():
    broken = []
    for doc, text in docs():
        for target in LINK.findall(prose(text)):
            if re.match(r"^[a-z]+:", target):   # https:, mailto:
                continue
            path, _, fragment = target.partition("#")
            file = (ROOT / doc).parent / path if path else ROOT / doc
            if not file.exists():
                broken.append(f"{doc}: ({target}): no such file")
            elif fragment and fragment not in {anchor(h) for h in
                                               re.findall(r"^#+ (.+)$", prose(file.read_text()), re.M)}:
                broken.append(f"{doc}: ({target}): no such heading in {file.relative_to(ROOT)}")
    assert broken == []


def test_every_fenced_block_names_its_language():
    bare = [f"{doc}:{text.count(chr(10), 0, m.start()) + 1}" for doc, text in docs()
            for m in FENCE.finditer(text) if not m.group("lang")]
    assert bare == [], "name each block's language (```bash, ```text, ...)"


def test_every_marker_before_a_shell_block_is_a_known_one():
    unknown = [f"{doc}:{line}: {before}" for doc, text in docs() for line, before, _ in shell_blocks(text)
               if before.startswith("<!--") and not NOT_RUN.match(before)]
    assert unknown == []


RUNNABLE = [(doc, line, body) for doc, text in docs() for line, before, body in shell_blocks(text)
            if not before.startswith("<!--")]


@pytest.fixture(scope="module")
def project(module_tmp):
    """A copy of the repository whose .venv is this one, so `make` finds it set up."""
    project = DvcProject.copy_of_repo(module_tmp("docs") / "repo", {})
    (project.path / ".venv").symlink_to(BIN.parent)
    return project


@pytest.mark.parametrize("doc,line,body", RUNNABLE, ids=[f"{d}:{n}" for d, n, _ in RUNNABLE])
def test_shell_block_runs(project, doc, line, body):
    # `make` as in a set-up checkout: the copy's requirements.txt may be newer than the stamp of
    # the environment it links, which must not be rebuilt.
    script = "\n".join(["make() { command make -o .venv/.installed \"$@\"; }",
                        *(l.removeprefix("$ ") for l in body.splitlines() if not l.startswith("#"))])
    proc = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=project.path, env=project.env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"{doc}:{line}\n{script}\n--- stdout ---\n{proc.stdout[-2000:]}\n--- stderr ---\n{proc.stderr[-2000:]}"
