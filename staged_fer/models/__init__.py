"""The networks, their ImageNet weights and their input conventions, read from the registry.

``build_model(name, cfg)`` gives a registered network with a fresh ``num_classes``-way head in
place of the 1000-way ImageNet classifier; ``input_spec(name, cfg)`` says what input it takes.
Both read params.yaml's ``models:`` section, parsed as ``ModelsConfig`` (one field per model).
"""
from __future__ import annotations

import logging

from torch import nn

from .input_spec import InputSpec
from .registry import MODEL_NAMES, MODELS, PAPER_MODELS, ModelName, ModelsConfig, entry

__all__ = [
    "MODELS", "MODEL_NAMES", "PAPER_MODELS", "InputSpec", "ModelName", "ModelsConfig",
    "build_model", "count_parameters", "entry", "head", "input_spec",
]

log = logging.getLogger(__name__)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def head(model: nn.Module) -> nn.Linear:
    """The classifier: the last fully connected layer (``classifier[-1]``, ResNet's ``fc``...)."""
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise ValueError(f"{type(model).__name__} has no nn.Linear classifier")
    return linears[-1]


def build_model(name: str, cfg: ModelsConfig, num_classes: int = 7, pretrained: bool = True) -> nn.Module:
    """The network ``name`` with a freshly initialised ``num_classes``-way head.

    With ``pretrained`` and ``models.<name>.weights: imagenet`` every layer below the head
    starts from ImageNet; ``pretrained=False`` loads nothing (for restoring a checkpoint).
    """
    model_entry = entry(name)
    if num_classes < 1:
        raise ValueError(f"num_classes must be positive, got {num_classes}")
    model_cfg = getattr(cfg, name)
    imagenet = pretrained and model_cfg.weights == "imagenet"
    model = model_entry.build(model_cfg, num_classes, imagenet)
    fresh = head(model)
    if fresh.out_features != num_classes:
        raise AssertionError(f"{name}: the builder left a {fresh.out_features}-way head, not {num_classes}")
    log.info("%s: %s parameters (%s in the fresh %d-way head), %s", name, f"{count_parameters(model):,}",
             f"{sum(p.numel() for p in fresh.parameters()):,}", num_classes,
             "ImageNet weights" if imagenet else "random init")
    return model


def input_spec(name: str, cfg: ModelsConfig) -> InputSpec:
    return entry(name).input_spec(getattr(cfg, name))
