"""The input path: whole image banks as uint8 tensors on the device, batches built there.

A training crop is defined as torchvision's ``Resize(resize)`` -> ``RandomCrop(size)`` ->
``RandomHorizontalFlip``, but computed without ever materialising the resized image: the crop
box in the ``resize`` frame is mapped back to the bank's native resolution (FER 48, EmotiW 256)
and resampled once, straight to ``size``. Bilinear resampling along an axis-aligned box is
separable, so a batch is two batched matrix products with per-sample interpolation matrices
(``rows @ image @ cols.T``) whose rows hold two non-zero weights; the flip is the column
matrix reversed. When the bank is already at ``resize`` the crop is a gather. Normalisation
happens at native resolution (48x48 values instead of size x size): interpolation weights sum
to one, so normalising before or after resampling gives the same numbers.

Sampling uses the same coordinates as ``F.interpolate(mode="bilinear", align_corners=False)``
(source = (dst + 0.5) * scale - 0.5, clamped to the image), which is what torchvision's
Resize does when upsampling. When a bank is larger than ``resize`` no antialiasing is applied.

Faces are grayscale. ``channels="gray"`` yields one channel, ``(g - m) / s`` with the mean of
the model's three channel means and stds; ``gray.GrayConv`` then applies conv1 to it exactly as
to the replicated three-channel input. ``channels="rgb"`` yields the replicated, per-channel
normalised three channels a plain model expects.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol, Sequence

import numpy as np
import torch

Channels = Literal["gray", "rgb"]


class SpecLike(Protocol):
    size: int
    mean: Sequence[float]   # per channel, 0..255 units
    std: Sequence[float]


@dataclass(frozen=True)
class Crops:
    """Crop offsets in the ``resize`` frame (top, left) and horizontal flips, one per sample."""
    top: torch.Tensor     # (B,) int64
    left: torch.Tensor    # (B,) int64
    flip: torch.Tensor    # (B,) bool


def random_crops(n: int, resize: int, size: int, flip: bool, generator: torch.Generator) -> Crops:
    span = resize - size + 1
    top = torch.randint(0, span, (n,), generator=generator)
    left = torch.randint(0, span, (n,), generator=generator)
    flips = (torch.rand(n, generator=generator) < 0.5) if flip else torch.zeros(n, dtype=torch.bool)
    return Crops(top, left, flips)


def centre_crops(n: int, resize: int, size: int) -> Crops:
    # torchvision's CenterCrop offset: round((resize - size) / 2).
    off = int(round((resize - size) / 2.0))
    full = torch.full((n,), off, dtype=torch.int64)
    return Crops(full, full.clone(), torch.zeros(n, dtype=torch.bool))


def interpolation_matrices(offset: torch.Tensor, flip: torch.Tensor | None, side: int, resize: int,
                           size: int) -> torch.Tensor:
    """(B, size, side) bilinear weights taking a native axis of length ``side`` to a crop axis."""
    device = offset.device
    j = torch.arange(size, device=device, dtype=torch.float64)
    if flip is not None:
        j = torch.where(flip[:, None], (size - 1) - j, j)
    else:
        j = j.expand(len(offset), size)
    src = (offset[:, None].to(torch.float64) + j + 0.5) * (side / resize) - 0.5
    src = src.clamp(0, side - 1)
    i0 = src.floor().to(torch.int64)
    i1 = (i0 + 1).clamp(max=side - 1)
    w1 = (src - i0).to(torch.float32)[..., None]
    # Built by comparison rather than scatter_add_, which has no deterministic CUDA kernel.
    cols = torch.arange(side, device=device)
    return (1 - w1) * (cols == i0[..., None]) + w1 * (cols == i1[..., None])


def _crop_group(images: torch.Tensor, crops: Crops, resize: int, size: int, mean: float, std: float
                ) -> torch.Tensor:
    """(B, S, S) uint8 on the device -> (B, size, size) float32, ``(pixel - mean) / std``."""
    side = images.shape[-1]
    device = images.device
    top, left, flip = (t.to(device, non_blocking=True) for t in (crops.top, crops.left, crops.flip))
    if side == resize:
        rows = top[:, None] + torch.arange(size, device=device)
        cols = left[:, None] + torch.arange(size, device=device)
        cols = torch.where(flip[:, None], cols.flip(1), cols)
        b = torch.arange(len(images), device=device)[:, None, None]
        picked = images[b, rows[:, :, None], cols[:, None, :]]
        return (picked.to(torch.float32) - mean) / std
    x = (images.to(torch.float32) - mean) / std
    ry = interpolation_matrices(top, None, side, resize, size)
    rx = interpolation_matrices(left, flip, side, resize, size)
    return torch.bmm(ry, torch.bmm(x, rx.transpose(1, 2)))


class DeviceImages:
    """Labelled grayscale faces from several banks (possibly of different sides) on one device."""

    def __init__(self, banks: Sequence, device: torch.device):
        self.device = torch.device(device)
        sides = sorted({int(b.images.shape[-1]) for b in banks})
        self.groups: list[torch.Tensor] = []
        group_of, local_of, labels = [], [], []
        for g, side in enumerate(sides):
            members = [b for b in banks if b.images.shape[-1] == side]
            stacked = np.concatenate([np.asarray(b.images, dtype=np.uint8) for b in members])
            self.groups.append(torch.from_numpy(stacked).to(self.device))
        counts = {g: 0 for g in range(len(sides))}
        for b in banks:
            g = sides.index(int(b.images.shape[-1]))
            n = len(b.labels)
            group_of.append(np.full(n, g, dtype=np.int64))
            local_of.append(np.arange(counts[g], counts[g] + n, dtype=np.int64))
            counts[g] += n
            labels.append(np.asarray(b.labels, dtype=np.int64))
        self.sides = sides
        self.group_of = torch.from_numpy(np.concatenate(group_of)).to(self.device)
        self.local_of = torch.from_numpy(np.concatenate(local_of)).to(self.device)
        self.labels = torch.from_numpy(np.concatenate(labels)).to(self.device)

    def __len__(self) -> int:
        return len(self.labels)

    def batch(self, index: torch.Tensor, crops: Crops, spec: SpecLike, resize: int,
              channels: Channels) -> torch.Tensor:
        """Images ``index`` cropped by ``crops``: (B, 1, size, size) for gray, (B, 3, ...) for rgb."""
        index = index.to(self.device)
        size = spec.size
        mean = float(np.mean(spec.mean)) if channels == "gray" else 0.0
        std = float(np.mean(spec.std)) if channels == "gray" else 1.0
        if len(self.groups) == 1:
            out = _crop_group(self.groups[0][self.local_of[index]], crops, resize, size, mean, std)
        else:
            out = torch.empty(len(index), size, size, device=self.device)
            group = self.group_of[index].cpu()
            for g, images in enumerate(self.groups):
                rows = torch.nonzero(group == g).flatten()
                if len(rows) == 0:
                    continue
                part = Crops(crops.top[rows], crops.left[rows], crops.flip[rows])
                local = self.local_of[index[rows.to(self.device)]]
                out[rows.to(self.device)] = _crop_group(images[local], part, resize, size, mean, std)
        out = out[:, None]
        if channels == "rgb":
            m = torch.tensor(spec.mean, device=self.device, dtype=torch.float32)[None, :, None, None]
            s = torch.tensor(spec.std, device=self.device, dtype=torch.float32)[None, :, None, None]
            out = torch.addcmul(-m / s, out, 1 / s)   # one pass writing the three channels
        return out


def preferred_channels(device: torch.device) -> Channels:
    """The faster of two numerically equivalent inputs on ``device``.

    On the CPU, conv1's forward and weight gradient take about 1.5x as long with one input
    channel as with three (oneDNN; AlexNet's and VGG-M's conv1 at batch 16), more than the
    one-channel input path saves, which is under 1% of a training step there. On CUDA conv1's
    channels are padded for the tensor cores either way and the one-channel batch is a third
    of the bytes; benchmarks/bench_train_step.py prints both ratios on either device.
    """
    return "gray" if torch.device(device).type == "cuda" else "rgb"


def check_resize(resize: int, size: int) -> None:
    from ..errors import PipelineError
    if size > resize:
        raise PipelineError(f"params.yaml: `input.resize` ({resize}) is smaller than the model's "
                            f"input_size ({size}); crops are taken inside the resized face")
