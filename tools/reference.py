"""Write docs/reference.md, the reference of the pipeline's stages and params, from dvc.yaml and
params.yaml, so that it cannot disagree with them.

Stages: each one's command (with dvc.yaml's `vars` filled in), the params it reads, its data
deps, the number of its code deps, and its outs, metrics and plots. Params: every key of
params.yaml with its default, the stages that read it (from the stages' `params:` lists) and its
comment in params.yaml, continuation lines included.

    python tools/reference.py           # check: exit 1 when docs/reference.md is not what it writes
    python tools/reference.py --write   # rewrite docs/reference.md (`make docs`)
"""
from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "reference.md"
sys.path.insert(0, str(ROOT))

from staged_fer.pipeline_paths import fill, pipeline_paths  # noqa: E402
from tools.code_deps import body, is_code_dep  # noqa: E402

KEY_LINE = re.compile(r"^(?P<indent> *)(?P<key>[A-Za-z_][\w]*):(?P<rest>.*)$")
COMMENT_LINE = re.compile(r"^ *#(?P<text>.*)$")


@dataclass
class Param:
    key: str            # dotted
    value: object       # the default; a dict for a section written as a block
    block: bool         # a section whose keys follow on their own lines
    comment: str


def _split_comment(rest: str) -> tuple[str, str]:
    """(value text, comment) of what follows `key:`; a `#` inside quotes is not a comment."""
    quote = None
    for i, ch in enumerate(rest):
        if quote:
            quote = None if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (i == 0 or rest[i - 1] in " \t"):
            return rest[:i].strip(), rest[i + 1:].strip()
    return rest.strip(), ""


def read_params(path: Path = ROOT / "params.yaml") -> list[Param]:
    """Every key of ``path`` in file order, with its comment. The values come from a YAML parser;
    the comments from the lines: a comment-only line continues the comment of the key above."""
    values = yaml.safe_load(path.read_text())
    params: list[Param] = []
    stack: list[tuple[int, str]] = []   # (indent, key) of the open sections
    for line in path.read_text().splitlines():
        match = KEY_LINE.match(line)
        if match is None:
            comment = COMMENT_LINE.match(line)
            if comment and params:
                params[-1].comment = f"{params[-1].comment} {comment.group('text').strip()}".strip()
            continue
        indent = len(match.group("indent"))
        while stack and stack[-1][0] >= indent:
            stack.pop()
        dotted = ".".join([k for _, k in stack] + [match.group("key")])
        text, comment = _split_comment(match.group("rest"))
        value = values
        for part in dotted.split("."):
            value = value[part]
        block = isinstance(value, dict) and text == ""
        params.append(Param(dotted, value, block, comment))
        if block:
            stack.append((indent, match.group("key")))
    return params


def _reads(listed: str, key: str) -> bool:
    """Whether a stage that lists ``listed`` under `params:` reads ``key`` or part of it."""
    return listed == key or key.startswith(listed + ".") or listed.startswith(key + ".")


def _code(items) -> str:
    return ", ".join(f"`{i}`" for i in items) or "-"


def entries(stage: dict, kind: str) -> list[str]:
    """The paths a stage lists under ``kind`` (deps, outs, metrics, plots), without their options."""
    return [next(iter(e)) if isinstance(e, dict) else str(e) for e in stage.get(kind, [])]


def _flow(value) -> str:
    return yaml.safe_dump(value, default_flow_style=True, width=10_000).strip().removesuffix("\n...")


def render(dvc_yaml: Path = ROOT / "dvc.yaml", params_yaml: Path = ROOT / "params.yaml") -> str:
    spec = yaml.safe_load(dvc_yaml.read_text())
    names = pipeline_paths(dvc_yaml)
    stages = spec["stages"]
    lines = ["# Reference: the pipeline's stages and params", "",
             "Written by `tools/reference.py` (`make docs`) from `dvc.yaml` and `params.yaml`; a test fails when",
             "this page differs from what the tool writes, so edit those two files, then run `make docs`.",
             "Paths are those of `dvc.yaml`'s `vars`; `${...}` names a params key, read when DVC loads the",
             "pipeline. The code deps of each stage are its script and every module it imports",
             "(`tools/code_deps.py`, `make deps`).", "", "## Stages", ""]
    stage_params: dict[str, list[str]] = {}
    for name, stage in stages.items():
        run = body(stage)
        listed = [str(next(iter(p)) if isinstance(p, dict) else p) for p in run.get("params", [])]
        stage_params[name] = listed
        deps = entries(run, "deps")
        data = [fill(d, names) for d in deps if not is_code_dep(d, dvc_yaml.parent)]
        code = [d for d in deps if is_code_dep(d, dvc_yaml.parent)]
        lines += [f"### {name}", ""]
        if "foreach" in stage:
            lines += [f"One stage per item of `{stage['foreach'].strip('${}')}` (`{name}@<item>`).", ""]
        lines += ["```text", fill(run["cmd"], names), "```", "",
                  "| | |", "|---|---|",
                  f"| params | {_code(listed)} |",
                  f"| data deps | {_code(data)} |",
                  f"| code deps | {len(code)} entries |"]
        for kind in ("outs", "metrics", "plots"):
            if run.get(kind):
                lines.append(f"| {kind} | {_code(fill(e, names) for e in entries(run, kind))} |")
        lines.append("")
    lines += ["## Params", "",
              "| key | default | read by | what it is |", "|---|---|---|---|"]
    for p in read_params(params_yaml):
        readers = [n for n, listed in stage_params.items() if any(_reads(k, p.key) for k in listed)]
        default = "" if p.block else f"`{_flow(p.value)}`"
        key = f"**`{p.key}`**" if p.block else f"`{p.key}`"
        comment = p.comment.replace("|", "\\|")
        lines.append(f"| {key} | {default} | {', '.join(readers) or '-'} | {comment} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--write", action="store_true", help=f"rewrite {PAGE.relative_to(ROOT)}")
    args = p.parse_args(argv)
    page = render()
    if args.write:
        PAGE.write_text(page)
        print(f"{PAGE.relative_to(ROOT)} written")
        return 0
    if not PAGE.is_file() or PAGE.read_text() != page:
        print(f"{PAGE.relative_to(ROOT)} differs from what tools/reference.py writes: run `make docs`",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
