"""params.yaml's `input` section, read by the training phases and by evaluation."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class InputConfig:
    """How faces become model input: resized to `resize`, then cropped to the model's size."""
    resize: int
    flip: bool

    def __post_init__(self):
        if self.resize < 1:
            raise ValueError("resize must be >= 1")
