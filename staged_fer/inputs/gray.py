"""Grayscale input without replicating it: conv1 applied to one channel, exactly.

Faces are grayscale but ImageNet models expect three normalised channels
``x_c = (g - mean_c) / std_c``. With the one-channel input ``x = (g - m) / s`` (m, s the means
of the channel means and stds), ``x_c = x * s / std_c + (m - mean_c) / std_c`` inside the image
and 0 in conv1's zero padding, so

    conv1(x_1, x_2, x_3) = conv(x, sum_c W_c s / std_c) + conv(ones, sum_c W_c (m - mean_c) / std_c) + b

where ``ones`` is 1 inside the image and 0-padded like the input: the second term is a single
one-image convolution that restores the borders exactly. The three-channel weights stay the
parameters (same names, so state dicts are interchangeable with the plain model); only the
batch conv1 reads one channel, and the input path writes a third of the bytes.
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn


class GrayConv(nn.Module):
    """A drop-in replacement for a 3-channel first ``nn.Conv2d`` that reads (B, 1, H, W)."""

    def __init__(self, conv: nn.Conv2d, mean: Sequence[float], std: Sequence[float]):
        super().__init__()
        if conv.in_channels != 3 or conv.groups != 1 or conv.padding_mode != "zeros":
            raise ValueError("GrayConv needs a plain 3-channel conv with zero padding")
        if isinstance(conv.padding, str):
            raise ValueError("GrayConv needs numeric padding")
        self.weight = conv.weight
        self.bias = conv.bias
        self.stride, self.padding, self.dilation = conv.stride, conv.padding, conv.dilation
        mean_t = torch.tensor(mean, dtype=torch.float32)
        std_t = torch.tensor(std, dtype=torch.float32)
        m, s = mean_t.mean(), std_t.mean()
        # Not persistent: the state dict keeps exactly the plain conv's entries.
        self.register_buffer("scale", (s / std_t)[None, :, None, None], persistent=False)
        self.register_buffer("shift", ((m - mean_t) / std_t)[None, :, None, None], persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w1 = (self.weight * self.scale).sum(1, keepdim=True)
        k = (self.weight * self.shift).sum(1, keepdim=True)
        y = F.conv2d(x, w1, self.bias, self.stride, self.padding, self.dilation)
        ones = torch.ones(1, 1, *x.shape[-2:], device=x.device, dtype=k.dtype)
        return y + F.conv2d(ones, k, None, self.stride, self.padding, self.dilation)


def first_conv(model: nn.Module) -> tuple[nn.Module, str, nn.Conv2d]:
    """The parent, attribute name and module of the first 3-channel ``nn.Conv2d``."""
    for parent in model.modules():
        for name, child in parent.named_children():
            if isinstance(child, nn.Conv2d) and child.in_channels == 3:
                return parent, name, child
    raise ValueError("the model has no 3-channel Conv2d to read grayscale input")


def fold_gray_input(model: nn.Module, mean: Sequence[float], std: Sequence[float]) -> nn.Module:
    """Make ``model`` read one-channel input (in place); its state dict keys do not change."""
    parent, name, conv = first_conv(model)
    setattr(parent, name, GrayConv(conv, mean, std))
    return model


def unfold_gray_input(model: nn.Module) -> nn.Module:
    """Undo ``fold_gray_input`` (in place), giving back a plain 3-channel conv1."""
    for parent in model.modules():
        for name, child in parent.named_children():
            if isinstance(child, GrayConv):
                conv = nn.Conv2d(3, child.weight.shape[0], child.weight.shape[-2:], child.stride,
                                 child.padding, child.dilation, bias=child.bias is not None,
                                 device=child.weight.device, dtype=child.weight.dtype)
                conv.weight = child.weight
                conv.bias = child.bias
                setattr(parent, name, conv)
                return model
    return model
