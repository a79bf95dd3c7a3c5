"""GPU slots: concurrently running experiments each get GPUs of their own.

DVC gives the workers of its queue no device of their own, so without this every run would
use GPU 0. `make grid GPUS=0,1,2,3` runs the experiments with ``STAGED_FER_GPUS=0,1,2,3`` in
their environment. A training or evaluation stage then takes ``k`` free ids of that list (k is
`runtime.devices` for training, 1 for evaluate) before CUDA starts, by holding an exclusive
``flock`` on one file per id in a folder every run on the box shares (``STAGED_FER_GPU_LOCKS``,
by default ``<tmp>/staged_fer-gpu-locks``), and sets ``CUDA_VISIBLE_DEVICES`` to them. It
waits while fewer than k are free rather than share. The kernel drops a process's locks when
it ends, however it ends, so a killed run never blocks the next; nothing of DVC's is read.

Without ``STAGED_FER_GPUS`` nothing is taken and a stage sees the devices its environment
shows. Without CUDA the ids are slots only: they still keep concurrent runs apart (and are
recorded), while the stage runs on the CPU as `auto` says.
"""
from __future__ import annotations

import fcntl
import json
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from .errors import PipelineError

ENV_GPUS = "STAGED_FER_GPUS"
ENV_LOCKS = "STAGED_FER_GPU_LOCKS"
# The grant of the process that took the slots, for the torchrun workers it starts.
ENV_GRANT = "STAGED_FER_GPU_GRANT"
# Seconds between tries while every slot is taken: a training phase holds its slot for minutes.
POLL_S = 2.0

_held: list[int] = []   # lock files kept open (so locked) until the process ends


def parse_ids(text: str, where: str) -> tuple[str, ...]:
    """The GPU ids of a comma-separated list such as ``0,1,2,3``; ``where`` names its source."""
    ids = tuple(part.strip() for part in text.split(","))
    bad = [i for i in ids if not i.isdigit()]
    if not text.strip() or bad:
        raise PipelineError(f"{where}={text!r}: expected GPU ids as in CUDA_VISIBLE_DEVICES, e.g. 0,1,2,3")
    if len(set(ids)) != len(ids):
        raise PipelineError(f"{where}={text!r}: an id is listed twice")
    return ids


def lock_dir() -> Path:
    return Path(os.environ.get(ENV_LOCKS) or Path(tempfile.gettempdir()) / "staged_fer-gpu-locks")


def _try_lock(path: Path) -> int | None:
    # Read-only and world-readable: another user's runs on the box open the same files.
    fd = os.open(path, os.O_RDONLY | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def take(ids: Sequence[str], k: int, folder: Path, *, poll_s: float = POLL_S,
         on_wait: Callable[[], None] | None = None) -> tuple[tuple[str, ...], list[int]]:
    """Lock ``k`` of ``ids`` (the first free ones), waiting while fewer are free; returns the
    ids and the open lock files, which hold the locks until closed or the process ends.

    All ``k`` are taken at once or none is held: two runs that each wait for a second slot
    while holding one would wait for ever."""
    if k > len(ids):
        raise PipelineError(f"{ENV_GPUS}={','.join(ids)}: a run needs {k} GPUs but only {len(ids)} are listed")
    try:
        folder.mkdir(parents=True)
        folder.chmod(0o1777)   # like /tmp: every user's runs add their lock files
    except FileExistsError:
        pass
    waited = False
    while True:
        got: list[tuple[str, int]] = []
        for gpu in ids:
            fd = _try_lock(folder / f"gpu{gpu}.lock")
            if fd is not None:
                got.append((gpu, fd))
                if len(got) == k:
                    return tuple(g for g, _ in got), [fd for _, fd in got]
        for _, fd in got:
            os.close(fd)
        if not waited and on_wait is not None:
            on_wait()
        waited = True
        time.sleep(poll_s)


@dataclass(frozen=True)
class Grant:
    ids: tuple[str, ...]              # as in CUDA_VISIBLE_DEVICES
    names: tuple[str, ...] | None     # the devices' names; None without CUDA (slots only)
    taken_at: float                   # seconds since the epoch

    def record(self) -> dict:
        return {"ids": list(self.ids), "names": None if self.names is None else list(self.names),
                "cuda": self.names is not None, "taken_at": round(self.taken_at, 3)}


def held(record: dict | None) -> dict | None:
    """``record`` with ``held_until``: now, while its slots are still held. [taken_at, held_until]
    lies within the time the run held them, so two runs whose spans overlap held theirs at once."""
    return None if record is None else {**record, "held_until": round(time.time(), 3)}


def acquire(k: int, what: str, cpu_only: bool) -> dict | None:
    """Take ``k`` GPU slots for this process when ``STAGED_FER_GPUS`` lists some; returns the
    grant's record for the run's reports, or None when no slots are in use.

    Call before anything asks torch about CUDA: ``CUDA_VISIBLE_DEVICES`` is read once, then.
    ``cpu_only``: the params put the stage on the CPU, so it needs no GPU. A torchrun worker
    returns the grant its launcher took."""
    if ENV_GRANT in os.environ:
        return json.loads(os.environ[ENV_GRANT])
    listed = os.environ.get(ENV_GPUS)
    if not listed or cpu_only:
        return None
    ids = parse_ids(listed, ENV_GPUS)
    folder = lock_dir()
    start = time.time()
    got, fds = take(ids, k, folder, on_wait=lambda: print(
        f"{what}: waiting for {k} free GPU(s) of {','.join(ids)} (locks in {folder})", file=sys.stderr, flush=True))
    waited = time.time() - start
    _held.extend(fds)
    os.environ["CUDA_VISIBLE_DEVICES"] = ",".join(got)
    import torch   # after CUDA_VISIBLE_DEVICES: torch reads it when CUDA starts
    cuda = torch.cuda.is_available()
    names = tuple(torch.cuda.get_device_name(i) for i in range(len(got))) if cuda else None
    grant = Grant(got, names, start + waited)
    print(f"{what}: GPU {','.join(got)}" + (f" ({', '.join(names)})" if cuda else
                                            " (no CUDA here: a slot only; the stage runs on the CPU)")
          + (f" after waiting {waited:.0f} s" if waited >= 1 else ""), file=sys.stderr, flush=True)
    record = grant.record()
    os.environ[ENV_GRANT] = json.dumps(record)
    return record


def check_listed(ids: Sequence[str], per_run: int) -> None:
    """Before anything is queued: PipelineError when a run needs more GPUs than ``ids`` lists or,
    where CUDA is present, an id names no GPU of this machine; without CUDA, one line saying
    the ids are slots only."""
    listed = ",".join(ids)
    if per_run > len(ids):
        raise PipelineError(f"GPUS={listed}: each run needs {per_run} GPUs (`runtime.devices`) but only "
                            f"{len(ids)} are listed")
    import torch
    if not torch.cuda.is_available():
        print(f"GPUS={listed}: no CUDA here, so the ids are slots only: at most {len(ids) // per_run} runs "
              f"at a time, each training on the CPU (`runtime.device: auto`)", file=sys.stderr)
        return
    if "CUDA_VISIBLE_DEVICES" in os.environ:
        raise PipelineError(f"GPUS={listed} and CUDA_VISIBLE_DEVICES={os.environ['CUDA_VISIBLE_DEVICES']} "
                            f"are both set: GPUS ids are the machine's, so unset CUDA_VISIBLE_DEVICES")
    count = torch.cuda.device_count()
    unknown = [i for i in ids if int(i) >= count]
    if unknown:
        raise PipelineError(f"GPUS={listed}: GPU {unknown[0]} is not one of the {count} this machine shows "
                            f"(ids 0-{count - 1})")
