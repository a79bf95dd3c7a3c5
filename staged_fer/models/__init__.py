"""The two networks of the paper, their ImageNet weights and their input conventions.

``build_model(name, cfg)`` gives AlexNet or VGG-CNN-M-2048 with a fresh ``num_classes``-way
head in place of the 1000-way ImageNet classifier; ``input_spec(name, cfg)`` says what input
it takes. Both read params.yaml's ``models:`` section, parsed as ``ModelsConfig``.
"""
from __future__ import annotations

import logging

from torch import nn

from ..errors import PipelineError
from .alexnet import alexnet_input_spec, build_alexnet
from .caffe import load_vgg_m_imagenet
from .config import AlexNetConfig, ModelsConfig, VggMConfig
from .input_spec import InputSpec
from .vgg_m import VggM, vgg_m_input_spec

__all__ = [
    "MODEL_NAMES", "AlexNetConfig", "InputSpec", "ModelsConfig", "VggMConfig",
    "build_model", "count_parameters", "input_spec",
]

MODEL_NAMES = ("alexnet", "vgg_m")

log = logging.getLogger(__name__)


def _check_name(name: str) -> None:
    if name not in MODEL_NAMES:
        raise PipelineError(f"params.yaml: `model` is {name!r}; expected one of: {', '.join(MODEL_NAMES)}")


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def build_model(name: str, cfg: ModelsConfig, num_classes: int = 7, pretrained: bool = True) -> nn.Module:
    """The network ``name`` with a freshly initialised ``num_classes``-way head.

    With ``pretrained`` and ``models.<name>.weights: imagenet`` every layer below the head
    starts from ImageNet; ``pretrained=False`` loads nothing (for restoring a checkpoint).
    """
    _check_name(name)
    if num_classes < 1:
        raise ValueError(f"num_classes must be positive, got {num_classes}")
    if name == "alexnet":
        imagenet = pretrained and cfg.alexnet.weights == "imagenet"
        model = build_alexnet(num_classes, imagenet)
    else:
        imagenet = pretrained and cfg.vgg_m.weights == "imagenet"
        model = VggM(num_classes)
        if imagenet:
            load_vgg_m_imagenet(model, cfg.vgg_m.caffemodel_url, cfg.vgg_m.caffemodel_md5)
    head = sum(p.numel() for p in _head(model).parameters())
    log.info("%s: %s parameters (%s in the fresh %d-way head), %s", name, f"{count_parameters(model):,}",
             f"{head:,}", num_classes, "ImageNet weights" if imagenet else "random init")
    return model


def _head(model: nn.Module) -> nn.Module:
    return model.classifier[-1]


def input_spec(name: str, cfg: ModelsConfig) -> InputSpec:
    _check_name(name)
    if name == "alexnet":
        return alexnet_input_spec(cfg.alexnet.input_size)
    return vgg_m_input_spec(cfg.vgg_m.input_size)
