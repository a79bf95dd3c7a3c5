"""The measurements of the device check (benchmarks/gpu_check.sh), printed as one table.

On CUDA: the input path at 227 px against ImageFolder + DataLoader (8 workers); train-step
images/s of AlexNet at 227 and VGG-M at 224 (bf16, channels_last, batch 128); one real
phase-1 epoch of AlexNet at 227 px on the real FER-2013 in ../shared (time, GPU memory peak);
and the wall time of the paper's 12-run grid projected from those figures. Without CUDA each
measurement runs once at a token size on the CPU, so that the script's every line has run
before it meets a GPU, and its row reads "skipped: no CUDA"; --quick does the same on CUDA.

    python benchmarks/gpu_check.py [--tests "<make test-gpu summary line>"] [--quick]
"""
from __future__ import annotations

import gzip
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_input_path import bench_input_only, load_faces, models_cfg, sync  # noqa: E402
from bench_train_step import step_rate  # noqa: E402
from benchmarks.common import REPO as ROOT, SHARED_DATA, parse, parser  # noqa: E402
from staged_fer.params import load_params, read_stage_params, section  # noqa: E402
from staged_fer.data.fer_decode import decode_fer_buffer  # noqa: E402
from staged_fer.data.splits import SplitsParams, build_split  # noqa: E402
from staged_fer.evaluation.grid import RECIPES  # noqa: E402
from staged_fer.inputs.input_params import InputConfig  # noqa: E402
from staged_fer.models import PAPER_MODELS as MODELS, ModelsConfig, build_model, input_spec  # noqa: E402
from staged_fer.training.phase_params import RuntimeConfig, PhaseConfig  # noqa: E402
from staged_fer.training.loop import Trainer  # noqa: E402

FER_GZ = SHARED_DATA / "fer2013.csv.gz"
TARGET_TRAIN = 921   # SFEW 2.0 training faces (the paper's count); the grid's phase 2 and FER32+EmotiW


def load_fer(per_usage: int | None) -> dict[str, np.ndarray] | None:
    """The real FER-2013 decoded by the pipeline's own decoder; ``per_usage``: its first rows of each Usage."""
    if not FER_GZ.is_file():
        return None
    raw = np.frombuffer(gzip.decompress(FER_GZ.read_bytes()), dtype=np.uint8).copy()
    arrays, _ = decode_fer_buffer(raw, str(FER_GZ))
    if per_usage is not None:
        keep = np.concatenate([np.flatnonzero(arrays["usage"] == u)[:per_usage] for u in np.unique(arrays["usage"])])
        arrays = {k: v[np.sort(keep)] for k, v in arrays.items()}
    return arrays


def real_epoch(fer: dict, device: torch.device, batch: int) -> dict[str, float]:
    """One phase-1 epoch (train + validation) of AlexNet at 227 px on FER28, as train_phase1 runs it."""
    params = load_params(ROOT / "params.yaml")
    split = build_split("fer28", read_stage_params(params, SplitsParams).schemes["fer28"], {"fer": fer})
    cfg = models_cfg(227)
    phase = section({"phase1": {**params["phase1"], "batch_size": batch}}, "phase1", PhaseConfig)
    train = RuntimeConfig(1, device.type, False, True)
    torch.manual_seed(0)
    trainer = Trainer(build_model("alexnet", cfg, pretrained=False), input_spec("alexnet", cfg), split, phase,
                      InputConfig(256, True), train, 0, device, progress=False)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    sync(device)
    start = time.perf_counter()
    trainer.train_one_epoch(0)
    trainer.evaluate()
    sync(device)
    seconds = time.perf_counter() - start
    peak = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else float("nan")
    n_train = sum(len(b) for b in split.train)
    return {"seconds": seconds, "train": n_train, "val": sum(len(b) for b in split.val), "peak_gib": peak,
            "per_train_image": seconds / n_train}


def grid_hours(per_image: dict[str, float], fer: dict) -> float:
    """The 12 runs' training time: every epoch of both phases at the measured seconds per training
    image (validation included, in FER28's proportion), `evaluate` and start-up left out."""
    params = load_params(ROOT / "params.yaml")
    usage = fer["usage"]
    fer28 = int((usage == "Training").sum())
    fer32 = fer28 + int((usage == "PublicTest").sum())
    phase1 = {"fer28": fer28, "fer32": fer32, "fer32_target": fer32 + TARGET_TRAIN, "none": 0}
    phase2 = {"target": TARGET_TRAIN, "none": 0}
    total = 0.0
    for model in MODELS:
        for recipe in RECIPES:
            images = (params["phase1"]["epochs"] * phase1[recipe.phase1]
                      + params["phase2"]["epochs"] * phase2[recipe.phase2])
            total += images * per_image[model]
    return total / 3600


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--tests", default="(not run)", help="the summary line of `make test-gpu`")
    args = parse(p, {})
    cuda = torch.cuda.is_available()
    device = torch.device("cuda" if cuda else "cpu")
    full = cuda and not args.quick   # below, each size is (full run, token run)
    skipped = "skipped: --quick" if cuda else "skipped: no CUDA"
    if cuda:
        torch.backends.cudnn.benchmark = True
        print(f"device: {torch.cuda.get_device_name(device)}, torch {torch.__version__}", flush=True)
    if not full:
        print(f"device: {device}; every measurement runs once at a token size", flush=True)
    rows: list[tuple[str, str]] = [("make test-gpu", args.tests)]

    # Input path alone at 227 px, batch 256, vs ImageFolder + DataLoader with 8 workers.
    images, labels, source = load_faces(4096 if full else 64)
    rates = bench_input_only(images, labels, device, 227, 256 if full else 16, 5.0 if full else 0.2,
                             [8] if full else [0])
    ours = rates["on-device, 1 channel (gray, conv1 folded)"]
    folder = next(v for k, v in rates.items() if k.startswith("ImageFolder"))
    rows.append((f"input path 227 px, batch 256 ({source}): on-device / ImageFolder+DataLoader 8 workers",
                 f"{ours * 256:,.0f} / {folder * 256:,.0f} img/s = x{ours / folder:.1f}" if full else skipped))

    # Train steps, bf16 + channels_last, batch 128, the one-channel input training uses on CUDA
    # (the token run takes the same path through CPU autocast).
    params = load_params(ROOT / "params.yaml")
    cfg = section({"models": {n: {**c, "weights": "none"} for n, c in params["models"].items()}}, "models",
                  ModelsConfig)
    phase = section(params, "phase1", PhaseConfig)
    step = {}
    for name in MODELS:
        rate, peak = step_rate(name, cfg, phase, device, 128 if full else 2, 30 if full else 1, "gray", True)
        step[name] = rate
        size = input_spec(name, cfg).size
        rows.append((f"train step {name} {size} px, bf16, channels_last, batch 128",
                     f"{rate:,.0f} img/s, peak {peak:.2f} GiB" if full else skipped))

    # One real phase-1 epoch on FER-2013.
    fer = load_fer(None if full else 32)
    if fer is None:
        rows.append(("phase-1 epoch, AlexNet 227 px, real FER-2013", f"skipped: {FER_GZ} not found"))
        rows.append(("paper grid (12 runs), projected", "skipped: no epoch measured"))
    else:
        epoch = real_epoch(fer, device, 128 if full else 32)
        rows.append((f"phase-1 epoch, AlexNet 227 px, real FER28 ({epoch['train']:,} train + {epoch['val']:,} val)",
                     f"{epoch['seconds']:.1f} s, peak {epoch['peak_gib']:.2f} GiB" if full else skipped))
        # VGG-M's epoch scaled from AlexNet's by their train-step rates.
        per_image = {m: epoch["per_train_image"] * step["alexnet"] / step[m] for m in MODELS}
        hours = grid_hours(per_image, fer)
        rows.append(("paper grid (12 runs x 30+30 epochs), projected training time",
                     f"{hours:.2f} h on one GPU" if full else skipped))

    width = max(len(name) for name, _ in rows)
    print()
    print(f"| {'measurement':{width}} | result |")
    print(f"|{'-' * (width + 2)}|--------|")
    for name, value in rows:
        print(f"| {name:{width}} | {value} |")


if __name__ == "__main__":
    main()
