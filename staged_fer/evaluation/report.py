"""The grid's comparison report: every experiment next to the paper's numbers, with intervals
and McNemar tests between experiments scored on the same split; with several seeds per cell,
each cell's mean and spread over seeds and, per paper comparison, in how many seeds it held
and McNemar's test on the predictions of all seeds pooled.

    python -m staged_fer.evaluation.report --out reports/grid [--exp-show FILE] [--pair A B ...] [--split KEY]

Reads `dvc exp show --json` (run here unless --exp-show names a saved copy) and, for the
McNemar tests, each experiment's predictions CSV from the DVC cache (`dvc.api.read` at the
experiment's commit); where evaluate wrote both, dvc.yaml's `vars` say (`eval_metrics`,
`eval_reports`). Writes <out>/report.md and <out>/table.png. Run it from the repository root.

Reading the runs is staged_fer/evaluation/experiments.py; this module is the one document made
from them, its tables, paper lookups and comparisons kept together so that each table's
columns and the text that explains them stay side by side.
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path, PurePosixPath
from typing import Callable, Iterable, Sequence

import numpy as np

from ..errors import PipelineError
from ..io import save_figure, write_text
from ..models import MODEL_NAMES, MODELS, PAPER_MODELS
from ..models.entry import PaperResult
from ..pipeline_paths import DVC_YAML, pipeline_paths
from .experiments import Experiment, dvc_reader, exp_show_json, lookup, paired_predictions, paired_test, parse_exp_show
from .grid import RECIPES, Recipe
from .scoring import predictions_file
from .stats import McNemar, mcnemar

# Ng et al. (ICMI 2015, Figure 3) report EmotiW val / test accuracy per network and recipe: each
# network's numbers are in its registry entry (ModelEntry.paper). Direct fine-tuning is reported
# for one unnamed model, on the test set only.
PAPER_DIRECT_TEST = 37.8
CHALLENGE_BASELINE = (35.96, 39.13)
BEYOND_PAPER = "beyond the paper"


def _pct(x) -> str:
    return "-" if x is None else f"{100 * x:.1f}"


def _interval(block: dict | None) -> str:
    if not block:
        return "-"
    # *: the run picked its kept epoch on this very set (select: val), so the number is optimistic.
    mark = "*" if block.get("selected_here") else ""
    return f"{_pct(block['accuracy'])}{mark} [{_pct(block['accuracy_ci95_low'])}, {_pct(block['accuracy_ci95_high'])}]"


def _paper_result(model: str | None, recipe: Recipe | None) -> PaperResult | None:
    """What the paper reports for ``model`` on ``recipe`` (the registry's entry says); None for a
    model or recipe it does not report."""
    return MODELS[model].paper_result(recipe.name) if model in MODELS and recipe else None


def _paper(model: str | None, recipe: Recipe | None) -> str:
    if model in MODELS and model not in PAPER_MODELS:
        return BEYOND_PAPER
    if recipe is None:
        return "-"
    if recipe.name == "imagenet-to-target":
        return f"- / {PAPER_DIRECT_TEST} (model not stated)"
    row = _paper_result(model, recipe)
    return f"{row.val} / {row.test} ({row.submission})" if row else "not reported"


def _order(e: Experiment) -> tuple:
    model = MODEL_NAMES.index(e.model) if e.model in MODEL_NAMES else len(MODEL_NAMES)
    recipe = RECIPES.index(e.recipe) if e.recipe in RECIPES else len(RECIPES)
    return model, recipe, e.name


TABLE_HEADER = ["experiment", "model", "recipe", "fine-tuning", "Target val % [95% CI]",
                "phase-1 on Target val %", "FER PublicTest %", "FER PrivateTest %", "Target val macro-F1",
                "Target val cost-sens. %", "paper val / test %", "data"]


def table_rows(experiments: Iterable[Experiment]) -> list[list[str]]:
    rows = []
    for e in sorted((e for e in experiments if e.metrics), key=_order):
        m = e.metrics
        rows.append([
            e.name, MODELS[e.model].title if e.model in MODELS else str(e.model),
            e.recipe.paper if e.recipe else "other", e.recipe.fine_tuning if e.recipe else "-",
            _interval(m.get("target_val")),
            # With no phase 1 the "phase-1 model" is ImageNet's with an untrained head: no number.
            "-" if e.recipe and e.recipe.phase1 == "none" else _interval(m.get("target_val_phase1")),
            _interval(m.get("fer_public_test")), _interval(m.get("fer_private_test")),
            "-" if lookup(m, "target_val", "macro_f1") is None else f"{m['target_val']['macro_f1']:.3f}",
            _pct(lookup(m, "target_val", "cost_accuracy")), _paper(e.model, e.recipe),
            "synthetic" if m.get("synthetic") else "real",
        ])
    return rows


def paper_comparisons() -> list[tuple[tuple[str, str], tuple[str, str]]]:
    """The paper's comparisons as (model, recipe) cells A and B: single vs double fine-tuning
    (FER28 vs FER28->EmotiW, FER32 vs FER32->EmotiW) per model, and each pair of the paper's
    networks (AlexNet vs VGG-CNN-M) per recipe."""
    pairs = [((model, single), (model, double)) for model in PAPER_MODELS
             for single, double in (("fer28", "fer28-to-target"), ("fer32", "fer32-to-target"))]
    return pairs + [((a, s.name), (b, s.name)) for a, b in combinations(PAPER_MODELS, 2) for s in RECIPES]


def default_pairs(experiments: Sequence[Experiment]) -> list[tuple[str, str]]:
    """The paper's comparisons among the finished experiments, each between runs of one seed."""
    by_key = {(e.model, e.recipe.name, e.seed): e.name for e in experiments if e.metrics and e.recipe}
    seeds = sorted({k[2] for k in by_key}, key=str)
    return [(by_key[(*a, seed)], by_key[(*b, seed)]) for a, b in paper_comparisons() for seed in seeds
            if (*a, seed) in by_key and (*b, seed) in by_key]


@dataclass(frozen=True)
class Cell:
    """The runs of one model and recipe that differ in their seed only (params but `seed` agree)."""
    model: str | None
    recipe: Recipe | None
    runs: dict                         # seed -> Experiment, the first listed of each seed


def cells(experiments: Iterable[Experiment], split: str) -> list[Cell]:
    """The finished experiments (commits left out) grouped into cells, in the table's order."""
    groups: dict[str, Cell] = {}
    for e in sorted(experiments, key=_order):
        if e.commit or lookup(e.metrics, split, "accuracy") is None:
            continue
        key = json.dumps({k: v for k, v in e.params.items() if k != "seed"}, sort_keys=True)
        groups.setdefault(key, Cell(e.model, e.recipe, {})).runs.setdefault(e.seed, e)
    return list(groups.values())


def _spread(values: Sequence[float]) -> str:
    """Mean ± sample standard deviation [min, max] in %; the mean alone for one value."""
    if not values:
        return "-"
    v = 100 * np.asarray(values, dtype=float)
    if len(v) == 1:
        return f"{v[0]:.1f}"
    return f"{v.mean():.1f} ± {v.std(ddof=1):.1f} [{v.min():.1f}, {v.max():.1f}]"


CELL_HEADER = ["model", "recipe", "fine-tuning", "seeds", "Target val % mean ± sd [min, max]",
               "phase-1 on Target val % mean ± sd [min, max]", "paper val / test %", "data"]


def cell_rows(cs: Sequence[Cell]) -> list[list[str]]:
    rows = []
    for c in cs:
        runs = list(c.runs.values())
        phase1 = [] if c.recipe and c.recipe.phase1 == "none" else [
            lookup(e.metrics, "target_val_phase1", "accuracy") for e in runs]
        rows.append([MODELS[c.model].title if c.model in MODELS else str(c.model),
                     c.recipe.paper if c.recipe else "other", c.recipe.fine_tuning if c.recipe else "-",
                     ", ".join(str(seed) for seed in c.runs),
                     _spread([lookup(e.metrics, "target_val", "accuracy") for e in runs]),
                     _spread([x for x in phase1 if x is not None]), _paper(c.model, c.recipe),
                     "synthetic" if any(e.metrics.get("synthetic") for e in runs) else "real"])
    return rows


@dataclass(frozen=True)
class SeedComparison:
    a: Cell
    b: Cell
    seeds: list                        # the seeds both cells ran
    paper_sign: int | None             # +1: the paper has B above A, -1 below; None: not both reported
    b_better: int                      # seeds in which B scored higher than A
    held: int | None                   # seeds in which the difference had the paper's sign
    pooled: McNemar                    # on the predictions of every seed, pooled


def _paper_val(model: str | None, recipe: Recipe | None) -> float | None:
    row = _paper_result(model, recipe)
    return row.val if row else None


def seed_comparisons(cs: Sequence[Cell], split: str, predictions: str,
                     read: Callable[[str, str], str]) -> list[SeedComparison]:
    """The paper's comparisons between cells that share at least two seeds; ``predictions``:
    the predictions CSV of ``split`` that McNemar's test pairs."""
    by_key = {}
    for c in cs:
        if c.recipe:
            by_key.setdefault((c.model, c.recipe.name), c)
    out = []
    for key_a, key_b in paper_comparisons():
        a, b = by_key.get(key_a), by_key.get(key_b)
        seeds = [seed for seed in a.runs if seed in b.runs] if a and b else []
        if len(seeds) < 2:
            continue
        diffs = [b.runs[s].metrics[split]["accuracy"] - a.runs[s].metrics[split]["accuracy"] for s in seeds]
        va, vb = _paper_val(a.model, a.recipe), _paper_val(b.model, b.recipe)
        sign = None if va is None or vb is None or va == vb else (1 if vb > va else -1)
        pooled = [paired_predictions(a.runs[s], b.runs[s], predictions, read) for s in seeds]
        truth, pred_a, pred_b = (np.concatenate([p[i] for p in pooled]) for i in range(3))
        out.append(SeedComparison(a, b, seeds, sign, sum(d > 0 for d in diffs),
                                  None if sign is None else sum(d * sign > 0 for d in diffs),
                                  mcnemar(truth, pred_a, pred_b)))
    return out


def _cell_name(c: Cell) -> str:
    return f"{c.model} {c.recipe.paper if c.recipe else 'other'}"


def _seed_lines(cs: Sequence[Cell], comparisons: Sequence[SeedComparison], split: str) -> list[str]:
    lines = ["", "## Over seeds", "",
             "Per cell (one model and recipe, runs that differ in their seed only) the mean and sample standard "
             "deviation of Target Val accuracy over its seeds, and its lowest and highest; the runs are the "
             "rows above.", "",
             "| " + " | ".join(CELL_HEADER) + " |", "|" + "---|" * len(CELL_HEADER)]
    lines += ["| " + " | ".join(r) + " |" for r in cell_rows(cs)]
    lines += ["", f"The paper's comparisons on `{split}` over the seeds both cells ran: in how many seeds the "
              "difference had the paper's sign (B above A where the paper's val number for B is higher), and "
              "McNemar's test on the predictions of all those seeds pooled (each seed's samples paired by id).", ""]
    if not comparisons:
        return lines + ["No paper comparison between cells with two or more seeds in common."]
    lines += ["| A | B | paper val % A / B | seeds | held in | A-only | B-only | pooled n | test | p |",
              "|---|---|---|---|---|---|---|---|---|---|"]
    for c in comparisons:
        va, vb = _paper_val(c.a.model, c.a.recipe), _paper_val(c.b.model, c.b.recipe)
        paper = f"{va if va is not None else '-'} / {vb if vb is not None else '-'}"
        held = (f"{c.held} of {len(c.seeds)}" if c.held is not None
                else f"- (B higher in {c.b_better} of {len(c.seeds)})")
        t = c.pooled
        lines.append(f"| {_cell_name(c.a)} | {_cell_name(c.b)} | {paper} | {', '.join(map(str, c.seeds))} | "
                     f"{held} | {t.only_a} | {t.only_b} | {t.n} | {t.method} | {t.p_value:.4g} |")
    return lines


def render_markdown(experiments: Sequence[Experiment], tests: list[tuple[str, str, McNemar]], split: str,
                    cs: Sequence[Cell] = (), comparisons: Sequence[SeedComparison] = ()) -> str:
    rows = table_rows(experiments)
    lines = ["# The experiment grid next to Ng et al. (ICMI 2015)", ""]
    if any(r[-1] == "synthetic" for r in rows):
        lines += ["**Rows marked synthetic ran on synthetic data**: they exercise the pipeline and "
                  "are not comparable with the paper's numbers.", ""]
    lines += ["Accuracies in % with 95% bootstrap intervals. \"phase-1 on Target val\" is the same run's "
              "phase-1 model, i.e. single fine-tuning; for single-phase recipes the two columns agree. "
              f"Paper: EmotiW val / test accuracy (submission); challenge baseline {CHALLENGE_BASELINE[0]} / "
              f"{CHALLENGE_BASELINE[1]}. Models the paper did not run are marked \"{BEYOND_PAPER}\". "
              "An accuracy marked * was reported on the set that chose the run's kept epoch "
              "(`select: val`, as in the paper): it is optimistic.", ""]
    lines += ["| " + " | ".join(TABLE_HEADER) + " |", "|" + "---|" * len(TABLE_HEADER)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    pending = [e for e in experiments if not e.metrics and not e.commit]
    if pending:
        lines += ["", "Without metrics (queued, running or failed): "
                  + ", ".join(f"{e.name} ({e.state})" for e in pending)]
    if any(len(c.runs) > 1 for c in cs):
        lines += _seed_lines(cs, comparisons, split)
    lines += ["", f"## McNemar tests on `{split}`", ""]
    if tests:
        lines += ["Paired on the same samples; A-only / B-only count the samples only one of them gets right. "
                  "Exact binomial test below 25 discordant pairs, else chi-square with continuity correction.", "",
                  "| A | B | n | A-only | B-only | test | p |", "|---|---|---|---|---|---|---|"]
        lines += [f"| {a} | {b} | {t.n} | {t.only_a} | {t.only_b} | {t.method} | {t.p_value:.4g} |"
                  for a, b, t in tests]
    else:
        lines.append("No pair of finished experiments to compare.")
    return "\n".join(lines) + "\n"


def render_png(experiments: Sequence[Experiment], path: str | Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # imported here: seconds that --help and parsing need not pay

    rows = table_rows(experiments)
    keep = [0, 3, 4, 5, 6, 7, 10, 11]  # the columns that fit a page
    header = [TABLE_HEADER[i] for i in keep]
    cells = [[r[i] for i in keep] for r in rows] or [["(no finished experiments)"] + [""] * (len(keep) - 1)]
    fig, ax = plt.subplots(figsize=(11, 0.6 + 0.3 * (len(cells) + 1)))
    ax.axis("off")
    table = ax.table(cellText=cells, colLabels=header, loc="center", cellLoc="left")
    table.auto_set_font_size(False)
    table.set_fontsize(8)
    table.auto_set_column_width(list(range(len(header))))
    fig.tight_layout()
    save_figure(fig, path, dpi=120)
    plt.close(fig)


def build_report(doc: list, out: str | Path, *, split: str = "target_val",
                 pairs: Sequence[tuple[str, str]] | None = None,
                 read: Callable[[str, str], str] = dvc_reader, dvc_yaml: str | Path = DVC_YAML) -> str:
    """The report of ``doc`` (`dvc exp show --json`), written to ``out``; evaluate's files are
    where ``dvc_yaml``'s `vars` put them."""
    paths = pipeline_paths(dvc_yaml)
    experiments = parse_exp_show(doc, paths["eval_metrics"])
    predictions = str(predictions_file(PurePosixPath(paths["eval_reports"]), split))
    by_name = {e.name: e for e in experiments}
    if pairs is None:
        pairs = default_pairs(experiments)
    tests = []
    for a, b in pairs:
        for name in (a, b):
            if name not in by_name or not by_name[name].metrics:
                raise PipelineError(f"--pair {a} {b}: no finished experiment named {name!r} in `dvc exp show`")
        tests.append((a, b, paired_test(by_name[a], by_name[b], predictions, read)))
    cs = cells(experiments, split)
    text = render_markdown(experiments, tests, split, cs, seed_comparisons(cs, split, predictions, read))
    out = Path(out)
    write_text(out / "report.md", text)
    render_png(experiments, out / "table.png")
    return text


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--out", required=True, help="folder for report.md and table.png")
    p.add_argument("--exp-show", help="a saved `dvc exp show --json` output (default: run it)")
    p.add_argument("--split", default="target_val", help="scored set the McNemar tests compare on")
    p.add_argument("--pair", nargs=2, action="append", metavar=("A", "B"),
                   help="experiments to compare (repeatable); default: the paper's comparisons")
    args = p.parse_args(argv)
    print(build_report(exp_show_json(args.exp_show), args.out, split=args.split,
                       pairs=[tuple(x) for x in args.pair] if args.pair else None), end="")


if __name__ == "__main__":
    from ..cli import run_stage
    sys.exit(run_stage(main))
