"""The params sections only the training phases read: `phase1`/`phase2` (the training knobs)
and `runtime` (how a phase runs: ``RuntimeConfig``). `input`, which evaluation reads too, is
staged_fer/inputs/input_params.py."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class PhaseConfig:
    """One training phase (`phase1` or `phase2`); the paper's SGD with a step schedule."""
    data: str                      # the split scheme; build_splits checks the name
    epochs: int
    batch_size: int                # global: split across `runtime.devices` processes
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
    """params.yaml's `runtime` section: how a training phase runs (devices, determinism,
    precision), not what it trains; the phase's own section holds the training knobs."""
    devices: int                   # >1: the phase's stage re-runs itself under torchrun with DDP
    device: Literal["auto", "cpu", "cuda"]
    deterministic: bool            # torch.use_deterministic_algorithms
    bf16: bool                     # bf16 autocast and channels_last, CUDA only

    def __post_init__(self):
        if self.devices < 1:
            raise ValueError("devices must be >= 1")
