"""Each network's input convention as data.

The training input path keeps faces as uint8 and normalises whole batches on the device, so it
needs each model's convention as numbers rather than as a torchvision transform:
``normalised = (pixel - mean) / std`` with ``pixel`` in 0..255 and channels in
``channel_order``. Faces are grey, replicated to the three channels (or folded into conv1 by
staged_fer.inputs.gray).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch


@dataclass(frozen=True)
class InputSpec:
    size: int                                # side of the square crop the network takes
    mean: tuple[float, float, float]         # per channel, in 0..255 units, in channel_order
    std: tuple[float, float, float]          # per channel, in 0..255 units, in channel_order
    channel_order: Literal["RGB"]            # the order conv1's input channels are in

    def normalize(self, images: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) pixels in 0..255 (any float or integer dtype) to the network's input."""
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"expected a (N, 3, H, W) batch, got shape {tuple(images.shape)}")
        dtype = images.dtype if images.is_floating_point() else torch.float32
        mean = torch.tensor(self.mean, dtype=dtype, device=images.device).view(1, 3, 1, 1)
        std = torch.tensor(self.std, dtype=dtype, device=images.device).view(1, 3, 1, 1)
        return (images.to(dtype) - mean) / std
