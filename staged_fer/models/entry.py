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
class ModelEntry:
    name: str                  # the value of params.yaml's `model` and the key of its `models:` section
    title: str                 # how reports name it
    in_paper: bool             # one of Ng et al.'s networks: the grid runs it by default
    config: type               # frozen dataclass of `models.<name>`; has `weights` and `input_size`
    # (config, num_classes, imagenet) -> the network with a fresh num_classes-way head; with
    # imagenet=False every layer is He-initialised (models/init.py), nothing is loaded.
    build: Callable[[Any, int, bool], nn.Module]
    input_spec: Callable[[Any], InputSpec]   # config -> the input the network takes
    default_input_size: int    # the side the network was trained on ImageNet at (params.yaml's default)
    min_input_size: int        # the smallest crop whose feature maps reach the classifier
