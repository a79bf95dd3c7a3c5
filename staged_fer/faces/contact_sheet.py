"""Contact sheets to inspect the alignment at a glance (the paper's Figures 1 and 2).

``aligned.png``: one row per emotion (and one for unlabeled Test), the first aligned faces by
path, framed by what found them when it was not the plain frontal pass (padded photo, profile
cascade, whole-photo fit). ``failures.png``: the photos where no face was detected, then the
faces with the 40 lowest landmark fits, accepted or not (a false face hides among them), each
captioned with what happened.
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from ..io import save_figure  # noqa: E402
from ..labels import EMOTIONS, UNLABELED  # noqa: E402
from .search import ALIGNED, DROPPED, FALLBACK, Result  # noqa: E402

PER_ROW = 10
MAX_UNDETECTED = 40
WORST_FITS = 40
# Frame colours of the finds that did not come from the plain frontal pass (see marker()).
MARKS = {"padded": "tab:orange", "profile": "tab:blue", "profile padded": "tab:purple", "whole photo": "tab:green"}


def marker(r: Result) -> str:
    """Which MARKS entry a result's find gets; "" for the frontal cascade on the photo as it is."""
    if r.detector == "whole_photo":
        return "whole photo"
    kind = "profile" if r.detector.startswith("profile") else ""
    padded = "padded" if r.detector.endswith("_padded") else ""
    return " ".join(filter(None, (kind, padded)))


def _blank(ax) -> None:
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)


def _frame(ax, r: Result) -> None:
    mark = marker(r)
    if mark:
        for spine in ax.spines.values():
            spine.set_visible(True)
            spine.set_color(MARKS[mark])
            spine.set_linewidth(3)


class SheetPicks:
    """What the two sheets show, gathered block by block (photos in path order): the first
    aligned faces of each class with the class counts, the first undetected photos with their
    count, and the lowest fits so far. Bounded, whatever the number of photos."""

    def __init__(self):
        self.classes = [*range(len(EMOTIONS)), UNLABELED]
        self.aligned: dict[int, list[Result]] = {c: [] for c in self.classes}
        self.aligned_counts = dict.fromkeys(self.classes, 0)
        self.undetected: list[Result] = []
        self.worst: list[Result] = []
        self.n_undetected = 0

    def add(self, results: Sequence[Result]) -> None:
        for r in results:
            if r.outcome == ALIGNED:
                self.aligned_counts[r.task.label] += 1
                if len(self.aligned[r.task.label]) < PER_ROW:
                    self.aligned[r.task.label].append(_own(r))
        self.n_undetected += sum(r.outcome in (FALLBACK, DROPPED) and r.box is None for r in results)
        # The picks so far come before this block in path order: picking again from both is
        # picking from all photos so far.
        undetected, worst = failure_picks([*self.undetected, *self.worst, *results])
        self.undetected, self.worst = [_own(r) for r in undetected], [_own(r) for r in worst]


def _own(r: Result) -> Result:
    """``r`` with a face of its own where its face is a view (of its block's memory-mapped shard).

    A kept view keeps the whole shard mapped, and the pages that drawing the face touches stay
    in the resident set: the kernel maps a shard's page cache in folios of up to 2 MiB, so the
    few picks, spread over more shards as the photos grow, would hold megabytes each. A copy is
    made once, when the face is picked, and the shard is unmapped with its block.
    """
    return r if r.face is None or r.face.flags.owndata else replace(r, face=r.face.copy())


def aligned_sheet(picks: SheetPicks, path: str | Path, synthetic: bool) -> None:
    names = [*EMOTIONS, "Test (unlabeled)"]
    rows = [(name, picks.aligned[c], picks.aligned_counts[c]) for name, c in zip(names, picks.classes)]
    fig, axes = plt.subplots(len(rows), PER_ROW, figsize=(PER_ROW * 1.1, len(rows) * 1.25), squeeze=False)
    for (name, rs, count), row in zip(rows, axes):
        row[0].set_ylabel(f"{name}\n({count})", rotation=0, ha="right", va="center", fontsize=8)
        for j, ax in enumerate(row):
            _blank(ax)
            if j < len(rs):
                ax.imshow(rs[j].face, cmap="gray", vmin=0, vmax=255)
                _frame(ax, rs[j])
    title = f"Aligned faces per class, first {PER_ROW} by path; frames: " + \
        ", ".join(f"{m} {c.removeprefix('tab:')}" for m, c in MARKS.items())
    fig.suptitle(title + (" (SYNTHETIC data)" if synthetic else ""), fontsize=10)
    fig.tight_layout()
    save_figure(fig, path)
    plt.close(fig)


def failure_picks(results: Sequence[Result]) -> tuple[list[Result], list[Result]]:
    """(photos without any detection, the faces with the lowest fits, lowest first) to show."""
    undetected = [r for r in results if r.outcome in (FALLBACK, DROPPED) and r.box is None
                  and (r.face is not None or r.thumb is not None)]
    fitted = sorted((r for r in results if r.fit is not None and (r.face is not None or r.thumb is not None)),
                    key=lambda r: (r.fit, r.task.path))
    return undetected[:MAX_UNDETECTED], fitted[:WORST_FITS]


def failures_sheet(picks: SheetPicks, path: str | Path, synthetic: bool) -> None:
    undetected, worst = picks.undetected, picks.worst
    shown = undetected + worst
    cols = 8
    nrows = max(1, -(-len(undetected) // cols) + -(-len(worst) // cols))
    fig, axes = plt.subplots(nrows, cols, figsize=(cols * 1.6, nrows * 2.0), squeeze=False)
    for ax in axes.ravel():
        _blank(ax)
    # Each group starts on a row of its own.
    cells = list(axes.ravel()[:len(undetected)]) + list(axes.ravel()[-(-len(undetected) // cols) * cols:][:len(worst)])
    for r, ax in zip(shown, cells):
        img = r.face if r.face is not None else r.thumb
        ax.imshow(img, cmap="gray", vmin=0, vmax=255)
        why = "no face" if r.box is None else f"fit {r.fit:.2f} {r.detector}"
        ax.set_title(f"{r.outcome}: {why}\n{r.task.path[-22:]}", fontsize=6)
        _frame(ax, r)
    if not shown:
        axes[0, 0].text(0.0, 0.5, "no undetected photos and no fitted faces", fontsize=9)
    n_undetected = picks.n_undetected
    title = (f"No face detected ({len(undetected)} of {n_undetected} shown), then the {len(worst)} "
             f"lowest landmark fits")
    fig.suptitle(title + (" (SYNTHETIC data)" if synthetic else ""), fontsize=10)
    fig.tight_layout()
    save_figure(fig, path)
    plt.close(fig)
