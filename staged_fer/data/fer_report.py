"""Figures of the decoded FER-2013: the paper's Figure 6 and a grid of sample faces.

Figure 6 of Ng et al. shows the class distribution of the train and validation sets of
FER28 and FER32 (the paper's compositions of FER's usages, whatever params.yaml's `schemes`
hold); the sets are cut by ``splits.fer_bank``, as the training phases cut them. Figures are built on matplotlib's object API (no pyplot
state) and saved without metadata, so the same data gives the same PNG bytes.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from ..io import save_figure
from ..labels import EMOTIONS, NUM_CLASSES
from .splits import fer_bank

FIGURE6 = "figure6_class_distribution.png"
SAMPLES = "samples.png"
# Figure 6's variants: (train usages, validation usages).
_VARIANTS = {"fer28": (("Training",), ("PublicTest",)), "fer32": (("Training", "PublicTest"), ("PrivateTest",))}


def _tag(synthetic: bool) -> str:
    return " [synthetic data]" if synthetic else ""


def plot_class_distribution(fer: dict[str, np.ndarray], path: str | Path, synthetic: bool) -> None:
    """Figure 6: per-class share (%) of the train and validation sets of FER28 and FER32."""
    fig = Figure(figsize=(11, 4.2))
    axes = fig.subplots(1, len(_VARIANTS), sharey=True)
    x = np.arange(NUM_CLASSES)
    top = 0.0
    for ax, (scheme, (train, val)) in zip(axes, _VARIANTS.items()):
        sets = (("train", [fer_bank(fer, u) for u in train]), ("validation", [fer_bank(fer, u) for u in val]))
        for offset, (part, banks) in zip((-0.2, 0.2), sets):
            labels = np.concatenate([b.labels for b in banks])
            share = 100 * np.bincount(labels, minlength=NUM_CLASSES) / len(labels)
            names = " + ".join(b.name for b in banks)
            ax.bar(x + offset, share, width=0.4, label=f"{part}: {names} (n={len(labels):,})")
            top = max(top, float(share.max()))
        ax.set_title(scheme.upper())
        ax.set_xticks(x, EMOTIONS, rotation=30)
        ax.legend(fontsize=8)
        ax.grid(axis="y", alpha=0.3)
    axes[0].set_ylim(0, top * 1.3)  # room for the legend above the bars
    axes[0].set_ylabel("share of the set (%)")
    fig.suptitle(f"Class distribution of the FER-2013 variants (Figure 6){_tag(synthetic)}")
    fig.tight_layout()
    save_figure(fig, path)


def plot_samples(fer: dict[str, np.ndarray], path: str | Path, synthetic: bool, per_class: int = 8) -> None:
    """The first ``per_class`` faces of each class in file order, a row per class."""
    side, gap = fer["images"].shape[1], 2
    cell = side + gap
    mosaic = np.full((NUM_CLASSES * cell - gap, per_class * cell - gap), 255, np.uint8)
    for k in range(NUM_CLASSES):
        for j, i in enumerate(np.flatnonzero(fer["labels"] == k)[:per_class]):
            mosaic[k * cell:k * cell + side, j * cell:j * cell + side] = fer["images"][i]
    fig = Figure(figsize=(per_class * 0.8 + 1.4, NUM_CLASSES * 0.8 + 0.6))
    ax = fig.subplots()
    # One image for the whole grid: one draw call instead of a subplot per face.
    ax.imshow(mosaic, cmap="gray", vmin=0, vmax=255, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks(np.arange(NUM_CLASSES) * cell + side / 2, EMOTIONS)
    ax.tick_params(length=0)
    for spine in ax.spines.values():
        spine.set_visible(False)
    ax.set_title(f"FER-2013 samples per class{_tag(synthetic)}")
    fig.tight_layout()
    save_figure(fig, path)


def write_reports(fer: dict[str, np.ndarray], folder: str | Path, synthetic: bool) -> list[Path]:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / FIGURE6, folder / SAMPLES]
    plot_class_distribution(fer, paths[0], synthetic)
    plot_samples(fer, paths[1], synthetic)
    return paths
