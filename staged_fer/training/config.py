"""The params sections only the training stages read: `stage1`/`stage2` (the training knobs)
and `train` (how the stage runs: ``RuntimeConfig``). `input`, which evaluation reads too, is
staged_fer/inputs/config.py."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class StageConfig:
    """One training stage (`stage1` or `stage2`); the paper's SGD with a step schedule."""
    data: str                      # the split scheme; build_splits checks the name
    epochs: int
    batch_size: int                # global: split across `train.devices` processes
    lr: float
    lr_step: int                   # lr is divided by 10 every lr_step epochs
    momentum: float
    weight_decay: float
    keep: Literal["best", "last"]  # best: highest validation accuracy, earlier epoch on ties
    class_weights: bool            # weight the training loss by inverse class frequency
    # Where `keep: best` picks its epoch: val (the scheme's validation set, as the paper did; the
    # number reported on that set is then optimistic) | train_split (a seeded, stratified
    # `select_share` of the training set, held out from training; validation stays unseen).
    select: Literal["val", "train_split"]
    select_share: float

    def __post_init__(self):
        if self.epochs < 0:
            raise ValueError("epochs must be >= 0")
        if self.batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        if self.lr_step < 1:
            raise ValueError("lr_step must be >= 1")
        if self.lr <= 0:
            raise ValueError("lr must be > 0")
        if not 0 < self.select_share < 1:
            raise ValueError("select_share must be between 0 and 1")


@dataclass(frozen=True)
class RuntimeConfig:
    """params.yaml's `train` section: how a training stage runs (devices, determinism,
    precision), not what it trains; the stage's own section holds the training knobs."""
    devices: int                   # >1: the stage re-runs itself under torchrun with DDP
    device: Literal["auto", "cpu", "cuda"]
    deterministic: bool            # torch.use_deterministic_algorithms
    bf16: bool                     # bf16 autocast and channels_last, CUDA only

    def __post_init__(self):
        if self.devices < 1:
            raise ValueError("devices must be >= 1")
