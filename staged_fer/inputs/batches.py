"""The input path: whole image banks as uint8 tensors on the device, batches built there.

A training crop is defined as torchvision's ``Resize(resize)`` -> ``RandomCrop(size)`` ->
``RandomHorizontalFlip``, but computed without ever materialising the resized image: the crop
box in the ``resize`` frame is mapped back to the bank's native resolution (FER 48, target 256)
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

import os
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
        self.members = [[b for b in banks if b.images.shape[-1] == side] for side in sides]
        group_of, local_of, labels = [], [], []
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
        self.groups = self._place()

    def _place(self) -> list[torch.Tensor]:
        """Each side's faces, stacked on the device."""
        return [torch.from_numpy(np.concatenate([np.asarray(b.images, dtype=np.uint8) for b in members]))
                .to(self.device) for members in self.members]

    def _rows(self, g: int, local: torch.Tensor) -> torch.Tensor:
        """(B, S, S) uint8 on the device: rows ``local`` of side group ``g``."""
        return self.groups[g][local]

    def __len__(self) -> int:
        return len(self.labels)

    def batch(self, index: torch.Tensor, crops: Crops, spec: SpecLike, resize: int,
              channels: Channels) -> torch.Tensor:
        """Images ``index`` cropped by ``crops``: (B, 1, size, size) for gray, (B, 3, ...) for rgb."""
        index = index.to(self.device)
        size = spec.size
        mean = float(np.mean(spec.mean)) if channels == "gray" else 0.0
        std = float(np.mean(spec.std)) if channels == "gray" else 1.0
        if len(self.sides) == 1:
            out = _crop_group(self._rows(0, self.local_of[index]), crops, resize, size, mean, std)
        else:
            out = torch.empty(len(index), size, size, device=self.device)
            group = self.group_of[index].cpu()
            for g in range(len(self.sides)):
                rows = torch.nonzero(group == g).flatten()
                if len(rows) == 0:
                    continue
                part = Crops(crops.top[rows], crops.left[rows], crops.flip[rows])
                local = self.local_of[index[rows.to(self.device)]]
                out[rows.to(self.device)] = _crop_group(self._rows(g, local), part, resize, size, mean, std)
        out = out[:, None]
        if channels == "rgb":
            m = torch.tensor(spec.mean, device=self.device, dtype=torch.float32)[None, :, None, None]
            s = torch.tensor(spec.std, device=self.device, dtype=torch.float32)[None, :, None, None]
            out = torch.addcmul(-m / s, out, 1 / s)   # one pass writing the three channels
        return out


class StreamedImages(DeviceImages):
    """The same faces and batches as :class:`DeviceImages`, but left where the banks keep them
    (the memory-mapped face store, a decoded file): each batch reads its rows and moves them
    to the device as it is built. The crops then run on the very same uint8 values, so the
    batches, and the training that follows, are the same numbers."""

    def _place(self) -> list[torch.Tensor]:
        self.starts = [np.cumsum([0] + [len(b.labels) for b in members]) for members in self.members]
        return []

    def _rows(self, g: int, local: torch.Tensor) -> torch.Tensor:
        local = local.cpu().numpy()
        members, starts = self.members[g], self.starts[g]
        out = np.empty((len(local), self.sides[g], self.sides[g]), np.uint8)
        which = np.searchsorted(starts, local, side="right") - 1
        for m in np.unique(which):
            at = np.flatnonzero(which == m)
            out[at] = members[m].images[local[at] - starts[m]]
        return torch.from_numpy(out).to(self.device, non_blocking=True)


def image_bytes(banks: Sequence) -> int:
    return sum(len(b.labels) * int(np.prod(b.images.shape[1:])) for b in banks)


def host_available() -> tuple[int, str]:
    """Bytes of host memory available to a new allocation, and how that was measured."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024, "MemAvailable"
    except OSError:
        pass
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"), "free pages"


def place_images(banks: Sequence, device: torch.device, other: int = 0,
                 budget: int | None = None) -> tuple[DeviceImages, str]:
    """The banks on ``device`` when they fit in half its free memory (beside ``other`` bytes
    placed there too), else streamed from where they are; with the line that says which.
    ``budget`` (bytes) replaces the measured half."""
    device = torch.device(device)
    need = image_bytes(banks)
    if budget is None:
        if device.type == "cuda":
            free, how = torch.cuda.mem_get_info(device)[0], "free GPU memory"
        else:
            free, how = host_available()
        budget, how = free // 2, f"half the {how}"
    else:
        how = "given"
    gib = 2 ** 30
    if need + other <= budget:
        return DeviceImages(banks, device), (f"{need / gib:.2f} GiB of faces on {device} "
                                             f"(budget {budget / gib:.2f} GiB, {how})")
    return StreamedImages(banks, device), (f"{need / gib:.2f} GiB of faces streamed from disk to {device} "
                                           f"per batch: more than the budget of {budget / gib:.2f} GiB ({how})")


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
