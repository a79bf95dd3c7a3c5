"""torchvision's ResNet-18 (He et al., CVPR 2016) and its ImageNet weights: beyond the paper.

A residual network with batch normalisation, 11.2M parameters (AlexNet has 61.1M): the first
network people try after the paper's two. Its convolutions have no bias (each feeds a batch
norm); the head is ``fc``. It runs at any crop of at least 32 px (layer4 then 1x1).
"""
from __future__ import annotations

from dataclasses import dataclass

from torch import nn
from torchvision.models import ResNet18_Weights, resnet18

from . import torchvision_weights
from .shared_params import WeightsAndSize
from .entry import ModelEntry
from .input_spec import InputSpec

WEIGHTS = ResNet18_Weights.IMAGENET1K_V1


@dataclass(frozen=True)
class ResNet18Config(WeightsAndSize):
    model = "resnet18"
    min_input_size = 32   # the total stride: layer4 at least 1x1


def input_spec(cfg: ResNet18Config) -> InputSpec:
    return torchvision_weights.imagenet_input_spec(WEIGHTS, cfg.input_size)


def build(cfg: ResNet18Config, num_classes: int, imagenet: bool) -> nn.Module:
    model = torchvision_weights.initialise(resnet18(), WEIGHTS, "resnet18", imagenet)
    model.fc = nn.Linear(model.fc.in_features, num_classes)
    return model


ENTRY = ModelEntry(name="resnet18", title="ResNet-18", paper=(), config=ResNet18Config, build=build,
                   input_spec=input_spec, default_input_size=224, min_input_size=ResNet18Config.min_input_size)
