"""Per-epoch metrics through DVCLive: <live>/plots/metrics/*.tsv and <live>/metrics.json.

DVC declares both in dvc.yaml, so DVCLive is told not to write a dvc.yaml, a report or an
experiment of its own. Metric files are flat (``train_loss.tsv``...) so dvc.yaml's top-level
plots can pair train and validation curves. The finished metrics.json holds the stage's
headline only (the kept epoch and its validation accuracy): the curves hold the rest, and
`dvc exp show` stays readable. Only deterministic numbers are logged (no timings), so the
same seed gives the same metric files.
"""
from __future__ import annotations

from pathlib import Path

from dvclive import Live

from ..io import write_json

EPOCH_METRICS = ("train_loss", "train_acc", "val_loss", "val_acc", "lr")


class LiveLog:
    def __init__(self, directory: str | Path, synthetic: bool):
        # resume=False clears what a previous run left; a resumed run replays its history.
        self.live = Live(str(directory), resume=False, report=None, save_dvc_exp=False, dvcyaml=False)
        self.live.summary["synthetic"] = synthetic
        self.dir = Path(directory)

    def log_epoch(self, entry: dict[str, float]) -> None:
        for name in EPOCH_METRICS:
            self.live.log_metric(name, entry[name])
        self.live.next_step()

    def finish(self, kept_epoch: int, best_val_acc: float | None) -> None:
        # DVC expects the declared plots folder even when nothing was trained.
        (Path(self.live.plots_dir) / "metrics").mkdir(parents=True, exist_ok=True)
        self.live.end()
        # DVCLive's own summary repeats the last value of every curve, the step count and the
        # synthetic flag (which metrics/eval.json carries for the run): replaced by the headline.
        headline = {"kept_epoch": kept_epoch}
        if best_val_acc is not None:
            headline["best_val_acc"] = best_val_acc
        write_json(self.live.metrics_file, headline)
