"""A synthetic FER-2013: Kaggle's fer2013.csv layout, filled with rendered faces.

It lets the real download/decode stages and everything downstream run offline; nothing
about it is special-cased later: the rows parse exactly like the real file's.
"""
from __future__ import annotations

import os
from typing import Iterator, Mapping

import numpy as np

from staged_fer.data.fer_csv import HEADER, SIDE, USAGES
from staged_fer.errors import PipelineError
from staged_fer.io import atomic_path
from staged_fer.labels import NUM_CLASSES
from staged_fer.synthetic.faces import check_seed, render_face

# Class shares in FER order (Angry, Disgust, Fear, Happy, Sad, Surprise, Neutral): a mild
# version of FER-2013's imbalance (happy most common, disgust rarest) that still leaves
# every class enough rows to learn from at demo sizes.
CLASS_SHARES = np.array([0.14, 0.06, 0.14, 0.20, 0.16, 0.12, 0.18])


def class_counts(n: int) -> np.ndarray:
    """Rows per class for ``n`` rows: CLASS_SHARES by largest remainder, each class at least
    once whenever ``n`` allows, so that even tiny test files contain every label."""
    if n < 0:
        raise ValueError(f"row count must be >= 0, got {n}")
    floor = min(1, n // NUM_CLASSES)
    rest = n - floor * NUM_CLASSES
    raw = CLASS_SHARES * rest
    counts = np.floor(raw).astype(np.int64)
    order = np.argsort(-(raw - counts), kind="stable")
    counts[order[: rest - int(counts.sum())]] += 1
    return counts + floor


def _validate(counts: Mapping[str, int]) -> dict[str, int]:
    unknown = set(counts) - set(USAGES)
    missing = set(USAGES) - set(counts)
    if unknown or missing:
        raise PipelineError(f"synthetic FER counts must have exactly the keys {USAGES}; "
                            f"unknown {sorted(unknown)}, missing {sorted(missing)}")
    out = {}
    for usage in USAGES:
        n = counts[usage]
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
            raise PipelineError(f"synthetic FER counts[{usage!r}] must be a non-negative integer, got {n!r}")
        out[usage] = int(n)
    return out


def synthetic_rows(counts: Mapping[str, int], seed: int) -> Iterator[tuple[int, np.ndarray, str]]:
    """(label, 48x48 uint8 image, usage) in file order; bad counts fail here, not mid-file.

    Each row draws from its own generator keyed by (seed, usage, row), so a row does not
    depend on how many rows precede it in other Usage blocks.
    """
    return _rows(_validate(counts), check_seed(seed))


def _rows(counts: dict[str, int], seed: int) -> Iterator[tuple[int, np.ndarray, str]]:
    for u, usage in enumerate(USAGES):
        n = counts[usage]
        labels = np.repeat(np.arange(NUM_CLASSES), class_counts(n))
        # Distinct key prefixes (0: label order, 1: rows) keep the streams independent.
        np.random.default_rng([seed, u, 0]).shuffle(labels)
        for i, label in enumerate(labels):
            rng = np.random.default_rng([seed, u, 1, i])
            yield int(label), render_face(rng, int(label), SIDE), usage


def write_fer_csv(path: str | os.PathLike, counts: dict[str, int], seed: int) -> None:
    """Write a synthetic ``fer2013.csv`` (header ``emotion,pixels,Usage``) atomically.

    ``counts`` gives the rows per Usage, keyed "Training", "PublicTest", "PrivateTest".
    The same counts and seed give the same bytes.
    """
    rows = synthetic_rows(counts, seed)
    with atomic_path(path) as tmp:
        with open(tmp, "w", newline="\n") as fh:
            fh.write(HEADER + "\n")
            for label, image, usage in rows:
                fh.write(f"{label},{' '.join(map(str, image.ravel().tolist()))},{usage}\n")
