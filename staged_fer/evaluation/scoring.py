"""What `evaluate` scores and writes, on arrays of labels and class probabilities.

The scored sets are those the sources register (``scored`` in staged_fer/data/splits.py
SOURCES); the key of a set is ``<source>_<the part's key>``, plus ``_phase1`` when the
phase-1 model scores it (``set_key``). With the two registered sources (the metrics keys):
  fer_public_test, fer_private_test   FER-2013 PublicTest / PrivateTest, final model
  target_val                          Target Val, final model ("double" fine-tuning when phase 2 ran)
  target_val_phase1                   Target Val, phase-1 model ("single" fine-tuning)
  target_test                         Target Test, final model, only when every Test image is labelled

Sample ids in the predictions CSVs: FER rows are the row index in the decoded FER-2013 file
(with `decode.on_bad_row: fail`, index i is line i + 2 of fer2013.csv, the header being line 1);
Target-set samples are their path relative to the target root.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import PurePath
from typing import Callable, Mapping

import numpy as np

from ..data.splits import SOURCES, ScoredPart, Source
from ..errors import PipelineError
from ..io import atomic_folder, write_csv, write_json, write_text
from ..labels import EMOTIONS, NUM_CLASSES, UNLABELED
from ..store import FaceRows
from .confusion import dvc_rows
from .figures import confusion_figure
from .metrics import EvaluateConfig, check_probabilities, classification_metrics, confusion_matrix, cost_matrix

# Who scores a set: the final model, or the phase-1 model (single fine-tuning).
ROLE_TITLES = {"final": "final model", "phase1": "phase-1 model"}

@dataclass(frozen=True)
class EvalSet:
    key: str              # metrics key, plot and CSV file stem
    title: str            # human-readable, for figures and the summary
    role: str             # "final" or "phase1": which checkpoint scores it
    images: FaceRows      # (N, S, S) uint8, read when scored
    labels: np.ndarray    # (N,) int64, FER order
    ids: np.ndarray       # (N,) str
    synthetic: bool
    part: str = ""        # the split's name as training names it ("FER PublicTest", "Target Val")


@dataclass(frozen=True)
class Scored:
    set: EvalSet
    proba: np.ndarray     # (N, 7) float32

    @property
    def predicted(self) -> np.ndarray:
        return self.proba.argmax(axis=1)


def _check_arrays(data: dict, required: dict[str, int], path: str | os.PathLike) -> int:
    for key, ndim in required.items():
        if key not in data:
            raise PipelineError(f"{path}: missing array `{key}` (rebuild it with `dvc repro`)")
        if data[key].ndim != ndim:
            raise PipelineError(f"{path}: array `{key}` has {data[key].ndim} dimensions, expected {ndim}")
    n = len(data["labels"])
    for key in required:
        if len(data[key]) != n:
            raise PipelineError(f"{path}: array `{key}` has {len(data[key])} rows but `labels` has {n}")
    if data["images"].dtype != np.uint8:
        raise PipelineError(f"{path}: `images` are {data['images'].dtype}, expected uint8")
    bad = np.flatnonzero((data["labels"] < UNLABELED) | (data["labels"] >= NUM_CLASSES))
    if bad.size:
        raise PipelineError(f"{path}: row {bad[0]} has label {data['labels'][bad[0]]}, "
                            f"expected -1 (unlabeled) or 0..{NUM_CLASSES - 1}")
    return n


def _synthetic(data: dict) -> bool:
    return "source" in data and str(data["source"]) == "synthetic"


def set_key(source: Source, scored: ScoredPart, role: str) -> str:
    """The key of ``scored`` when the ``role`` checkpoint scores it: its metrics key and the stem of
    its plot, predictions and figure files."""
    return f"{source.name}_{scored.key}" + ("" if role == "final" else f"_{role}")


def predictions_file(reports_dir: PurePath, key: str) -> PurePath:
    """The predictions CSV of set ``key`` under evaluate's reports folder."""
    return reports_dir / "predictions" / f"{key}.csv"


def figure_name(key: str) -> str:
    """The confusion figure of set ``key``, in evaluate's reports folder."""
    return f"confusion_{key}.png"


def _source_sets(source: Source, data: dict, path: str | os.PathLike) -> list[EvalSet]:
    _check_arrays(data, {"images": 3, "labels": 1, source.column: 1, **({source.ids: 1} if source.ids else {})}, path)
    # A source any of whose parts two models score names the model in every title.
    name_model = any(len(p.roles) > 1 for p in source.scored)
    sets = []
    for scored in source.scored:
        in_part = data[source.column] == scored.part
        # Unlabeled faces (FER+ drops, withheld labels) are not scored.
        rows = np.flatnonzero(in_part & (data["labels"] >= 0))
        if scored.only_if_all_labelled:
            if not in_part.any() or rows.size < in_part.sum():
                continue
        elif rows.size == 0:
            raise PipelineError(f"{path}: no labelled {scored.part} faces to score")
        ids = data[source.ids][rows].astype(str) if source.ids else rows.astype(str)
        part = f"{source.title} {scored.part}"
        for role in scored.roles:
            title = f"{part}, {ROLE_TITLES[role]}" if name_model else part
            sets.append(EvalSet(set_key(source, scored, role), title, role, FaceRows(data["images"], rows),
                                data["labels"][rows].astype(np.int64), ids, _synthetic(data), part))
    return sets


def evaluation_sets(data: Mapping[str, dict], paths: Mapping[str, str | os.PathLike]) -> list[EvalSet]:
    """The scored parts of every registered source (staged_fer/data/splits.py SOURCES), in report
    order; ``data`` and ``paths`` are keyed by source name. Fails on malformed inputs or a scored
    part without labelled faces."""
    missing = [name for name in SOURCES if name not in data]
    if missing:
        raise PipelineError(f"evaluate: no arrays given for source {missing[0]!r}")
    return [s for name, source in SOURCES.items() for s in _source_sets(source, data[name], paths[name])]


def score(sets: list[EvalSet], predict: Callable[[str, np.ndarray], np.ndarray],
          trained_on_synthetic: Callable[[str], bool]) -> list[Scored]:
    """Run ``predict(role, images) -> (N, 7) probabilities`` over every set.

    A set counts as synthetic when its faces are, or when the model scoring it was trained on
    any synthetic data: either way its numbers say nothing about the paper.
    """
    scored = []
    for s in sets:
        proba = check_probabilities(predict(s.role, s.images), len(s.labels), s.title)
        scored.append(Scored(replace(s, synthetic=s.synthetic or trained_on_synthetic(s.role)), proba))
    return scored


# The figures of a scored set that go under DVC's `metrics:` (what experiments are compared by;
# `selected_here` lets the grid report mark optimistic numbers); the per-class table and the run
# facts go to the report file beside the figures.
HEADLINE = ("n", "accuracy", "accuracy_ci95_low", "accuracy_ci95_high", "balanced_accuracy", "macro_f1",
            "cost_accuracy", "selected_here")
SCORES_FILE = "scores.json"


def selected_here(s: Scored, info: dict) -> bool:
    """Whether the checkpoint scoring ``s`` picked its kept epoch on this very set: its accuracy
    here is then optimistic (``info["selected_on"]``: role -> the sets selection used)."""
    return bool(s.set.part) and s.set.part in ((info.get("selected_on") or {}).get(s.set.role) or ())


def scores_of(scored: list[Scored], cfg: EvaluateConfig, seed: int, info: dict) -> dict:
    """Every number of the run (``SCORES_FILE`` in evaluate's reports folder): run facts
    (``info``), and per scored set its headline figures, its per-class table, whether its numbers
    are synthetic and whether its model's epoch was chosen on it."""
    cost = cost_matrix(cfg.cost)
    facts = {k: v for k, v in info.items() if k != "selected_on"}   # lists; each block says it instead
    sets = {}
    for s in scored:
        block = classification_metrics(s.set.labels, s.proba, cost=cost, bootstrap=cfg.bootstrap, seed=seed)
        sets[s.set.key] = {**block, "synthetic": s.set.synthetic, "selected_here": selected_here(s, info)}
    return {**facts, "synthetic": any(s.set.synthetic for s in scored), "sets": sets}


def metrics_of(scores: dict) -> dict:
    """The metrics file: the synthetic flag and one flat block of headline figures per set."""
    return {"synthetic": scores["synthetic"],
            **{key: {k: block[k] for k in HEADLINE} for key, block in scores["sets"].items()}}


def _title(s: Scored, info: dict) -> str:
    schemes = info.get("schemes", "")
    tag = " [synthetic data]" if s.set.synthetic else ""
    return f"{s.set.title}{tag}\n{info.get('model', '')}{', ' + schemes if schemes else ''}"


def summary_markdown(metrics: dict, scored: list[Scored], info: dict) -> str:
    lines = [f"# Evaluation: {info.get('model', '')}, {info.get('schemes', '')}", ""]
    if metrics["synthetic"]:
        lines += ["**Synthetic data**: these numbers exercise the pipeline and say nothing about "
                  "the paper's results.", ""]
    if any(selected_here(s, info) for s in scored):
        lines += ["Sets marked \"epoch chosen here\" picked the kept training epoch by their own accuracy "
                  "(`select: val`, as the paper did): their numbers are optimistic. `select: train_split` "
                  "chooses on a share of the training set instead.", ""]
    lines += ["| set | n | accuracy % [95% CI] | balanced acc. % | macro-F1 | cost-sensitive acc. % | synthetic "
              "| epoch chosen here |",
              "|---|---|---|---|---|---|---|---|"]
    for s in scored:
        m = metrics[s.set.key]
        lines.append(f"| {s.set.title} | {m['n']} | {100 * m['accuracy']:.1f} "
                     f"[{100 * m['accuracy_ci95_low']:.1f}, {100 * m['accuracy_ci95_high']:.1f}] | "
                     f"{100 * m['balanced_accuracy']:.1f} | {m['macro_f1']:.3f} | "
                     f"{100 * m['cost_accuracy']:.1f} | {'yes' if s.set.synthetic else 'no'} | "
                     f"{'yes' if m['selected_here'] else 'no'} |")
    lines += ["", "Confusion matrices (row percentages, order FE SA HA SU DI AN NE): "
              + ", ".join(f"[{s.set.key}]({figure_name(s.set.key)})" for s in scored), ""]
    return "\n".join(lines)


def write_outputs(scored: list[Scored], cfg: EvaluateConfig, seed: int, info: dict, *,
                  metrics_path: str | os.PathLike, plots_dir: str | os.PathLike,
                  reports_dir: str | os.PathLike) -> dict:
    """Write metrics JSON, DVC confusion rows, predictions CSVs, figures, scores and a summary.

    The two folders are built aside and swapped in at the end, so a failure leaves the
    previous outputs intact and a rerun leaves no file of a set no longer scored.
    """
    scores = scores_of(scored, cfg, seed, info)
    metrics = metrics_of(scores)
    with atomic_folder(plots_dir) as plots, atomic_folder(reports_dir) as reports:
        for s in scored:
            write_json(plots / f"{s.set.key}.json", dvc_rows(s.set.labels, s.predicted))
            write_csv(predictions_file(reports, s.set.key),
                      ["id", "true", "predicted", *(f"p_{e}" for e in EMOTIONS)],
                      ([i, EMOTIONS[t], EMOTIONS[p], *(f"{v:.6f}" for v in row)]
                       for i, t, p, row in zip(s.set.ids.tolist(), s.set.labels.tolist(),
                                               s.predicted.tolist(), s.proba)))
            confusion_figure(confusion_matrix(s.set.labels, s.predicted),
                             f"{_title(s, info)}\naccuracy {100 * metrics[s.set.key]['accuracy']:.1f}%",
                             reports / figure_name(s.set.key))
        write_json(reports / SCORES_FILE, scores)
        write_text(reports / "summary.md", summary_markdown(metrics, scored, info))
        write_json(metrics_path, metrics)
    return metrics

