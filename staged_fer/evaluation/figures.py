"""PNG figures: confusion matrices laid out like the paper's Figure 4."""
from __future__ import annotations

import os

import numpy as np

from ..io import save_figure
from ..labels import PAPER_ABBREV, PAPER_ORDER
from .confusion import paper_order, row_percentages


def confusion_figure(cm: np.ndarray, title: str, path: str | os.PathLike) -> None:
    """Row percentages in the paper's class order, each cell printed, true classes down."""
    import matplotlib
    matplotlib.use("Agg")  # stages run headless
    import matplotlib.pyplot as plt  # imported here: it costs seconds, and --help needs none of it

    pct = row_percentages(paper_order(cm))
    support = paper_order(cm).sum(axis=1)
    ticks = [PAPER_ABBREV[name] for name in PAPER_ORDER]
    fig, ax = plt.subplots(figsize=(5.2, 4.6))
    ax.imshow(pct, cmap="Blues", vmin=0, vmax=100)
    for i in range(len(ticks)):
        for j in range(len(ticks)):
            ax.text(j, i, f"{pct[i, j]:.1f}", ha="center", va="center", fontsize=8,
                    color="white" if pct[i, j] > 60 else "black")
    ax.set_xticks(range(len(ticks)), ticks)
    ax.set_yticks(range(len(ticks)), [f"{t} ({n})" for t, n in zip(ticks, support)])
    ax.set_xlabel("predicted")
    ax.set_ylabel("true (samples)")
    ax.set_title(title, fontsize=9)
    # A fixed layout: tight_layout costs more than drawing the figure.
    fig.subplots_adjust(left=0.2, right=0.97, bottom=0.11, top=0.85)
    save_figure(fig, path)
    plt.close(fig)
