"""Confusion matrices in the two shapes the project shows them: per-sample rows that DVC's
`confusion` templates aggregate, and the paper's Figure 4 layout (row percentages, classes
in the order FE SA HA SU DI AN NE)."""
from __future__ import annotations

import numpy as np

from ..labels import EMOTIONS, LABEL_OF, PAPER_ORDER

PAPER_INDEX = np.array([LABEL_OF[name] for name in PAPER_ORDER])


def dvc_rows(labels: np.ndarray, predicted: np.ndarray) -> list[dict[str, str]]:
    """One {"actual", "predicted"} record per sample, class names as values.

    Names rather than ids make the DVC page readable without a legend.
    """
    return [{"actual": EMOTIONS[t], "predicted": EMOTIONS[p]}
            for t, p in zip(np.asarray(labels).tolist(), np.asarray(predicted).tolist())]


def paper_order(cm: np.ndarray) -> np.ndarray:
    """Reorder a FER-ordered (7, 7) matrix's rows and columns to the paper's order."""
    return cm[np.ix_(PAPER_INDEX, PAPER_INDEX)]


def row_percentages(cm: np.ndarray) -> np.ndarray:
    """Each row as percentages of its true class; rows of absent classes are all zero."""
    cm = np.asarray(cm, dtype=float)
    totals = cm.sum(axis=1, keepdims=True)
    return np.divide(100.0 * cm, totals, out=np.zeros_like(cm), where=totals > 0)
