"""VGG-CNN-M-2048 (Chatfield et al., BMVC 2014) as released in Caffe.

Layer for layer the released deploy prototxt: conv1 96@7x7/2, ReLU, LRN, max-pool 3/2;
conv2 256@5x5/2 pad 1, ReLU, LRN, max-pool 3/2; conv3-5 512@3x3 pad 1 with ReLU; max-pool 3/2;
fc6 4096 and fc7 2048, each with ReLU and dropout 0.5. Caffe rounds pooled sizes up, hence
``ceil_mode=True`` (at 224 the maps are 109, 54, 26, 13, 13 and 6). Modules are named after the
Caffe layers so that the converter can map blobs by name.
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import torch
from torch import nn

from ..io import MD5_HEX
from .caffe import load_vgg_m_imagenet
from .shared_params import Weights, check_input_size
from .entry import ModelEntry, PaperResult
from .init import he_init
from .input_spec import InputSpec

# Caffe's LRN (ACROSS_CHANNELS) divides by (k + alpha/n * sum of squares)^beta, as
# torch.nn.LocalResponseNorm does, so the prototxt's values carry over unchanged.
LRN_SIZE, LRN_ALPHA, LRN_BETA, LRN_K = 5, 0.0005, 0.75, 2.0

# The VGG group's ILSVRC-2012 mean pixel, published as BGR (103.939, 116.779, 123.68) with its
# Caffe releases (e.g. the VGG_ILSVRC_16_layers model-zoo entry); the CNN-M release ships the
# mean image of the same training set (VGG_mean.binaryproto) instead. conv1 is flipped to RGB
# on conversion, so the values are listed here in RGB order.
MEAN_PIXEL_RGB = (123.68, 116.779, 103.939)
# From random weights the pixels are also divided by ImageNet's pixel std (torchvision's, in
# 0..255 units), so that He init's unit-scale assumption holds. On raw pixels (std about 50)
# every activation starts 50x too large: pool5 came out 10x AlexNet's, fc6 then learned about
# 100x faster than the convolutions, and from-scratch training either blew up at lr 0.01 or
# crawled at 0.005. The Caffe weights were trained on raw pixels and keep them.
SCRATCH_STD_RGB = (58.395, 57.12, 57.375)

POOL5_SIZE = 6
MIN_INPUT_SIZE = 41   # pool5 at least 1x1


@dataclass(frozen=True)
class VggMConfig:
    weights: Weights
    input_size: int
    caffemodel_url: str
    caffemodel_md5: str | None  # None: accept any file and log its MD5

    def __post_init__(self) -> None:
        check_input_size(self.input_size, "vgg_m", MIN_INPUT_SIZE)
        md5 = self.caffemodel_md5
        if md5 is not None and not (MD5_HEX.fullmatch(md5) and md5 == md5.lower()):
            raise ValueError(
                f"caffemodel_md5 {md5!r} is not 32 lower-case hex digits (or null to accept any file)")


def input_spec(cfg: VggMConfig) -> InputSpec:
    std = (1.0, 1.0, 1.0) if cfg.weights == "imagenet" else SCRATCH_STD_RGB
    return InputSpec(size=cfg.input_size, mean=MEAN_PIXEL_RGB, std=std, channel_order="RGB")


class VggM(nn.Module):
    def __init__(self, num_classes: int = 1000) -> None:
        super().__init__()
        # Layers are made on the meta device and initialised once, by reset_parameters:
        # PyTorch's default init of fc6's 75M weights would cost seconds only to be overwritten.
        device = torch.get_default_device()
        with torch.device("meta"):
            self._make_layers(num_classes)
        self.to_empty(device=device)
        self.reset_parameters()

    def _make_layers(self, num_classes: int) -> None:
        self.features = nn.Sequential(OrderedDict([
            ("conv1", nn.Conv2d(3, 96, kernel_size=7, stride=2)),
            ("relu1", nn.ReLU(inplace=True)),
            ("norm1", nn.LocalResponseNorm(LRN_SIZE, LRN_ALPHA, LRN_BETA, LRN_K)),
            ("pool1", nn.MaxPool2d(3, stride=2, ceil_mode=True)),
            ("conv2", nn.Conv2d(96, 256, kernel_size=5, stride=2, padding=1)),
            ("relu2", nn.ReLU(inplace=True)),
            ("norm2", nn.LocalResponseNorm(LRN_SIZE, LRN_ALPHA, LRN_BETA, LRN_K)),
            ("pool2", nn.MaxPool2d(3, stride=2, ceil_mode=True)),
            ("conv3", nn.Conv2d(256, 512, kernel_size=3, padding=1)),
            ("relu3", nn.ReLU(inplace=True)),
            ("conv4", nn.Conv2d(512, 512, kernel_size=3, padding=1)),
            ("relu4", nn.ReLU(inplace=True)),
            ("conv5", nn.Conv2d(512, 512, kernel_size=3, padding=1)),
            ("relu5", nn.ReLU(inplace=True)),
            ("pool5", nn.MaxPool2d(3, stride=2, ceil_mode=True)),
        ]))
        # The identity at 224 (pool5 is already 6x6); it lets smaller crops reach fc6.
        self.avgpool = nn.AdaptiveAvgPool2d(POOL5_SIZE)
        self.classifier = nn.Sequential(OrderedDict([
            ("fc6", nn.Linear(512 * POOL5_SIZE * POOL5_SIZE, 4096)),
            ("relu6", nn.ReLU(inplace=True)),
            ("drop6", nn.Dropout(0.5)),
            ("fc7", nn.Linear(4096, 2048)),
            ("relu7", nn.ReLU(inplace=True)),
            ("drop7", nn.Dropout(0.5)),
            ("fc8", nn.Linear(2048, num_classes)),
        ]))

    def reset_parameters(self) -> None:
        he_init(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.avgpool(self.features(x))
        return self.classifier(torch.flatten(x, 1))


def build(cfg: VggMConfig, num_classes: int, imagenet: bool) -> nn.Module:
    model = VggM(num_classes)
    if imagenet:
        load_vgg_m_imagenet(model, cfg.caffemodel_url, cfg.caffemodel_md5)
    return model


# EmotiW val / test accuracy in % (Figure 3).
PAPER = (PaperResult("fer28", 42.9, 47.0, "S2"), PaperResult("fer32", 44.1, 51.1, "S6"),
         PaperResult("fer32-target", 46.9, 52.2, "S9"), PaperResult("fer28-to-target", 47.8, 52.1, "S5"),
         PaperResult("fer32-to-target", 47.3, 53.8, "S8"))

ENTRY = ModelEntry(name="vgg_m", title="VGG-CNN-M-2048", paper=PAPER, config=VggMConfig, build=build,
                   input_spec=input_spec, default_input_size=224, min_input_size=MIN_INPUT_SIZE)
