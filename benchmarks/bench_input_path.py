"""Input-path benchmarks, each a ratio measured in this one process.

1. Training images/s with the real input path vs the same training loop fed one pre-made
   batch over and over (goal: >= 95%). Rounds alternate between the two so that load on a
   shared machine hits both alike; the ratio of medians is printed.
2. The input path alone (batches ready for the model per second) at the model's input size
   vs torchvision ImageFolder + DataLoader over the same faces written as PNGs, and vs a plain
   tensor path that resizes whole images to 256 on the device before cropping.

Faces: the first rows of the real FER-2013 when ../shared/data/fer2013.csv.gz exists, else
random 48x48 faces. Runs on CUDA when present (or --device).

    python benchmarks/bench_input_path.py [--device cpu|cuda] [--train-size 64] [--rounds 3] [--quick]
"""
from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import REPO, SHARED_DATA, count, parse, parser, positive_float, positive_int  # noqa: E402
from staged_fer.data.splits import Bank, Split  # noqa: E402
from staged_fer.inputs.batches import DeviceImages, random_crops  # noqa: E402
from staged_fer.inputs.input_params import InputConfig  # noqa: E402
from staged_fer.models import build_model, input_spec  # noqa: E402
from staged_fer.training.phase_params import RuntimeConfig, PhaseConfig  # noqa: E402
from staged_fer.training.loop import Trainer  # noqa: E402

FER_CSV = SHARED_DATA / "fer2013.csv.gz"


def load_faces(n: int) -> tuple[np.ndarray, np.ndarray, str]:
    if FER_CSV.is_file():
        import pandas as pd
        df = pd.read_csv(FER_CSV, nrows=n)
        images = np.stack([np.asarray(s.split(), dtype=np.uint8) for s in df["pixels"]]).reshape(-1, 48, 48)
        return images, df["emotion"].to_numpy(np.int64), "real FER-2013"
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (n, 48, 48), dtype=np.uint8), rng.integers(0, 7, n), "random faces"


def models_cfg(size: int):
    from staged_fer.params import load_params, section
    from staged_fer.models import ModelsConfig
    params = load_params(REPO / "params.yaml")
    raw = params["models"]
    raw = {name: {**cfg, "weights": "none", "input_size": size} for name, cfg in raw.items()}
    return section({"models": raw}, "models", ModelsConfig)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def bench_training_loop(images, labels, device, size: int, rounds: int, batch: int) -> None:
    cfg = models_cfg(size)
    spec = input_spec("alexnet", cfg)
    split = Split("fer28", (Bank("train", images, labels),), (Bank("val", images[:batch], labels[:batch]),), False)
    phase = PhaseConfig("fer28", 1, batch, 0.001, 10, 0.9, 0.0005, "last", False, "val", 0.1)
    train = RuntimeConfig(1, device.type, False, True)
    torch.manual_seed(0)
    trainer = Trainer(build_model("alexnet", cfg, pretrained=False), spec, split, phase,
                      InputConfig(resize=round(size * 256 / 227), flip=True), train, 0, device, progress=False)
    real_batch = trainer.train_data.batch
    crops = random_crops(batch, trainer.input.resize, size, True, torch.Generator().manual_seed(0))
    premade = real_batch(torch.arange(batch), crops, spec, trainer.input.resize, trainer.channels)

    in_batch = [0.0]

    def timed_batch(*args, **kwargs):
        # Synchronised so that on CUDA the time is the batch's own, not queued model work.
        sync(device)
        start = time.perf_counter()
        out = real_batch(*args, **kwargs)
        sync(device)
        in_batch[0] += time.perf_counter() - start
        return out

    def epoch(fed_premade: bool) -> float:
        trainer.train_data.batch = (lambda *a, **k: premade[:len(a[0])]) if fed_premade else real_batch
        sync(device)
        start = time.perf_counter()
        trainer.train_one_epoch(0)
        sync(device)
        return len(images) / (time.perf_counter() - start)

    epoch(False)   # warm-up: allocator, kernels, first-touch of the weights
    real, fixed = [], []
    for i in range(rounds):
        # ABBA order: a drift in machine load over the run favours neither side.
        for fed_premade in ((False, True) if i % 2 == 0 else (True, False)):
            (fixed if fed_premade else real).append(epoch(fed_premade))
    r, f = statistics.median(real), statistics.median(fixed)
    trainer.train_data.batch = timed_batch
    start = time.perf_counter()
    trainer.train_one_epoch(0)
    share = in_batch[0] / (time.perf_counter() - start)
    print(f"[1] AlexNet at {size} px, batch {batch}, {len(images)} faces/epoch, {trainer.channels} input, "
          f"{rounds} rounds on {device}:")
    print(f"    real input path {r:8.1f} img/s   pre-made batch {f:8.1f} img/s   "
          f"ratio {r / f:6.1%}  (goal >= 95%)")
    print(f"    per-round ratios: {', '.join(f'{a / b:.1%}' for a, b in zip(real, fixed))}")
    print(f"    time spent building batches in a real-path epoch: {share:.2%} "
          f"(ratio bound from it: {1 - share:.1%})")


def plain_tensor_batch(images: torch.Tensor, index, crops, spec, resize: int) -> torch.Tensor:
    """Resize whole faces to `resize` on the device, then crop, flip, replicate and normalise."""
    x = F.interpolate(images[index][:, None].float(), size=(resize, resize), mode="bilinear", align_corners=False)
    size = spec.size
    out = torch.stack([x[i, :, t:t + size, l:l + size] for i, (t, l) in enumerate(zip(crops.top.tolist(), crops.left.tolist()))])
    out = torch.where(crops.flip.to(out.device)[:, None, None, None], out.flip(-1), out)
    mean = torch.tensor(spec.mean, device=out.device)[None, :, None, None]
    std = torch.tensor(spec.std, device=out.device)[None, :, None, None]
    return (out.expand(-1, 3, -1, -1) - mean) / std


def loader_batches(loader, device):
    while True:
        for x, _ in loader:
            yield x.to(device, non_blocking=True)


def bench_input_only(images, labels, device, size: int, batch: int, seconds: float, workers: list[int]
                     ) -> dict[str, float]:
    """Prints and returns batches/s of each input path."""
    from torch.utils.data import DataLoader
    from torchvision import datasets, transforms
    from PIL import Image

    spec = input_spec("alexnet", models_cfg(size))
    resize = 256
    data = DeviceImages([Bank("train", images, labels)], device)
    gen = torch.Generator().manual_seed(0)
    n = len(images)

    def ours(channels):
        def one():
            idx = torch.randint(0, n, (batch,), generator=gen)
            return data.batch(idx, random_crops(batch, resize, size, True, gen), spec, resize, channels)
        return one

    device_images = data.groups[0]

    def plain():
        idx = torch.randint(0, n, (batch,), generator=gen)
        return plain_tensor_batch(device_images, idx.to(device), random_crops(batch, resize, size, True, gen), spec, resize)

    def rate(make) -> float:
        make()
        sync(device)
        count, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            out = make()
            count += 1
        sync(device)
        assert out.shape[-1] == size
        return count / (time.perf_counter() - start)

    results = {"on-device, 1 channel (gray, conv1 folded)": rate(ours("gray")),
               "on-device, 3 channels (replicated)": rate(ours("rgb")),
               "plain tensor path (resize all to 256, then crop)": rate(plain)}

    with tempfile.TemporaryDirectory() as tmp:
        for i, (img, label) in enumerate(zip(images, labels)):
            folder = Path(tmp) / str(int(label))
            folder.mkdir(exist_ok=True)
            Image.fromarray(img).save(folder / f"{i:05d}.png")
        tf = transforms.Compose([transforms.Resize(resize), transforms.RandomCrop(size),
                                 transforms.RandomHorizontalFlip(), transforms.ToTensor(),
                                 transforms.Normalize([m / 255 for m in spec.mean], [s / 255 for s in spec.std])])
        baselines = {}
        for w in workers:
            loader = DataLoader(datasets.ImageFolder(tmp, tf), batch_size=batch, shuffle=True, num_workers=w,
                                pin_memory=device.type == "cuda", persistent_workers=w > 0, drop_last=True)

            batches = loader_batches(loader, device)
            baselines[f"ImageFolder + DataLoader, {w} workers"] = rate(lambda batches=batches: next(batches))
            batches.close()   # stops the persistent workers before the next measurement
            del loader
    best = max(baselines.values())
    print(f"[2] input path alone at {size} px, batch {batch}, {n} faces, on {device} (batches/s):")
    for name, value in {**results, **baselines}.items():
        print(f"    {name:52s} {value:9.2f}   x{value / best:6.2f} vs best ImageFolder")
    return {**results, **baselines}


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--device", choices=["cpu", "cuda"], default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--train-size", type=positive_int, default=64, help="AlexNet input size for benchmark 1")
    p.add_argument("--train-faces", type=positive_int, default=512)
    p.add_argument("--train-batch", type=positive_int, default=64)
    p.add_argument("--rounds", type=positive_int, default=3)
    p.add_argument("--input-faces", type=positive_int, default=1024)
    p.add_argument("--input-batch", type=positive_int, default=128)
    p.add_argument("--seconds", type=positive_float, default=8.0, help="per measurement of benchmark 2")
    p.add_argument("--workers", type=count, nargs="+", default=[0, 2])
    p.add_argument("--threads", type=count, default=0, help="torch threads (0: leave the default)")
    p.add_argument("--only", choices=["1", "2"], default=None)
    args = parse(p, {"train_faces": 64, "train_batch": 16, "rounds": 1, "input_faces": 64, "input_batch": 16,
                     "seconds": 0.2, "workers": [0, 1]})
    if args.device == "cuda" and not torch.cuda.is_available():
        p.error("--device cuda: no CUDA device is available")
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    images, labels, source = load_faces(max(args.train_faces, args.input_faces))
    print(f"faces: {source}; torch {torch.__version__}, {torch.get_num_threads()} threads, device {device}"
          + (f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else ""))
    if args.only in (None, "1"):
        bench_training_loop(images[:args.train_faces], labels[:args.train_faces], device, args.train_size,
                            args.rounds, args.train_batch)
    if args.only in (None, "2"):
        bench_input_only(images[:args.input_faces], labels[:args.input_faces], device, 227, args.input_batch,
                         args.seconds, args.workers)


if __name__ == "__main__":
    main()
