"""DDP on the CPU with gloo: two processes, each its shard, train like one process on the whole batch."""
import os
import socket
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import yaml
from torch import nn

from staged_fer.data.splits import Bank, Split
from staged_fer.inputs.input_params import InputConfig
from staged_fer.training.phase_params import PhaseConfig, RuntimeConfig
from staged_fer.training.distributed import SINGLE, Dist
from staged_fer.training.loop import Trainer
from tests.params_baseline import baseline_params

ROOT = Path(__file__).resolve().parents[1]
SPEC = SimpleNamespace(size=16, mean=(124.0, 116.0, 104.0), std=(58.0, 57.0, 57.0))
# resize == size and no flips: the crops carry no randomness, so one process and two see the
# same pixels and the only difference left is how each step's batch is split.
INPUT = InputConfig(resize=16, flip=False)
STAGE = PhaseConfig(data="fer28", epochs=2, batch_size=16, lr=0.05, lr_step=10, momentum=0.9,
                    weight_decay=0.0005, keep="last", class_weights=True, select="val", select_share=0.1)


def split() -> Split:
    rng = np.random.default_rng(0)

    def bank(name, n):
        labels = rng.integers(0, 7, n)
        images = rng.integers(0, 60, (n, 12, 12)).astype(np.uint8)
        for i, label in enumerate(labels):
            images[i, label:label + 2] = 230
        return Bank(name, images, labels.astype(np.int64))

    return Split("fer28", (bank("FER Training", 96),), (bank("FER PublicTest", 40),), True)


def net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 6, 3, stride=2, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(2),
                         nn.Flatten(), nn.Linear(24, 7))


def fit(ctx: Dist, devices: int):
    train = RuntimeConfig(devices=devices, device="cpu", deterministic=False, bf16=False)
    return Trainer(net(), SPEC, split(), STAGE, INPUT, train, 0, torch.device("cpu"), ctx,
                   progress=False).fit()


def worker(rank: int, world: int, port: int, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        result = fit(Dist(rank, world, rank), world)
        torch.save({"state_dict": result.state_dict, "history": result.history}, f"{out}/rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_gloo_processes_match_one_process(tmp_path):
    """About 30 s idle, over a minute on a busy 2-core box: process start-up dominates."""
    mp.start_processes(worker, args=(2, free_port(), str(tmp_path)), nprocs=2, start_method="spawn")
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(2)]
    for key in ranks[0]["state_dict"]:
        assert torch.equal(ranks[0]["state_dict"][key], ranks[1]["state_dict"][key]), key
    assert ranks[0]["history"] == ranks[1]["history"]

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        single = fit(SINGLE, 1)
    finally:
        torch.set_num_threads(threads)
    # Metrics are all-reduced over the whole validation set, weights follow the same steps.
    for got, want in zip(ranks[0]["history"], single.history):
        assert got.keys() == want.keys()
        for name in got:
            assert got[name] == pytest.approx(want[name], abs=1e-5), name
    for key, value in single.state_dict.items():
        torch.testing.assert_close(ranks[0]["state_dict"][key], value, atol=1e-5, rtol=1e-4)
    assert single.history[-1]["train_loss"] < single.history[0]["train_loss"]


def test_rank_shards_cover_the_epoch_once():
    from staged_fer.training.loop import shard
    parts = [shard(10, 123, Dist(r, 3, r)) for r in range(3)]
    assert all(len(p) == 4 for p in parts)   # padded to a multiple of the world size
    together = torch.cat(parts)
    assert set(together.tolist()) == set(range(10)) and len(together) == 12
    assert torch.equal(torch.stack(parts, 1).flatten()[:10], shard(10, 123, SINGLE))


@pytest.mark.slow
def test_stage_script_runs_itself_under_torchrun(tmp_path):
    """runtime.devices: 2 through the real script, AlexNet at 64 px (minutes on a busy CPU)."""
    import subprocess
    import sys
    from staged_fer.data.splits import save_split
    from staged_fer.models.checkpoint import Checkpoint

    save_split(tmp_path / "phase1", split(), {})
    params = baseline_params()
    params["models"]["alexnet"].update(weights="none", input_size=64)
    params["input"]["resize"] = 72
    params["phase1"].update(epochs=1, batch_size=32)
    params["runtime"].update(devices=2, device="cpu")
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    proc = subprocess.run([sys.executable, str(ROOT / "stages" / "train.py"), "phase1", "--params",
                           str(tmp_path / "params.yaml"), "--split", str(tmp_path / "phase1"),
                           "--out", str(tmp_path / "phase1.pt"), "--live", str(tmp_path / "live")],
                          capture_output=True, text=True, timeout=900,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "x2" in proc.stderr
    ckpt = Checkpoint.read(tmp_path / "phase1.pt")
    assert ckpt.epoch == 1 and len(ckpt.history) == 1
    assert (tmp_path / "live" / "metrics.json").is_file()
