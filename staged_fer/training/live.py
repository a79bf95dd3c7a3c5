"""Per-epoch metrics through DVCLive: <live>/metrics.json and <live>/plots/metrics/*.tsv.

DVC declares both in dvc.yaml, so DVCLive is told not to write a dvc.yaml, a report or an
experiment of its own. Metric files are flat (``train_loss.tsv``...) so dvc.yaml's top-level
plots can pair train and validation curves. Only deterministic numbers are logged (no
timings), so the same seed gives the same metric files.
"""
from __future__ import annotations

from pathlib import Path

from dvclive import Live

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
        self.live.summary["kept_epoch"] = kept_epoch
        if best_val_acc is not None:
            self.live.summary["best_val_acc"] = best_val_acc
        # DVC expects the declared plots folder even when nothing was trained.
        (Path(self.live.plots_dir) / "metrics").mkdir(parents=True, exist_ok=True)
        self.live.make_summary()
        self.live.end()
