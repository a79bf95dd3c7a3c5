"""What a model module registers: one ``ModelEntry`` named ``ENTRY``.

Everything outside the model's own module (params validation, building, the input path, the
grid, the report, evaluation) reads these fields, so a new network is one module that defines
them plus its section under ``models:`` in params.yaml.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from torch import nn

from .input_spec import InputSpec


@dataclass(frozen=True)
class PaperResult:
    """What Ng et al. (ICMI 2015, Figure 3) report for a network fine-tuned on one cell of the
    grid: EmotiW val and test accuracy in %, and the challenge submission it was."""
    recipe: str                # the grid's name of the phase-1 and phase-2 data, e.g. "fer28-to-target"
    val: float
    test: float
    submission: str            # "S1" ... "S9"


@dataclass(frozen=True)
class ModelEntry:
    name: str                  # the value of params.yaml's `model` and the key of its `models:` section
    title: str                 # how reports name it
    # Ng et al.'s numbers for it, one per cell they report; empty for a network the paper did not run.
    paper: tuple[PaperResult, ...]
    config: type               # frozen dataclass of `models.<name>`; has `weights` and `input_size`
    # (config, num_classes, imagenet) -> the network with a fresh num_classes-way head; with
    # imagenet=False every layer is He-initialised (models/init.py), nothing is loaded.
    build: Callable[[Any, int, bool], nn.Module]
    input_spec: Callable[[Any], InputSpec]   # config -> the input the network takes
    default_input_size: int    # the side the network was trained on ImageNet at (params.yaml's default)
    min_input_size: int        # the smallest crop whose feature maps reach the classifier

    @property
    def in_paper(self) -> bool:
        """One of Ng et al.'s networks: the grid and the demo run it by default."""
        return bool(self.paper)

    def paper_result(self, recipe: str) -> PaperResult | None:
        """What the paper reports for this network on ``recipe``; None where it reports nothing."""
        return next((r for r in self.paper if r.recipe == recipe), None)
