"""The metrics and plots docs/results.md lists, against those a run wrote.

docs/results.md keeps three tables, each the first table under its heading:

    ## Scored sets   | set | ... |                 each scored set's key (first column)
    ## Metrics       | file | key | ... |          each metrics file and key; an empty file cell
                                                   repeats the file above
    ## Plots         | plot | files | ... |        each plot as `dvc plots show` names it, and
                                                   the files it draws

`<set>` in a cell stands for every key of the scored-sets table. A row that says "only when"
names what a run may leave out (and so does every name a `<set>` of such a set fills in); every
other name must be there, as in the demo's runs, which train both phases.

What a run wrote is read from its folder: the keys of every metrics file dvc.yaml declares, and
every file under the folders dvc.yaml draws plots from; a plot is written when every file it
draws is. :func:`differences` lists what one side has and the other lacks.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from staged_fer.pipeline_paths import fill, pipeline_paths
from tools.reference import entries

SETS, METRICS, PLOTS = "Scored sets", "Metrics", "Plots"
SET = "<set>"
OPTIONAL = re.compile(r"\bonly when\b", re.I)
CODE = re.compile(r"`([^`]+)`")


@dataclass(frozen=True)
class Names:
    """Metrics as `file: key`, plots by name, and the plot files: each name maps to whether a
    run may leave it out (always False for what a run wrote)."""
    metrics: dict[str, bool]
    plots: dict[str, bool]
    plot_files: dict[str, bool]


def _rows(text: str, heading: str, doc: str) -> list[list[str]]:
    """The cells of each body row of the first table under ``## heading``."""
    match = re.search(rf"^## {re.escape(heading)}\n(.*?)(?=^## |\Z)", text, re.M | re.S)
    if match is None:
        raise ValueError(f"{doc}: no `## {heading}` section")
    lines = [line.strip() for line in match.group(1).splitlines()]
    start = next((i for i, line in enumerate(lines) if line.startswith("|")), None)
    if start is None:
        raise ValueError(f"{doc}: no table under `## {heading}`")
    table = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        table.append([cell.strip() for cell in re.split(r"(?<!\\)\|", line.strip("|"))])
    body = table[2:]   # after the header and the |---| line
    if not body:
        raise ValueError(f"{doc}: the table under `## {heading}` has no rows")
    return body


def _first_code(cell: str, doc: str, heading: str) -> str:
    found = CODE.findall(cell)
    if not found:
        raise ValueError(f"{doc}: `## {heading}`: a row names nothing in backticks: {cell!r}")
    return found[0]


def _expand(name: str, sets: dict[str, bool], optional: bool) -> dict[str, bool]:
    """``name`` with `<set>` filled in by each scored set."""
    if SET not in name:
        return {name: optional}
    return {name.replace(SET, key): optional or set_optional for key, set_optional in sets.items()}


def documented(text: str, doc: str = "docs/results.md") -> Names:
    sets = {_first_code(row[0], doc, SETS): bool(OPTIONAL.search(" ".join(row)))
            for row in _rows(text, SETS, doc)}
    metrics: dict[str, bool] = {}
    file = ""
    for row in _rows(text, METRICS, doc):
        file = CODE.findall(row[0])[0] if CODE.findall(row[0]) else file
        if not file:
            raise ValueError(f"{doc}: `## {METRICS}`: the first row names no file")
        key = _first_code(row[1], doc, METRICS)
        metrics.update(_expand(f"{file}: {key}", sets, bool(OPTIONAL.search(" ".join(row)))))
    plots: dict[str, bool] = {}
    plot_files: dict[str, bool] = {}
    for row in _rows(text, PLOTS, doc):
        optional = bool(OPTIONAL.search(" ".join(row)))
        plots.update(_expand(_first_code(row[0], doc, PLOTS), sets, optional))
        for file in CODE.findall(row[1]):
            plot_files.update(_expand(file, sets, optional))
    return Names(metrics, plots, plot_files)


def _flat(node: dict, prefix: str = "") -> list[str]:
    keys = []
    for key, value in node.items():
        keys += _flat(value, f"{prefix}{key}.") if isinstance(value, dict) else [f"{prefix}{key}"]
    return keys


def declared(dvc_yaml: Path) -> tuple[list[str], list[str], dict[str, list[str]]]:
    """From dvc.yaml, `vars` filled in: the metrics files, the stages' plot paths, and each
    top-level plot with the files it draws."""
    spec = yaml.safe_load(dvc_yaml.read_text())
    names = pipeline_paths(dvc_yaml)
    stages = [s for s in spec["stages"].values() if "foreach" not in s]   # optional stages: none by default
    metrics = [fill(m, names) for s in stages for m in entries(s, "metrics")]
    stage_plots = [fill(p, names) for s in stages for p in entries(s, "plots")]
    top = {}
    for entry in spec.get("plots", []):
        plot_id, definition = next(iter(entry.items())) if isinstance(entry, dict) else (entry, None)
        y = (definition or {}).get("y")
        files = list(y) if isinstance(y, dict) else [plot_id]
        top[plot_id] = [fill(f, names) for f in files]
    return metrics, stage_plots, top


def written(run: Path, dvc_yaml: Path) -> Names:
    """The metrics keys and plots a run wrote into folder ``run``, by ``dvc_yaml``'s declarations."""
    metrics_files, stage_plots, top = declared(dvc_yaml)
    metrics = {}
    for file in metrics_files:
        if (run / file).is_file():
            metrics.update({f"{file}: {key}": False for key in _flat(json.loads((run / file).read_text()))})
    folders = {*stage_plots, *(str(Path(f).parent) for files in top.values() for f in files)}
    plot_files = {p.relative_to(run).as_posix(): False for folder in folders if (run / folder).is_dir()
                  for p in sorted((run / folder).rglob("*")) if p.is_file()}
    plots = {f: False for f in plot_files if any(f.startswith(s.rstrip("/") + "/") for s in stage_plots)}
    plots.update({plot_id: False for plot_id, files in top.items() if all(f in plot_files for f in files)})
    return Names(metrics, plots, plot_files)


def differences(docs: Names, run: Names, doc: str = "docs/results.md") -> list[str]:
    """One line per name listed in ``doc`` that the run did not write (unless "only when"), and
    per name the run wrote that ``doc`` does not list."""
    out = []
    for kind in ("metrics", "plots", "plot_files"):
        listed, wrote = getattr(docs, kind), getattr(run, kind)
        label = kind.replace("_", " ")
        out += [f"{label}: listed in {doc}, not written by the run: {name}"
                for name, optional in listed.items() if not optional and name not in wrote]
        out += [f"{label}: written by the run, not listed in {doc}: {name}" for name in wrote if name not in listed]
    return out
