"""Train-step throughput (images/s) of both networks at their real input size.

Each measurement is the Trainer's own step (forward, cross-entropy, backward, SGD) on one
pre-made batch, for the one-channel input with conv1 folded and for the replicated
three-channel input, so the printed ratio says which the pipeline should feed. The optimizer
step alone is also timed fused (what training uses) against PyTorch's default foreach step. On CUDA it
uses bf16 autocast and channels_last as training does, reports peak GPU memory, and
estimates the wall time of the paper's grid (12 runs of 30 epochs over FER28-sized data).

    python benchmarks/bench_train_step.py [--device cpu|cuda] [--batch 32] [--steps 3] [--quick]
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import REPO, count, parse, parser, positive_int  # noqa: E402
from staged_fer.params import load_params, section  # noqa: E402
from staged_fer.inputs.gray import fold_gray_input  # noqa: E402
from staged_fer.models import MODEL_NAMES, ModelsConfig, build_model, count_parameters, input_spec  # noqa: E402
from staged_fer.training.phase_params import PhaseConfig  # noqa: E402
from staged_fer.training.loop import sgd  # noqa: E402

# Images one grid run sees: FER28 Training + PublicTest validation per epoch, 30 epochs; the
# grid is 12 runs (6 schemes x 2 models), phase-2 EmotiW runs being ~30x smaller.
GRID_IMAGES = 12 * 30 * (28709 + 3589 / 3)   # validation forward costs about a third of a step


def step_rate(name: str, cfg, phase: PhaseConfig, device: torch.device, batch: int, steps: int, channels: str,
              bf16: bool) -> tuple[float, float]:
    spec = input_spec(name, cfg)
    torch.manual_seed(0)
    model = build_model(name, cfg, pretrained=False)
    if channels == "gray":
        fold_gray_input(model, spec.mean, spec.std)
    model.to(device).train()
    if bf16:
        model.to(memory_format=torch.channels_last)
    opt = sgd(model.parameters(), phase)
    x = torch.randn(batch, 1 if channels == "gray" else 3, spec.size, spec.size, device=device)
    if bf16:
        x = x.contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 7, (batch,), device=device)

    def step():
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            logits = model(x)
        loss = F.cross_entropy(logits.float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
    start = time.perf_counter()
    for _ in range(steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    rate = batch * steps / (time.perf_counter() - start)
    peak = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else float("nan")
    return rate, peak


def optimizer_ratio(name: str, cfg, phase: PhaseConfig, device: torch.device, steps: int) -> float:
    """Fused SGD steps per second over foreach ones, on the same weights and gradients."""
    model = build_model(name, cfg, pretrained=False).to(device)
    for p in model.parameters():
        p.grad = torch.randn_like(p)
    rates = {}
    for _ in range(2):   # alternating rounds: load on a shared machine hits both alike
        for fused in (False, True):
            opt = sgd(model.parameters(), phase, fused=fused)
            opt.step()
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            start = time.perf_counter()
            for _ in range(steps):
                opt.step()
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            rates.setdefault(fused, []).append(steps / (time.perf_counter() - start))
    return max(rates[True]) / max(rates[False])


def main() -> None:
    p = parser(__doc__)
    cuda = torch.cuda.is_available()
    p.add_argument("--device", choices=["cpu", "cuda"], default="cuda" if cuda else "cpu")
    p.add_argument("--batch", type=positive_int, default=128 if cuda else 16)
    p.add_argument("--steps", type=positive_int, default=30 if cuda else 2)
    p.add_argument("--no-bf16", action="store_true", help="fp32 on CUDA too (the CPU always runs fp32)")
    p.add_argument("--threads", type=count, default=0)
    p.add_argument("--models", nargs="+", choices=MODEL_NAMES, default=["alexnet", "vgg_m"])
    args = parse(p, {"batch": 2, "steps": 1, "models": ["alexnet"]})
    if args.device == "cuda" and not cuda:
        p.error("--device cuda: no CUDA device is available")
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    params = load_params(REPO / "params.yaml")
    raw = {n: {**c, "weights": "none"} for n, c in params["models"].items()}
    cfg = section({"models": raw}, "models", ModelsConfig)
    phase = section(params, "phase1", PhaseConfig)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {device}"
          + (f" ({torch.cuda.get_device_name(device)}), bf16 {not args.no_bf16}" if device.type == "cuda" else "")
          + f"; batch {args.batch}, {args.steps} timed steps after one warm-up")
    for name in args.models:
        spec = input_spec(name, cfg)
        rates = {}
        for channels in ("gray", "rgb"):
            rates[channels], peak = step_rate(name, cfg, phase, device, args.batch, args.steps, channels,
                                              device.type == "cuda" and not args.no_bf16)
            mem = f", peak GPU memory {peak:.2f} GiB" if device.type == "cuda" else ""
            print(f"[3] {name:8s} {spec.size} px, {channels:4s} input: {rates[channels]:9.1f} img/s{mem}")
        params_m = count_parameters(build_model(name, cfg, pretrained=False)) / 1e6
        print(f"    {name}: {params_m:.1f}M parameters; 1-channel folded / 3-channel = "
              f"{rates['gray'] / rates['rgb']:.2f}x; optimizer step fused / foreach = "
              f"{optimizer_ratio(name, cfg, phase, device, max(args.steps, 3)):.2f}x")
        if device.type == "cuda":
            print(f"    paper grid (12 runs x 30 epochs) with {name} at this rate: "
                  f"{GRID_IMAGES / rates['gray'] / 60:.1f} min")


if __name__ == "__main__":
    main()
