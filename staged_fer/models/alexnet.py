"""torchvision's AlexNet (the one-tower variant, 61.1M parameters) and its ImageNet weights."""
from __future__ import annotations

from dataclasses import dataclass

from torch import nn
from torchvision.models import AlexNet, AlexNet_Weights

from . import torchvision_weights
from .shared_params import WeightsAndSize
from .entry import ModelEntry, PaperResult
from .input_spec import InputSpec

WEIGHTS = AlexNet_Weights.IMAGENET1K_V1


@dataclass(frozen=True)
class AlexNetConfig(WeightsAndSize):
    model = "alexnet"
    min_input_size = 63   # pool5 at least 1x1


def input_spec(cfg: AlexNetConfig) -> InputSpec:
    return torchvision_weights.imagenet_input_spec(WEIGHTS, cfg.input_size)


def build(cfg: AlexNetConfig, num_classes: int, imagenet: bool) -> nn.Module:
    model = torchvision_weights.initialise(AlexNet(), WEIGHTS, "alexnet", imagenet)
    old = model.classifier[6]
    model.classifier[6] = nn.Linear(old.in_features, num_classes)
    return model


# EmotiW val / test accuracy in % (Figure 3). The figure does not label AlexNet's two-stage bars;
# S3 and S7 follow the text, which compares S1 with S3 (and VGG-CNN-M's S6 with S8) as single
# against double fine-tuning.
PAPER = (PaperResult("fer28", 46.9, 54.0, "S1"), PaperResult("fer28-to-target", 48.5, 55.6, "S3"),
         PaperResult("fer32-to-target", 44.1, 50.5, "S7"))

ENTRY = ModelEntry(name="alexnet", title="AlexNet", paper=PAPER, config=AlexNetConfig, build=build,
                   input_spec=input_spec, default_input_size=227, min_input_size=AlexNetConfig.min_input_size)
