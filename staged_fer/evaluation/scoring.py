"""What `evaluate` scores and writes, on arrays of labels and class probabilities.

Scored sets (keys of metrics/eval.json):
  fer_public_test, fer_private_test   FER-2013 PublicTest / PrivateTest, final model
  emotiw_val                          EmotiW Val, final model ("double" fine-tuning when stage 2 ran)
  emotiw_val_stage1                   EmotiW Val, stage-1 model ("single" fine-tuning)
  emotiw_test                         EmotiW Test, final model, only when every Test image is labelled

Sample ids in the predictions CSVs: FER rows are the row index in data/interim/fer2013.npz
(with `decode.on_bad_row: fail`, index i is line i + 2 of fer2013.csv, the header being line 1);
EmotiW samples are their path relative to the SFEW root.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, replace
from typing import Callable

import numpy as np

from ..errors import PipelineError
from ..io import atomic_folder, write_csv, write_json, write_text
from ..labels import EMOTIONS, NUM_CLASSES, UNLABELED
from .confusion import dvc_rows
from .figures import confusion_figure
from .metrics import EvaluateConfig, check_probabilities, classification_metrics, confusion_matrix, cost_matrix

FER_KEYS = {"images": 3, "labels": 1, "usage": 1}
EMOTIW_KEYS = {"images": 3, "labels": 1, "split": 1, "paths": 1}


@dataclass(frozen=True)
class EvalSet:
    key: str              # metrics key, plot and CSV file stem
    title: str            # human-readable, for figures and the summary
    role: str             # "final" or "stage1": which checkpoint scores it
    images: np.ndarray    # (N, S, S) uint8
    labels: np.ndarray    # (N,) int64, FER order
    ids: np.ndarray       # (N,) str
    synthetic: bool
    part: str = ""        # the split's name as training names it ("FER PublicTest", "EmotiW Val")


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


def evaluation_sets(fer: dict, emotiw: dict, fer_path: str | os.PathLike,
                    emotiw_path: str | os.PathLike) -> list[EvalSet]:
    """The labelled splits to score, in report order; fails on malformed inputs or empty splits."""
    _check_arrays(fer, FER_KEYS, fer_path)
    _check_arrays(emotiw, EMOTIW_KEYS, emotiw_path)
    sets = []
    for key, usage in (("fer_public_test", "PublicTest"), ("fer_private_test", "PrivateTest")):
        # Unlabeled rows are faces the FER+ labels drop (unknown, not a face, contempt).
        rows = np.flatnonzero((fer["usage"] == usage) & (fer["labels"] >= 0))
        if rows.size == 0:
            raise PipelineError(f"{fer_path}: no labelled {usage} rows to score")
        sets.append(EvalSet(key, f"FER {usage}", "final", fer["images"][rows],
                            fer["labels"][rows].astype(np.int64), rows.astype(str), _synthetic(fer), f"FER {usage}"))
    val = np.flatnonzero((emotiw["split"] == "Val") & (emotiw["labels"] >= 0))
    if val.size == 0:
        raise PipelineError(f"{emotiw_path}: no labelled Val images to score")
    for key, role, who in (("emotiw_val", "final", "final model"), ("emotiw_val_stage1", "stage1", "stage-1 model")):
        sets.append(EvalSet(key, f"EmotiW Val, {who}", role, emotiw["images"][val],
                            emotiw["labels"][val].astype(np.int64), emotiw["paths"][val].astype(str),
                            _synthetic(emotiw), "EmotiW Val"))
    test = np.flatnonzero(emotiw["split"] == "Test")
    # EmotiW Test labels were withheld by the challenge: score it only when all of it is labelled,
    # since a partly labelled test set would give a number no one else can compare with.
    if test.size and (emotiw["labels"][test] >= 0).all():
        sets.append(EvalSet("emotiw_test", "EmotiW Test, final model", "final", emotiw["images"][test],
                            emotiw["labels"][test].astype(np.int64), emotiw["paths"][test].astype(str),
                            _synthetic(emotiw), "EmotiW Test"))
    return sets


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
    """Every number of the run (``reports/eval/scores.json``): run facts (``info``), and per
    scored set its headline figures, its per-class table, whether its numbers are synthetic and
    whether its model's epoch was chosen on it."""
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
    scheme = info.get("scheme", "")
    tag = " [synthetic data]" if s.set.synthetic else ""
    return f"{s.set.title}{tag}\n{info.get('model', '')}{', ' + scheme if scheme else ''}"


def summary_markdown(metrics: dict, scored: list[Scored], info: dict) -> str:
    lines = [f"# Evaluation: {info.get('model', '')}, {info.get('scheme', '')}", ""]
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
              + ", ".join(f"[{s.set.key}](confusion_{s.set.key}.png)" for s in scored), ""]
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
            write_csv(reports / "predictions" / f"{s.set.key}.csv",
                      ["id", "true", "predicted", *(f"p_{e}" for e in EMOTIONS)],
                      ([i, EMOTIONS[t], EMOTIONS[p], *(f"{v:.6f}" for v in row)]
                       for i, t, p, row in zip(s.set.ids.tolist(), s.set.labels.tolist(),
                                               s.predicted.tolist(), s.proba)))
            confusion_figure(confusion_matrix(s.set.labels, s.predicted),
                             f"{_title(s, info)}\naccuracy {100 * metrics[s.set.key]['accuracy']:.1f}%",
                             reports / f"confusion_{s.set.key}.png")
        write_json(reports / SCORES_FILE, scores)
        write_text(reports / "summary.md", summary_markdown(metrics, scored, info))
        write_json(metrics_path, metrics)
    return metrics

