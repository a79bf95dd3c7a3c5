"""The model card `evaluate` writes beside its reports: what the final model is, what it was
trained and scored on, how well it does, what it is for and where it falls short.

Built from the scored sets in memory (the same numbers as the metrics file: the same metric
function, bootstrap and seed) and the run facts stored in the two checkpoints, so it never
depends on which figures the metrics file keeps.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping

from ..io import write_text
from ..labels import EMOTIONS
from ..models.checkpoint import Checkpoint
from .metrics import EvaluateConfig, classification_metrics, cost_matrix
from .scoring import Scored, figure_name

# What each data scheme trains and validates on (staged_fer/data/splits.py).
SCHEMES = {
    "fer28": "FER-2013 Training (28,709 faces in the full set), validated on PublicTest",
    "fer32": "FER-2013 Training + PublicTest, validated on PrivateTest",
    "fer32_target": "FER-2013 Training + PublicTest and the target set's Train, validated on its Val",
    "target": "the target set's Train (SFEW 2.0 by default), validated on its Val",
    "none": "no training in this phase (the weights pass through unchanged)",
}
PHASE_KEYS = ("epochs", "batch_size", "lr", "lr_step", "momentum", "weight_decay", "keep", "class_weights")

LIMITS = [
    "**Seven posed categories.** The classes are the seven of FER-2013 (six basic expressions and "
    "neutral). Real expressions are often blended, subtle or outside these categories; the model always "
    "answers with one of the seven. It recognises configurations of the face, not what a person feels.",
    "**Posed to in-the-wild.** FER-2013 holds 48x48 web images found by keyword search, with noisy "
    "labels; SFEW holds frames of actors in films. Neither is everyday footage of ordinary people, and "
    "accuracy on other photos, cameras or cultures is unknown until measured on them.",
    "**Demographic skew.** Both datasets are known to be unbalanced in age, gender and skin tone (film "
    "casts and web search results over-represent some groups). Accuracy per group was not measured "
    "here: expect it to differ between groups, and measure it before relying on it for any population.",
    "**Rare classes.** Disgust (and to a lesser degree Fear) is rare in both datasets; the paper's models "
    "almost never predict Disgust correctly. Per-class recall is in the confusion figures below.",
    "**Face preparation.** Faces must be found by the Viola-Jones detector and pass the landmark fit "
    "(the `align` params below); strongly turned, occluded or tiny faces are rejected, not classified. "
    "The model sees grayscale only.",
    "**Selection on validation.** With `keep: best` the kept epoch is chosen on the validation set; "
    "a metric on that same set is optimistic.",
]

INTENDED_USE = (
    "Research on facial expression recognition: reproducing and extending Ng et al. (ICMI 2015), "
    "comparing networks and data schemes, and labelling the expressions of faces in research photos "
    "and video in aggregate. Not for decisions about individuals (hiring, education, policing, "
    "health, credit, border control), not for inferring a person's emotions or intentions, and not "
    "for surveillance.")


def _pct(x: float) -> str:
    return f"{100 * x:.1f}"


def _metric_rows(scored: list[Scored], cfg: EvaluateConfig, seed: int) -> list[str]:
    cost = cost_matrix(cfg.cost)
    rows = ["| set | n | accuracy % [95% CI] | balanced accuracy % | macro-F1 | cost-sensitive accuracy % |",
            "|---|---|---|---|---|---|"]
    for s in scored:
        m = classification_metrics(s.set.labels, s.proba, cost=cost, bootstrap=cfg.bootstrap, seed=seed)
        rows.append(f"| {s.set.title}{' (synthetic)' if s.set.synthetic else ''} | {m['n']} | "
                    f"{_pct(m['accuracy'])} [{_pct(m['accuracy_ci95_low'])}, {_pct(m['accuracy_ci95_high'])}] | "
                    f"{_pct(m['balanced_accuracy'])} | {m['macro_f1']:.3f} | {_pct(m['cost_accuracy'])} |")
    return rows


def _training_rows(runs: Mapping[str, Checkpoint]) -> list[str]:
    rows = ["| | " + " | ".join(PHASE_KEYS) + " | kept epoch | best val. acc. % |",
            "|---|" + "---|" * (len(PHASE_KEYS) + 2)]
    for role, phase in (("phase1", "phase1"), ("final", "phase2")):
        run = runs.get(role)
        if run is None:
            continue
        section = run.params.get(phase, {})
        best = run.best_val_acc
        rows.append(f"| {phase} ({run.scheme}) | " + " | ".join(str(section.get(k, "")) for k in PHASE_KEYS)
                    + f" | {run.epoch} | {'' if best is None else _pct(best)} |")
    return rows


def gpu_line(gpus: Mapping[str, Mapping[str, Any] | None] | None) -> str:
    """Which GPU slots (staged_fer/gpus.py) each step of the run was given, by step."""
    parts = []
    for step, grant in (gpus or {}).items():
        if grant is None:
            parts.append(f"{step}: none taken")
        elif grant["names"] is None:
            parts.append(f"{step}: slot {','.join(grant['ids'])} (no CUDA: ran on the CPU)")
        else:
            parts.append(f"{step}: GPU {','.join(grant['ids'])} ({', '.join(grant['names'])})")
    return "GPUs (ids as in CUDA_VISIBLE_DEVICES): " + ("; ".join(parts) if parts else "not recorded") + "."


def model_card(scored: list[Scored], cfg: EvaluateConfig, seed: int, runs: Mapping[str, Checkpoint],
               figures: str, gpus: Mapping[str, Mapping[str, Any] | None] | None = None, *,
               checkpoints: Mapping[str, str | os.PathLike]) -> str:
    """The card's Markdown. ``runs``: the "phase1" and "final" checkpoints' records of their runs
    (``TrainedModel.run``; no weights needed); ``figures``: the folder of confusion PNGs, relative
    to the card; ``gpus``: the GPU slots of each step, as in evaluate's scores file; ``checkpoints``: the
    "phase1" and "final" checkpoint files, as evaluate was given them."""
    final = runs["final"]
    params = final.run_params("the final checkpoint")
    name = params.model
    net = getattr(params.models, name)
    synthetic = any(s.set.synthetic for s in scored) or any(bool(r.synthetic) for r in runs.values())
    scheme = " -> ".join(runs[r].scheme for r in ("phase1", "final") if r in runs)
    lines = [f"# Model card: {name}, {scheme}", ""]
    if synthetic:
        lines += ["> **Synthetic data.** This model was trained or scored on the pipeline's synthetic "
                  "stand-ins for FER-2013 and SFEW. Its numbers exercise the pipeline and say nothing about "
                  "faces; do not use it on real photos.", ""]
    lines += [
        "## Model", "",
        f"- Network: `{name}`, input {net.input_size} px, initialised from "
        f"{'ImageNet' if net.weights == 'imagenet' else 'random weights (no ImageNet)'}; "
        "fine-tuned in two phases (the two stages of Ng et al., ICMI 2015).",
        "- Output: probabilities of the seven classes, in this order: " + ", ".join(EMOTIONS) + ".",
        f"- Input: one face, aligned and cropped by the pipeline with the `align` params below, "
        f"grayscale {final.align.get('size', '?') if final.align else '?'} px; "
        f"resized to {params.input.resize} and centre-cropped inside the model's input path.",
        f"- Files: `{checkpoints['final']}` (this model) and `{checkpoints['phase1']}`; "
        "`python -m staged_fer.predict` classifies photos and videos with it, "
        "`python -m staged_fer.export` writes it as ONNX.", "",
        "## Data and scheme", "",
    ]
    for role, phase in (("phase1", "Phase 1"), ("final", "Phase 2")):
        if role in runs:
            s = runs[role].scheme
            lines.append(f"- {phase}: `{s}`: {SCHEMES.get(s, s)}.")
    align = final.align
    if align:
        det = align.get("detector", {})
        lines.append(f"- Faces: OpenCV Viola-Jones (frontal and profile; scale factor {det.get('scale_factor')}, "
                     f"min neighbours {det.get('min_neighbors')}, min size {det.get('min_size')} px), "
                     f"{align.get('landmarks')} 68-point landmarks, rejected below a fit of {align.get('min_fit')}, "
                     f"the paper's crop box from the {str(align.get('box_from', '')).replace('_', ' ')}, "
                     f"{align.get('size')} px grayscale. Full record: `"
                     + ", ".join(f"{k}={v}" for k, v in sorted(align.items()) if k != "detector") + "`.")
    lines += ["", "## Training", "",
              f"SGD with momentum; seed {params.seed}; input resize {params.input.resize}, "
              f"random flips {'on' if params.input.flip else 'off'}.", "",
              *_training_rows(runs), "", gpu_line(gpus), "",
              "## Evaluation", "",
              f"Accuracy intervals: 95% percentile bootstrap over faces ({cfg.bootstrap} resamples). "
              "Cost-sensitive accuracy charges "
              f"{cfg.cost.similar_cost} for confusing similar classes "
              f"({', '.join('/'.join(p) for p in cfg.cost.similar)}).", "",
              *_metric_rows(scored, cfg, seed), "",
              "Confusion matrices (row percentages, the paper's order FE SA HA SU DI AN NE): "
              + ", ".join(f"[{s.set.key}]({figures}/{figure_name(s.set.key)})" for s in scored) + ".", "",
              "## Intended use", "", INTENDED_USE, "",
              "## Known limits", "", *(f"- {item}" for item in LIMITS), ""]
    return "\n".join(lines)


def write_model_card(path: str | os.PathLike, scored: list[Scored], cfg: EvaluateConfig, seed: int,
                     runs: Mapping[str, Checkpoint], reports_dir: str | os.PathLike,
                     gpus: Mapping[str, Mapping[str, Any] | None] | None = None, *,
                     checkpoints: Mapping[str, str | os.PathLike]) -> None:
    path = Path(path)
    figures = Path(os.path.relpath(Path(reports_dir).resolve(), path.parent.resolve())).as_posix()
    write_text(path, model_card(scored, cfg, seed, runs, figures, gpus, checkpoints=checkpoints))
