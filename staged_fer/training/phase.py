"""The two training phases end to end: params in, checkpoint and DVCLive metrics out.

Phase 1 fine-tunes the ImageNet model on its split; with scheme ``none`` it writes the
ImageNet-initialised model unchanged (epoch 0, empty history) so that phase 2 starts from
ImageNet. Phase 2 fine-tunes the phase-1 checkpoint on the target set; with scheme ``none`` it writes
the phase-1 weights unchanged as the final model.

The checkpoint keeps the epoch with the best validation accuracy (the earlier one on ties) or,
with ``keep: last``, the last epoch; ``epoch`` names the kept epoch and ``best_val_acc`` is the
highest validation accuracy of any epoch. ``align`` is the record of the align params of the
target-set faces the model was trained or scored on (staged_fer/faces/record.py), taken from the
split or else from the phase-1 checkpoint; None for a model that never met aligned faces.
"""
from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Literal, Mapping

import torch

from ..params import load_params, read_stage_params, section
from ..data.splits import hold_out, load_split, split_files
from ..errors import PipelineError
from ..gpus import acquire, held
from ..inputs.input_params import InputConfig
from ..labels import NUM_CLASSES
from ..models import ModelName, ModelsConfig
from ..models.checkpoint import Checkpoint
from .phase_params import PhaseConfig, RuntimeConfig
from .distributed import Dist, barrier, relaunch_under_torchrun, start, stop
from .live import LiveLog
from .loop import BatchTooLarge, FitResult, Trainer, derive_seed
from .resume import ResumeStore, run_key

PhaseName = Literal["phase1", "phase2"]


@dataclass(frozen=True)
class SharedParams:
    """The top-level keys both training phases read besides their own section."""
    seed: int
    model: ModelName
    models: ModelsConfig
    input: InputConfig
    runtime: RuntimeConfig      # devices, precision: how, not what, to train


@dataclass(frozen=True)
class PhaseParams:
    raw: dict[str, Any]        # the sections this phase reads, as stored in the checkpoint
    seed: int
    model: str                 # a registered model
    models: ModelsConfig
    input: InputConfig
    runtime: RuntimeConfig
    phase: PhaseConfig         # the phase's own section: `phase1` or `phase2`


def read_params(path: str | Path, phase: PhaseName) -> PhaseParams:
    """The stage's params, parsed and validated once, before anything runs."""
    params = load_params(path)
    keys = [f.name for f in fields(SharedParams)] + [phase]
    shared = read_stage_params(params, SharedParams)
    return PhaseParams(raw={k: params[k] for k in keys}, seed=shared.seed, model=shared.model,
                       models=shared.models, input=shared.input, runtime=shared.runtime,
                       phase=section(params, phase, PhaseConfig))


def resume_root(params_path: str | Path, phase: PhaseName) -> Path:
    """``.resume/train_<phase>`` beside the params file (the repository root under DVC)."""
    return Path(params_path).resolve().parent / ".resume" / f"train_{phase}"


def _configure(runtime: RuntimeConfig, device: torch.device) -> None:
    if runtime.deterministic and device.type == "cuda":
        # cuBLAS needs a fixed workspace to be deterministic; set before its first use.
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    # warn_only: AlexNet's AdaptiveAvgPool2d has no deterministic CUDA backward; torch then
    # warns (naming the op) instead of refusing to train.
    torch.use_deterministic_algorithms(runtime.deterministic, warn_only=True)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = not runtime.deterministic


def batch_too_large_message(phase: PhaseName, exc: BatchTooLarge, device: torch.device) -> str:
    where = str(device)
    if device.type == "cuda":
        total = torch.cuda.get_device_properties(device).total_memory / 2**30
        where = f"{device} ({torch.cuda.get_device_name(device)}, {total:.0f} GiB)"
    if exc.fits == 0:
        return (f"params.yaml: `{phase}.batch_size` {exc.batch_size} runs out of memory on {where}, "
                "and so does a batch of one image per device: free the GPU or use a smaller model")
    return (f"params.yaml: `{phase}.batch_size` {exc.batch_size} runs out of memory on {where}; "
            f"{exc.fits} fits: set `{phase}.batch_size: {exc.fits}`")


def run(phase: PhaseName, *, split_path: str | Path, out_path: str | Path, live_dir: str | Path,
        params_path: str | Path, init_path: str | Path | None, script: str, argv: list[str],
        progress: bool = True) -> int:
    """Run one training phase; returns the process exit code."""
    from ..models import build_model, count_parameters, input_spec

    p = read_params(params_path, phase)
    gpus = acquire(p.runtime.devices, f"train_{phase}", cpu_only=p.runtime.device == "cpu")
    code = relaunch_under_torchrun(p.runtime, script, argv)
    if code is not None:
        if code != 0:
            raise PipelineError(f"{phase}: a torchrun worker failed (exit code {code}); see its error above")
        return 0
    ctx, device = start(p.runtime)
    try:
        _run(phase, p, ctx, device, split_path=Path(split_path), out_path=Path(out_path),
             live_dir=Path(live_dir), params_path=Path(params_path), gpus=gpus,
             init_path=Path(init_path) if init_path is not None else None, progress=progress,
             build_model=build_model, count_parameters=count_parameters, input_spec=input_spec)
    finally:
        stop(ctx)
    return 0


def _run(phase: PhaseName, p: PhaseParams, ctx: Dist, device: torch.device, *, split_path: Path,
         out_path: Path, live_dir: Path, params_path: Path, init_path: Path | None, gpus: dict | None,
         progress: bool, build_model, count_parameters, input_spec) -> None:
    _configure(p.runtime, device)
    split = load_split(split_path)
    if split.scheme != p.phase.data:
        raise PipelineError(f"{split_path}: built for scheme {split.scheme!r} but params.yaml "
                            f"`{phase}.data` is {p.phase.data!r}; run `dvc repro build_splits`")
    init = None
    if phase == "phase2":
        init = Checkpoint.read(init_path)
        if init.model != p.model:
            raise PipelineError(f"{init_path}: holds model {init.model!r} but params.yaml `model` is "
                                f"{p.model!r}; rerun train_phase1")
    synthetic = split.synthetic or bool(init is not None and init.synthetic)
    align = json.loads(split.align) if split.align else (init.align if init is not None else None)

    if split.empty:
        # Scheme "none": nothing to train; pass the starting weights through.
        if init is None:
            torch.manual_seed(p.seed)   # the fresh 7-way head
            state = build_model(p.model, p.models, num_classes=NUM_CLASSES, pretrained=True).state_dict()
        else:
            state = init.state_dict
        if ctx.main:
            Checkpoint(model=p.model, state_dict=state, params=p.raw, epoch=0, best_val_acc=None, history=[],
                       synthetic=synthetic, scheme=split.scheme,
                       selected_on=None if init is None else init.selected_on, align=align,
                       gpus=held(gpus)).write(out_path)
            LiveLog(live_dir, synthetic).finish(0, None)
        barrier(ctx)
        return

    if p.phase.select == "train_split":
        split = hold_out(split, p.phase.select_share, derive_seed(p.seed, "select", phase))
    selected_on = [b.name for b in split.val] if p.phase.keep == "best" else None
    torch.manual_seed(p.seed)
    model = build_model(p.model, p.models, num_classes=NUM_CLASSES, pretrained=init is None)
    if init is not None:
        model.load_state_dict(init.state_dict)
    spec = input_spec(p.model, p.models)
    key_files = split_files(split_path) + ([init_path] if init_path is not None else [])
    store = ResumeStore(resume_root(params_path, phase), run_key(p.raw, key_files))
    live = None
    if ctx.main:
        store.drop_stale()
        live = LiveLog(live_dir, synthetic)
        n_train = sum(len(b) for b in split.train)
        n_val = sum(len(b) for b in split.val)
        print(f"{phase}: {p.model} ({count_parameters(model):,} parameters) at {spec.size} px on "
              f"{device}{f' x{ctx.world}' if ctx.active else ''}; {split.scheme}: {n_train} train / "
              f"{n_val} val faces{' (synthetic)' if synthetic else ''}", file=sys.stderr)
    barrier(ctx)
    trainer = Trainer(model, spec, split, p.phase, p.input, p.runtime, p.seed, device, ctx,
                      store=store, on_epoch=live.log_epoch if live is not None else None,
                      progress=progress)
    try:
        result: FitResult = trainer.fit()
    except BatchTooLarge as exc:
        raise PipelineError(batch_too_large_message(phase, exc, device)) from None
    if ctx.main:
        Checkpoint(model=p.model, state_dict=result.state_dict, params=p.raw, epoch=result.epoch,
                   best_val_acc=result.best_val_acc, history=result.history, synthetic=synthetic,
                   scheme=split.scheme, selected_on=selected_on, align=align, gpus=held(gpus)).write(out_path)
        live.finish(result.epoch, result.best_val_acc)
        store.clear()
    barrier(ctx)
