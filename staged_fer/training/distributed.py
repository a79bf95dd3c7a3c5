"""Multi-process data parallelism: the stage re-runs itself under torchrun when devices > 1.

The launcher lives in the stage script rather than in dvc.yaml's command so that one command
(``python stages/train.py phase1 ...``) serves every ``runtime.devices`` value: DVC reruns the
stage when the param changes, and a user can run the script by hand the same way.
"""
from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from typing import Sequence

import torch
import torch.distributed as dist

from ..devices import resolve_device
from ..errors import PipelineError
from .phase_params import RuntimeConfig

# Set by torchrun in every process it starts.
_RANK_ENV = ("RANK", "WORLD_SIZE", "LOCAL_RANK")


@dataclass(frozen=True)
class Dist:
    rank: int
    world: int
    local_rank: int

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world > 1


SINGLE = Dist(0, 1, 0)


def under_torchrun() -> bool:
    return all(k in os.environ for k in _RANK_ENV)


def relaunch_under_torchrun(cfg: RuntimeConfig, script: str, argv: Sequence[str]) -> int | None:
    """Run ``script argv`` under torchrun with ``cfg.devices`` processes and return its exit code.

    None when no relaunch is needed (one device, or already a torchrun worker).
    """
    if cfg.devices == 1 or under_torchrun():
        return None
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone",
           f"--nproc_per_node={cfg.devices}", script, *argv]
    return subprocess.run(cmd).returncode


def pick_device(cfg: RuntimeConfig, local_rank: int = 0) -> torch.device:
    if resolve_device(cfg.device, "runtime.device").type == "cpu":
        return torch.device("cpu")
    if cfg.devices > torch.cuda.device_count():
        raise PipelineError(f"params.yaml: `runtime.devices` is {cfg.devices} but this machine has "
                            f"{torch.cuda.device_count()} CUDA devices")
    return torch.device("cuda", local_rank)


def start(cfg: RuntimeConfig) -> tuple[Dist, torch.device]:
    """Join the process group when running under torchrun; pick this process's device."""
    if not under_torchrun() or int(os.environ["WORLD_SIZE"]) == 1:
        return SINGLE, pick_device(cfg)
    ctx = Dist(int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]), int(os.environ["LOCAL_RANK"]))
    if ctx.world != cfg.devices:
        raise PipelineError(f"params.yaml: `runtime.devices` is {cfg.devices} but torchrun started "
                            f"{ctx.world} processes")
    device = pick_device(cfg, ctx.local_rank)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return ctx, device


def stop(ctx: Dist) -> None:
    if ctx.active and dist.is_initialized():
        dist.destroy_process_group()


def all_sum(values: torch.Tensor, ctx: Dist) -> torch.Tensor:
    if ctx.active:
        dist.all_reduce(values, op=dist.ReduceOp.SUM)
    return values


def barrier(ctx: Dist) -> None:
    if ctx.active:
        dist.barrier()
