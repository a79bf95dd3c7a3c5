"""The training loop: the paper's SGD on the on-device input path, DDP-aware and resumable.

Randomness: at the start of epoch ``e`` the shuffling order is drawn from (seed, e) (the same
on every rank, which then takes its strided shard, as DistributedSampler does) and the crops,
flips and dropout of rank ``r`` from (seed, e, r). The state at an epoch boundary therefore
fully determines the rest of the run, which is what makes resuming exact.

Losses: training minimises cross-entropy (weighted per class with ``class_weights``);
validation reports the unweighted mean cross-entropy and accuracy of the centre crops.
"""
from __future__ import annotations

import hashlib
import sys
import time
from dataclasses import dataclass, field
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from ..data.splits import Split
from ..errors import PipelineError
from ..inputs.batches import (Channels, DeviceImages, SpecLike, centre_crops, check_resize, image_bytes,
                              place_images, preferred_channels, random_crops)
from ..inputs.input_params import InputConfig
from ..inputs.gray import fold_gray_input, unfold_gray_input
from ..labels import NUM_CLASSES
from .phase_params import PhaseConfig, RuntimeConfig
from .distributed import SINGLE, Dist, all_sum, barrier
from .resume import ResumeStore


def derive_seed(seed: int, *parts: object) -> int:
    digest = hashlib.sha256(repr((seed,) + parts).encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def lr_at(phase: PhaseConfig, epoch: int) -> float:
    """The paper's schedule: lr divided by 10 every ``lr_step`` epochs (epoch counted from 0)."""
    return phase.lr * 0.1 ** (epoch // phase.lr_step)


def sgd(parameters, phase: PhaseConfig, fused: bool = True) -> torch.optim.SGD:
    """The paper's solver: SGD with momentum and weight decay, as one fused kernel per step.

    The default (foreach) step walks the weights several times (decay, momentum, update); the
    fused kernel reads and writes each weight once. With AlexNet's 57M weights on the CPU that
    is about 6x less time per optimizer step, a third of a 64-px training step; the results
    agree to float rounding (benchmarks/bench_train_step.py prints both).
    """
    return torch.optim.SGD(parameters, lr=phase.lr, momentum=phase.momentum,
                           weight_decay=phase.weight_decay, fused=fused, foreach=None if fused else True)


def class_weights(labels: torch.Tensor) -> torch.Tensor:
    """n / (K * n_k) for the K classes present, so the mean weight over samples is 1.

    An absent class gets 0: no training sample carries it, so it never enters the loss.
    """
    counts = torch.bincount(labels, minlength=NUM_CLASSES).to(torch.float32)
    present = int((counts > 0).sum())
    return torch.where(counts > 0, len(labels) / (present * counts.clamp(min=1)), 0.0)


def shard(n: int, epoch_seed: int, ctx: Dist) -> torch.Tensor:
    """This rank's indices for one epoch: a permutation padded to a multiple of the world size."""
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(epoch_seed))
    if ctx.world > 1:
        pad = (-n) % ctx.world
        perm = torch.cat([perm, perm[:pad]])
        perm = perm[ctx.rank::ctx.world]
    return perm


class BatchTooLarge(Exception):
    """The configured batch ran out of GPU memory at the first step; ``fits`` is the largest
    halving of it whose step ran (0: not even one image per device)."""

    def __init__(self, batch_size: int, fits: int):
        super().__init__(f"batch {batch_size} runs out of GPU memory; {fits} fits")
        self.batch_size, self.fits = batch_size, fits


@dataclass
class FitResult:
    state_dict: dict[str, torch.Tensor]   # the kept epoch's weights (CPU)
    epoch: int                            # the kept epoch, counted from 1 (0: untrained)
    best_val_acc: float | None            # the highest validation accuracy of any epoch
    history: list[dict[str, float]] = field(default_factory=list)


def _cpu_state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}


@dataclass
class Trainer:
    model: nn.Module
    spec: SpecLike
    split: Split
    phase: PhaseConfig
    input: InputConfig
    runtime: RuntimeConfig      # devices, precision
    seed: int
    device: torch.device
    ctx: Dist = SINGLE
    store: ResumeStore | None = None
    on_epoch: Callable[[dict[str, float]], None] | None = None   # rank 0: logging of each epoch
    channels: Channels | None = None                             # None: preferred_channels(device)
    # bf16 autocast with channels_last weights. None: `runtime.bf16` on CUDA, off on the CPU, where
    # bf16 is no faster than fp32 and would change the CPU's (the demo's) results; the tests
    # turn it on there to run this code path without a GPU.
    autocast: bool | None = None
    progress: bool = True
    memory_budget: int | None = None   # bytes for resident faces; None: half the device's free memory

    def __post_init__(self):
        check_resize(self.input.resize, self.spec.size)
        if self.channels is None:
            self.channels = preferred_channels(self.device)
        # Resident on the device when the faces fit its memory, else streamed per batch from
        # the face store: the same batches either way.
        self.train_data, line = place_images(self.split.train, self.device, image_bytes(self.split.val),
                                             self.memory_budget)
        resident = image_bytes(self.split.train) if type(self.train_data) is DeviceImages else 0
        self.val_data, val_line = place_images(self.split.val, self.device, resident, self.memory_budget)
        if self.ctx.main:
            print(f"training faces: {line}\nvalidation faces: {val_line}", file=sys.stderr)
        self.cuda = self.device.type == "cuda"
        if self.autocast is None:
            self.autocast = self.cuda and self.runtime.bf16
        if self.channels == "gray":
            fold_gray_input(self.model, self.spec.mean, self.spec.std)
        self.model.to(self.device)
        if self.autocast:
            self.model.to(memory_format=torch.channels_last)
        self.net = self.model
        if self.ctx.active:
            self.net = DistributedDataParallel(self.model, device_ids=[self.device] if self.cuda else None)
        self.optimizer = sgd(self.model.parameters(), self.phase)
        self.loss_weight = class_weights(self.train_data.labels.cpu()).to(self.device) \
            if self.phase.class_weights else None
        if self.phase.batch_size % self.ctx.world:
            raise PipelineError(f"params.yaml: batch_size {self.phase.batch_size} does not split evenly "
                                f"over runtime.devices={self.ctx.world}")
        self.local_batch = self.phase.batch_size // self.ctx.world
        self._stepped = False   # the first step checks that the batch fits in GPU memory

    def _forward(self, net: nn.Module, x: torch.Tensor) -> torch.Tensor:
        if self.autocast:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.autocast):
            return net(x)

    def _step(self, net: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Forward, loss and backward of one batch (the optimizer steps after): (logits, loss)."""
        logits = self._forward(net, x)
        loss = F.cross_entropy(logits.float(), y, reduction="none")
        if self.loss_weight is not None:
            # Divided by the sample count, not the weight sum, so the mean of the ranks'
            # losses (what DDP's gradient averaging takes) is the loss of the whole batch.
            loss = loss * self.loss_weight[y]
        loss = loss.mean()
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        return logits, loss

    def _first_step(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The run's first step, where a batch too large for the GPU shows: BatchTooLarge then."""
        try:
            out = self._step(self.net, x, y)
        except torch.cuda.OutOfMemoryError:
            out = None   # probed below, once this handler has let go of the failed step's tensors
        if out is None:
            raise BatchTooLarge(self.phase.batch_size, self._fitting_batch(x, y) * self.ctx.world)
        self._stepped = True
        return out

    def _fitting_batch(self, x: torch.Tensor, y: torch.Tensor) -> int:
        """The largest halving of this process's batch whose step fits in memory (0: none).

        Runs on the plain model, so a DDP rank probes alone, without collectives.
        """
        size = len(x) // 2
        while size >= 1:
            self.optimizer.zero_grad(set_to_none=True)
            if self.cuda:
                torch.cuda.empty_cache()
            try:
                self._step(self.model, x[:size], y[:size])
                return size
            except torch.cuda.OutOfMemoryError:
                size //= 2
        return 0

    def train_one_epoch(self, epoch: int) -> tuple[float, float, float]:
        """(mean loss, accuracy, images per second of this rank) of one pass over the shard."""
        torch.manual_seed(derive_seed(self.seed, "dropout", epoch, self.ctx.rank))
        crop_gen = torch.Generator().manual_seed(derive_seed(self.seed, "crops", epoch, self.ctx.rank))
        index = shard(len(self.train_data), derive_seed(self.seed, "order", epoch), self.ctx)
        for group in self.optimizer.param_groups:
            group["lr"] = lr_at(self.phase, epoch)
        self.net.train()
        sums = torch.zeros(3, dtype=torch.float64, device=self.device)   # loss, correct, count
        sums_count = 0
        started = time.perf_counter()
        # Closed on an error too, so that a stage's one-line error starts a line of its own.
        with tqdm(total=len(index), unit="img", unit_scale=True, leave=False, file=sys.stderr,
                  desc=f"epoch {epoch + 1}/{self.phase.epochs}",
                  disable=not (self.progress and self.ctx.main)) as bar:
            for start in range(0, len(index), self.local_batch):
                idx = index[start:start + self.local_batch]
                crops = random_crops(len(idx), self.input.resize, self.spec.size, self.input.flip, crop_gen)
                x = self.train_data.batch(idx, crops, self.spec, self.input.resize, self.channels)
                y = self.train_data.labels[idx.to(self.device)]
                logits, loss = self._step(self.net, x, y) if self._stepped else self._first_step(x, y)
                self.optimizer.step()
                with torch.no_grad():   # accumulated on the device: no host sync per batch
                    sums[0] += loss.detach().double() * len(idx)
                    sums[1] += (logits.argmax(1) == y).sum()
                sums_count += len(idx)
                bar.update(len(idx))
        sums[2] = sums_count
        all_sum(sums, self.ctx)
        seconds = time.perf_counter() - started
        loss_sum, correct, count = sums.tolist()
        return loss_sum / count, correct / count, len(index) / max(seconds, 1e-9)

    @torch.no_grad()
    def evaluate(self) -> tuple[float, float]:
        """(mean cross-entropy, accuracy) on the centre crops of the validation set, all ranks."""
        self.model.eval()
        n = len(self.val_data)
        index = torch.arange(self.ctx.rank, n, self.ctx.world)
        sums = torch.zeros(3, dtype=torch.float64, device=self.device)
        for start in range(0, len(index), self.local_batch):
            idx = index[start:start + self.local_batch]
            crops = centre_crops(len(idx), self.input.resize, self.spec.size)
            x = self.val_data.batch(idx, crops, self.spec, self.input.resize, self.channels)
            y = self.val_data.labels[idx.to(self.device)]
            logits = self._forward(self.model, x).float()
            sums[0] += F.cross_entropy(logits, y, reduction="sum").double()
            sums[1] += (logits.argmax(1) == y).sum()
        sums[2] = len(index)
        all_sum(sums, self.ctx)
        loss_sum, correct, count = sums.tolist()
        return loss_sum / count, correct / count

    def fit(self) -> FitResult:
        history: list[dict[str, float]] = []
        best_acc, best_epoch, best_state = None, 0, None
        first = 0
        resumed = self.store.load() if self.store is not None else None
        if resumed is not None:
            state, best_state = resumed
            self.model.load_state_dict(state["model"])
            self.optimizer.load_state_dict(state["optimizer"])
            history, first = list(state["history"]), state["epoch"]
            best_acc, best_epoch = state["best_val_acc"], state["best_epoch"]
            if self.ctx.main:
                print(f"resuming after epoch {first} from {self.store.dir}", file=sys.stderr)
        if self.on_epoch is not None and self.ctx.main:
            for entry in history:
                self.on_epoch(entry)
        for epoch in range(first, self.phase.epochs):
            started = time.perf_counter()
            train_loss, train_acc, rate = self.train_one_epoch(epoch)
            val_loss, val_acc = self.evaluate()
            entry = {"epoch": epoch + 1, "lr": lr_at(self.phase, epoch), "train_loss": train_loss,
                     "train_acc": train_acc, "val_loss": val_loss, "val_acc": val_acc}
            history.append(entry)
            improved = best_acc is None or val_acc > best_acc   # ties keep the earlier epoch
            if improved:
                best_acc, best_epoch = val_acc, epoch + 1
                if self.phase.keep == "best":
                    best_state = _cpu_state(self.model)
            if self.ctx.main:
                print(f"epoch {epoch + 1}/{self.phase.epochs}: lr {entry['lr']:.2g} train loss "
                      f"{train_loss:.4f} acc {train_acc:.4f} | val loss {val_loss:.4f} acc {val_acc:.4f} "
                      f"| {time.perf_counter() - started:.1f} s, {rate * self.ctx.world:.0f} img/s",
                      file=sys.stderr)
                if self.on_epoch is not None:
                    self.on_epoch(entry)
                # After the last epoch the checkpoint itself is written next: saving the
                # state (model, momentum, best weights) too would only cost time.
                if self.store is not None and epoch + 1 < self.phase.epochs:
                    self.store.save({"epoch": epoch + 1, "model": _cpu_state(self.model),
                                     "optimizer": self.optimizer.state_dict(), "history": history,
                                     "best_val_acc": best_acc, "best_epoch": best_epoch},
                                    best_state if improved and self.phase.keep == "best" else None)
            barrier(self.ctx)
        if self.channels == "gray":
            unfold_gray_input(self.model)
        if self.phase.keep == "best" and best_state is not None:
            return FitResult(best_state, best_epoch, best_acc, history)
        return FitResult(_cpu_state(self.model), len(history), best_acc, history)
