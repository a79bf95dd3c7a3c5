"""What the align_target stage writes besides the face store (faces/blocks.py): the per-image
log, the metrics, the sheets."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

from ..io import atomic_folder, write_json
from ..labels import EMOTIONS, UNLABELED
from .contact_sheet import SheetPicks, aligned_sheet, failures_sheet
from .pipeline import Tally
from .search import Result

REPORT_FILE = "alignment.json"                    # every count, in the reports folder
LOG_COLUMNS = ("path", "split", "label", "detector", "box_x", "box_y", "box_w", "box_h", "fit",
               "right_eye_x", "right_eye_y", "left_eye_x", "left_eye_y", "angle_deg", "outcome", "reason")


def _num(v, digits=2):
    return "" if v is None else f"{v:.{digits}f}"


def log_rows(results: Sequence[Result]) -> list[list[str]]:
    rows = []
    for r in results:
        box = r.box if r.box is not None else (None,) * 4
        eyes = r.eyes.ravel().tolist() if r.eyes is not None else [None] * 4
        label = "" if r.task.label == UNLABELED else EMOTIONS[r.task.label]
        rows.append([r.task.path, r.task.split, label, r.detector, *(_num(v, 1) for v in box), _num(r.fit, 4),
                     *(_num(v) for v in eyes), _num(r.angle_deg), r.outcome, r.reason])
    return rows


def metrics(tally: Tally, synthetic: bool, landmarks: str, empty: Sequence[str]) -> dict:
    """Every count and rate of the run, for the report file (``alignment.json`` in the reports)."""
    summary = tally.summary()
    return {"synthetic": synthetic, "landmarks": landmarks, "images": summary["counts"]["all"]["total"],
            "empty_folders": list(empty), **summary, "aligned_by": tally.attempt_rates()}


def headline(summary: dict) -> dict:
    """What goes under DVC's `metrics:`: the share of the photos aligned, and of them aligned by
    each detection attempt (they add up to it), which shows a change of detector params at a
    glance. The rates per split, detection rates and counts stay in the report, so `dvc metrics
    show` over the whole pipeline lists a few dozen figures, not a table."""
    return {"alignment_rate": summary["alignment_rate"]["all"], "aligned_by": summary["aligned_by"]}


def write_reports(folder: str | Path, picks: SheetPicks, synthetic: bool, summary: dict) -> None:
    """Both sheets and the ``summary`` of :func:`metrics`, written beside ``folder`` and swapped
    in whole, so it is never half-written."""
    with atomic_folder(folder) as tmp:
        aligned_sheet(picks, tmp / "aligned.png", synthetic)
        failures_sheet(picks, tmp / "failures.png", synthetic)
        write_json(tmp / REPORT_FILE, summary)
