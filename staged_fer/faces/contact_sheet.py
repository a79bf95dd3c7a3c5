"""Contact sheets to inspect the alignment at a glance (the paper's Figures 1 and 2).

``aligned.png``: one row per emotion (and one for unlabeled Test), the first aligned faces by
path. ``failures.png``: fallback crops and dropped photos, each captioned with what happened.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from ..io import save_figure  # noqa: E402
from ..labels import EMOTIONS, UNLABELED  # noqa: E402
from .pipeline import ALIGNED, DROPPED, FALLBACK, Result  # noqa: E402

PER_ROW = 10
MAX_FAILURES = 40


def _blank(ax) -> None:
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)


def aligned_sheet(results: Sequence[Result], path: str | Path, synthetic: bool) -> None:
    rows = [(name, [r for r in results if r.outcome == ALIGNED and r.task.label == i]) for i, name in enumerate(EMOTIONS)]
    rows.append(("Test (unlabeled)", [r for r in results if r.outcome == ALIGNED and r.task.label == UNLABELED]))
    fig, axes = plt.subplots(len(rows), PER_ROW, figsize=(PER_ROW * 1.1, len(rows) * 1.25), squeeze=False)
    for (name, rs), row in zip(rows, axes):
        row[0].set_ylabel(f"{name}\n({len(rs)})", rotation=0, ha="right", va="center", fontsize=8)
        for j, ax in enumerate(row):
            _blank(ax)
            if j < len(rs):
                ax.imshow(rs[j].face, cmap="gray", vmin=0, vmax=255)
    title = f"Aligned faces per class, first {PER_ROW} by path"
    fig.suptitle(title + (" (SYNTHETIC data)" if synthetic else ""), fontsize=10)
    fig.tight_layout()
    save_figure(fig, path)
    plt.close(fig)


def failures_sheet(results: Sequence[Result], path: str | Path, synthetic: bool) -> None:
    failed = [r for r in results if r.outcome in (FALLBACK, DROPPED) and (r.face is not None or r.thumb is not None)]
    shown = failed[:MAX_FAILURES]
    cols = 8
    nrows = max(1, -(-len(shown) // cols))
    fig, axes = plt.subplots(nrows, cols, figsize=(cols * 1.6, nrows * 2.0), squeeze=False)
    for ax in axes.ravel():
        _blank(ax)
    for r, ax in zip(shown, axes.ravel()):
        img = r.face if r.face is not None else r.thumb
        ax.imshow(img, cmap="gray", vmin=0, vmax=255)
        why = "no face" if r.box is None else f"fit {r.fit:.2f}"
        ax.set_title(f"{r.outcome}: {why}\n{r.task.path[-22:]}", fontsize=6)
    if not shown:
        axes[0, 0].text(0.0, 0.5, "no fallback or dropped images", fontsize=9)
    title = f"Fallback crops and dropped photos ({len(shown)} of {len(failed)} shown)"
    fig.suptitle(title + (" (SYNTHETIC data)" if synthetic else ""), fontsize=10)
    fig.tight_layout()
    save_figure(fig, path)
    plt.close(fig)
