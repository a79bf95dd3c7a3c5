"""Classification metrics on label and probability arrays, and the cost matrix behind the
cost-sensitive accuracy.

Conventions follow scikit-learn's, so numbers agree with what researchers compute elsewhere:
precision of a class never predicted is 0; macro-F1 averages the classes present in the
truth or the predictions; balanced accuracy averages the recall of the classes present in
the truth.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from ..errors import PipelineError
from ..labels import EMOTIONS, LABEL_OF, NUM_CLASSES
from .stats import bootstrap_accuracy_interval


@dataclass(frozen=True)
class CostConfig:
    """The paper's conclusion: confusing similar expressions should cost less than others.

    A correct prediction costs 0, a confusion between two classes listed together in
    ``similar`` (in either direction) costs ``similar_cost``, any other confusion costs 1.
    """
    similar: tuple[tuple[str, str], ...]
    similar_cost: float

    def __post_init__(self):
        for pair in self.similar:
            for name in pair:
                if name not in LABEL_OF:
                    raise ValueError(f"cost.similar names an unknown class {name!r}; "
                                     f"expected one of: {', '.join(EMOTIONS)}")
            if pair[0] == pair[1]:
                raise ValueError(f"cost.similar pairs a class with itself: {list(pair)}")
        if not 0.0 <= self.similar_cost <= 1.0:
            raise ValueError(f"cost.similar_cost must lie in [0, 1], got {self.similar_cost}")


@dataclass(frozen=True)
class EvaluateConfig:
    bootstrap: int                                 # resamples for the 95% accuracy interval
    batch_size: int                                # images per inference batch
    device: Literal["auto", "cpu", "cuda"]
    cost: CostConfig

    def __post_init__(self):
        if self.bootstrap < 1:
            raise ValueError(f"bootstrap must be at least 1, got {self.bootstrap}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {self.batch_size}")


def cost_matrix(cfg: CostConfig) -> np.ndarray:
    """(7, 7) cost of predicting column j for true row i, in FER label order."""
    cost = np.ones((NUM_CLASSES, NUM_CLASSES)) - np.eye(NUM_CLASSES)
    for a, b in cfg.similar:
        cost[LABEL_OF[a], LABEL_OF[b]] = cost[LABEL_OF[b], LABEL_OF[a]] = cfg.similar_cost
    return cost


def confusion_matrix(labels: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    """Counts, rows = true class, columns = predicted class, FER label order."""
    labels, predicted = _check_pair(labels, predicted)
    return np.bincount(labels * NUM_CLASSES + predicted,
                       minlength=NUM_CLASSES * NUM_CLASSES).reshape(NUM_CLASSES, NUM_CLASSES)


def _check_pair(labels: np.ndarray, predicted: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    labels = np.asarray(labels, dtype=np.int64)
    predicted = np.asarray(predicted, dtype=np.int64)
    if labels.shape != predicted.shape or labels.ndim != 1:
        raise ValueError(f"labels {labels.shape} and predictions {predicted.shape} must be equal 1-d shapes")
    for name, arr in (("label", labels), ("prediction", predicted)):
        bad = np.flatnonzero((arr < 0) | (arr >= NUM_CLASSES))
        if bad.size:
            raise ValueError(f"{name} {arr[bad[0]]} at index {bad[0]} is not a class id in 0..{NUM_CLASSES - 1}")
    return labels, predicted


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    return np.divide(num, den, out=np.zeros(num.shape, dtype=float), where=den > 0)


def classification_metrics(labels: np.ndarray, proba: np.ndarray, *, cost: np.ndarray,
                           bootstrap: int, seed: int) -> dict:
    """Every number `evaluate` reports for one split, as a JSON-ready dict.

    ``proba`` is (N, 7) class probabilities; the prediction is its argmax.
    """
    proba = np.asarray(proba)
    if proba.ndim != 2 or proba.shape[1] != NUM_CLASSES or len(proba) != len(labels):
        raise ValueError(f"probabilities must be ({len(labels)}, {NUM_CLASSES}), got {proba.shape}")
    if len(labels) == 0:
        raise ValueError("no labelled samples to score")
    predicted = proba.argmax(axis=1)
    cm = confusion_matrix(labels, predicted)
    n = int(cm.sum())
    tp = np.diag(cm).astype(float)
    support = cm.sum(axis=1)
    predicted_count = cm.sum(axis=0)
    precision = _ratio(tp, predicted_count)
    recall = _ratio(tp, support)
    f1 = _ratio(2 * precision * recall, precision + recall)
    present = (support > 0) | (predicted_count > 0)
    correct = np.asarray(labels) == predicted
    low, high = bootstrap_accuracy_interval(correct, resamples=bootstrap, seed=seed)
    return {
        "n": n,
        "accuracy": _round(tp.sum() / n),
        "accuracy_ci95_low": _round(low),
        "accuracy_ci95_high": _round(high),
        "balanced_accuracy": _round(recall[support > 0].mean()),
        "macro_f1": _round(f1[present].mean()),
        "cost_accuracy": _round(1.0 - (cm * cost).sum() / n),
        "per_class": {
            EMOTIONS[k]: {"precision": _round(precision[k]), "recall": _round(recall[k]),
                          "f1": _round(f1[k]), "support": int(support[k])}
            for k in range(NUM_CLASSES)
        },
    }


def _round(x: float) -> float:
    # Six decimals keep `dvc metrics diff` readable and the JSON bytes stable across platforms.
    return round(float(x), 6)


def check_probabilities(proba: np.ndarray, n: int, where: str) -> np.ndarray:
    """The shape and values inference must return; a clear error otherwise."""
    proba = np.asarray(proba, dtype=np.float32)
    if proba.shape != (n, NUM_CLASSES):
        raise PipelineError(f"{where}: model returned probabilities of shape {proba.shape}, expected ({n}, {NUM_CLASSES})")
    bad = np.flatnonzero(~np.isfinite(proba).all(axis=1))
    if bad.size:
        raise PipelineError(f"{where}: model returned non-finite probabilities for sample {bad[0]}")
    return proba
