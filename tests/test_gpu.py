"""The CUDA paths, on a CUDA machine (`make test-gpu`); each CUDA test is skipped with its reason elsewhere.

bf16 autocast with channels_last, the on-device input path, the folded one-channel conv1,
inference as `evaluate` runs it, NCCL DDP over two GPUs and FAN, each against its CPU or fp32
counterpart. The tests of a code path that PyTorch runs on the CPU too (bf16 autocast and
channels_last, the folded conv1) also run there, in the default suite, at a smaller size: a
wrong argument or a shape error then shows up on every machine, not first on a GPU. Comparisons that are exact in arithmetic run with TF32 off (``strict_fp32``):
TF32 rounds conv and matmul inputs to 10 mantissa bits, which would blur a check meant to
catch wrong indexing or a wrong formula; the tolerance of each check is stated where it is made.
"""
import os
import socket

import numpy as np
import pytest
import torch

from staged_fer.params import section
from staged_fer.data.splits import Bank, Split
from staged_fer.inputs.batches import DeviceImages, centre_crops, random_crops
from staged_fer.inputs.input_params import InputConfig
from staged_fer.inputs.gray import fold_gray_input
from staged_fer.labels import NUM_CLASSES
from staged_fer.models import ModelsConfig, build_model, input_spec
from staged_fer.training.phase_params import RuntimeConfig, PhaseConfig
from tests.params_baseline import baseline_params

CUDA = torch.device("cuda")
NEEDS_CUDA = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")]
# A test of a code path that runs on both: once on the CPU, once (marked gpu) on CUDA.
ON_BOTH = pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=NEEDS_CUDA)])


def needs_cuda(test):
    for mark in NEEDS_CUDA:
        test = mark(test)
    return test


@pytest.fixture
def strict_fp32():
    """TF32 off for convolutions and matmuls during the test (set by hand: the cuBLAS flag is
    not a plain attribute that monkeypatch could restore)."""
    matmul, cudnn = torch.backends.cuda.matmul, torch.backends.cudnn
    saved = matmul.allow_tf32, cudnn.allow_tf32
    matmul.allow_tf32 = cudnn.allow_tf32 = False
    yield
    matmul.allow_tf32, cudnn.allow_tf32 = saved


def models_cfg(size: int | None = None) -> ModelsConfig:
    """params.yaml's models at their real input sizes (AlexNet 227, VGG-M 224) or at ``size``, random init."""
    raw = {name: {**cfg, "weights": "none", **({"input_size": size} if size else {})}
           for name, cfg in baseline_params()["models"].items()}
    return section({"models": raw}, "models", ModelsConfig)


def faces(n: int, side: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Faces with a class-dependent bright band, so predictions depend on the image."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, NUM_CLASSES, n)
    images = rng.integers(0, 120, (n, side, side)).astype(np.uint8)
    band = side // 8
    for i, label in enumerate(labels):
        images[i, label * band:(label + 1) * band] = 220
    return images, labels.astype(np.int64)


def fer_like_split(n_train: int = 128) -> Split:
    return Split("fer28", (Bank("FER Training", *faces(n_train, 48, 0)),), (Bank("FER PublicTest", *faces(64, 48, 1)),),
                 True)


@ON_BOTH
def test_bf16_channels_last_step_matches_the_fp32_step(device):
    """AlexNet with the one-channel input, two steps: the loss within 0.02 (1% of ln 7) and the
    weight update pointing the same way (cosine > 0.99). On CUDA at 227 px, batch 64, with
    autocast as `runtime.bf16` chooses it; on the CPU, where the Trainer leaves it off unless
    told, at 96 px, batch 16."""
    from staged_fer.training.loop import Trainer
    cuda = device == "cuda"
    cfg = models_cfg(None if cuda else 96)
    spec = input_spec("alexnet", cfg)
    batch = 64 if cuda else 16
    phase = PhaseConfig("fer28", 1, batch, 0.01, 10, 0.9, 0.0005, "last", False, "val", 0.1)
    runs = {}
    for bf16 in (False, True):
        torch.manual_seed(0)
        model = build_model("alexnet", cfg, num_classes=NUM_CLASSES, pretrained=False)
        start = torch.cat([p.detach().flatten() for p in model.parameters()]).to(device)
        trainer = Trainer(model, spec, fer_like_split(2 * batch), phase, InputConfig(256, True),
                          RuntimeConfig(1, device, False, bf16), 0, torch.device(device), channels="gray",
                          autocast=None if cuda else bf16, progress=False)
        assert trainer.autocast == bf16
        x = trainer.val_data.batch(torch.arange(4), centre_crops(4, 256, spec.size), spec, 256, "gray")
        with torch.no_grad():
            assert trainer._forward(model, x).dtype == (torch.bfloat16 if bf16 else torch.float32)
        conv = next(m for m in model.modules() if isinstance(m, torch.nn.Conv2d))   # conv2 (conv1 is folded)
        assert conv.weight.is_contiguous(memory_format=torch.channels_last) == bf16
        loss, _, _ = trainer.train_one_epoch(0)
        update = torch.cat([p.detach().flatten() for p in model.parameters()]) - start
        runs[bf16] = (loss, update)
    (loss32, up32), (loss16, up16) = runs[False], runs[True]
    assert abs(loss16 - loss32) < 0.02, (loss16, loss32)
    assert torch.nn.functional.cosine_similarity(up16, up32, dim=0) > 0.99


@needs_cuda
def test_cuda_input_path_matches_the_cpu(strict_fp32):
    """The same crops and flips of 48-px and 256-px banks, on the CPU and on CUDA, to 1e-3."""
    spec = input_spec("alexnet", models_cfg())
    banks = [Bank("FER", *faces(40, 48, 0)), Bank("EmotiW", *faces(24, 256, 1))]
    cpu, gpu = DeviceImages(banks, torch.device("cpu")), DeviceImages(banks, CUDA)
    index = torch.randperm(64, generator=torch.Generator().manual_seed(0))[:48]
    for crops in (random_crops(48, 256, spec.size, True, torch.Generator().manual_seed(1)),
                  centre_crops(48, 256, spec.size)):
        for channels in ("gray", "rgb"):
            want = cpu.batch(index, crops, spec, 256, channels)
            got = gpu.batch(index, crops, spec, 256, channels)
            assert got.device.type == "cuda" and got.shape == want.shape
            assert (got.cpu() - want).abs().max().item() <= 1e-3, channels


@ON_BOTH
@pytest.mark.parametrize("name", ["alexnet", "vgg_m"])
def test_folded_one_channel_conv1_matches_the_three_channel_model(name, device, strict_fp32):
    """Logits of the folded model on the one-channel batch vs the plain model on the replicated
    batch: within 1e-4 of the logits' scale (float rounding of a different summation order)."""
    cfg = models_cfg()
    spec = input_spec(name, cfg)
    torch.manual_seed(0)
    plain = build_model(name, cfg, num_classes=NUM_CLASSES, pretrained=False).to(device).eval()
    folded = build_model(name, cfg, num_classes=NUM_CLASSES, pretrained=False)
    folded.load_state_dict(plain.state_dict())
    folded = fold_gray_input(folded, spec.mean, spec.std).to(device).eval()
    data = DeviceImages([Bank("FER", *faces(32, 48, 2))], torch.device(device))
    crops = random_crops(32, 256, spec.size, True, torch.Generator().manual_seed(3))
    index = torch.arange(32)
    with torch.no_grad():
        want = plain(data.batch(index, crops, spec, 256, "rgb"))
        got = folded(data.batch(index, crops, spec, 256, "gray"))
    scale = want.abs().max().item()
    assert (got - want).abs().max().item() <= 1e-4 * max(scale, 1e-6)


@needs_cuda
def test_evaluate_on_cuda_agrees_with_the_cpu(tmp_path):
    """`evaluate`'s Predictor, device cuda vs cpu, on 1000 faces: >= 99.5% the same class.
    It runs with the default TF32 convolutions, as the stage does."""
    from staged_fer.params import read_stage_params
    from staged_fer.evaluation.checkpoints import EvaluateParams, Predictor
    from staged_fer.models.checkpoint import Checkpoint
    params = baseline_params()
    params["models"]["alexnet"]["weights"] = "none"
    cfg = models_cfg()
    torch.manual_seed(0)
    model = build_model("alexnet", cfg, num_classes=NUM_CLASSES, pretrained=False)
    ckpt = tmp_path / "model.pt"
    Checkpoint(model="alexnet", state_dict=model.state_dict(), params=params, epoch=0,
               best_val_acc=None, history=[], synthetic=True, scheme="fer28").write(ckpt)
    images, _ = faces(1000, 48, 4)
    proba = {}
    for device in ("cpu", "cuda"):
        params["evaluate"]["device"] = device
        predictor = Predictor(read_stage_params(params, EvaluateParams), "params.yaml",
                              {"phase1": ckpt, "final": ckpt})
        assert predictor.device.type == device
        proba[device] = predictor("final", images)
    agree = (proba["cuda"].argmax(1) == proba["cpu"].argmax(1)).mean()
    assert agree >= 0.995, agree
    assert np.abs(proba["cuda"] - proba["cpu"]).max() < 0.02


# --- NCCL DDP -------------------------------------------------------------------------------

def _ddp_fit(rank: int, world: int):
    from test_training_ddp import INPUT, SPEC, STAGE, net, split
    from staged_fer.training.distributed import Dist
    from staged_fer.training.loop import Trainer
    device = torch.device("cuda", rank)
    ctx = Dist(rank, world, rank)
    train = RuntimeConfig(devices=world, device="cuda", deterministic=False, bf16=False)
    return Trainer(net(), SPEC, split(), STAGE, INPUT, train, 0, device, ctx, progress=False).fit()


def _ddp_worker(rank: int, world: int, port: int, out: str) -> None:
    import torch.distributed as dist
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.cuda.set_device(rank)
    dist.init_process_group("nccl", rank=rank, world_size=world)
    try:
        result = _ddp_fit(rank, world)
        torch.save({"state_dict": result.state_dict, "history": result.history}, f"{out}/rank{rank}.pt")
    finally:
        dist.destroy_process_group()


@needs_cuda
@pytest.mark.skipif(torch.cuda.device_count() < 2,
                    reason=f"needs 2 CUDA devices for NCCL DDP, this machine has {torch.cuda.device_count()}")
def test_two_gpus_with_nccl_match_one_gpu(tmp_path, strict_fp32):
    """The CPU test's tiny net and data (test_training_ddp.py), over NCCL: same weights to
    1e-4 (summation order differs with the split), same per-epoch metrics to 1e-4."""
    import torch.multiprocessing as mp
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.start_processes(_ddp_worker, args=(2, port, str(tmp_path)), nprocs=2, start_method="spawn")
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(2)]
    single = _ddp_fit(0, 1)
    for key, value in single.state_dict.items():
        torch.testing.assert_close(ranks[0]["state_dict"][key], ranks[1]["state_dict"][key], atol=0, rtol=0)
        torch.testing.assert_close(ranks[0]["state_dict"][key], value, atol=1e-4, rtol=1e-3)
    for got, want in zip(ranks[0]["history"], single.history):
        for name in got:
            assert got[name] == pytest.approx(want[name], abs=1e-4), name


# --- FAN ------------------------------------------------------------------------------------

@needs_cuda
def test_fan_on_cuda_gives_the_cpu_points_within_1px(fan_weights, strict_fp32, monkeypatch):
    """Random FAN weights (conftest): their heatmaps are flat enough that TF32 rounding could move
    an argmax; with fp32 on both devices the points agree within 1 px and the fits to 1e-3."""
    from faces_samples import astronaut_gray
    from staged_fer.devices import resolve_device
    from staged_fer.faces.landmarks import load_fan
    monkeypatch.setattr(torch.backends.cudnn, "benchmark", torch.backends.cudnn.benchmark)  # FAN sets it
    gray = astronaut_gray()
    boxes = [(170.25, 60.5, 120.0, 130.75), (30.0, 250.0, 150.0, 140.0), (300.5, 300.0, 90.0, 95.0)]
    cpu = load_fan("cpu")(gray, boxes)
    gpu = load_fan(resolve_device("auto", "align.device").type)(gray, boxes)
    for (p_cpu, fit_cpu), (p_gpu, fit_gpu) in zip(cpu, gpu):
        assert np.abs(p_gpu - p_cpu).max() <= 1.0
        assert abs(fit_gpu - fit_cpu) <= 1e-3
