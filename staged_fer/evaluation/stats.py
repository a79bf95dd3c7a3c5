"""Uncertainty and paired significance: the bootstrap interval and McNemar's test."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

# Below this many discordant pairs the chi-square approximation is poor and the exact
# binomial test is used (the usual rule of thumb, e.g. Fagerland et al. 2013).
EXACT_BELOW = 25


def bootstrap_accuracy_interval(correct: np.ndarray, *, resamples: int, seed: int,
                                level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of a boolean ``correct`` vector."""
    correct = np.asarray(correct, dtype=bool)
    n = len(correct)
    rng = np.random.default_rng(seed)
    means = np.empty(resamples)
    # Chunks bound memory to about 4 MB of indices whatever the split size.
    chunk = max(1, 500_000 // max(n, 1))
    for start in range(0, resamples, chunk):
        stop = min(resamples, start + chunk)
        idx = rng.integers(0, n, size=(stop - start, n))
        means[start:stop] = correct[idx].mean(axis=1)
    alpha = (1.0 - level) / 2
    low, high = np.quantile(means, [alpha, 1.0 - alpha])
    return float(low), float(high)


@dataclass(frozen=True)
class McNemar:
    n: int                  # paired samples
    only_a: int             # A right, B wrong
    only_b: int             # A wrong, B right
    statistic: float | None  # chi-square with continuity correction; None for the exact test
    p_value: float
    method: str             # "exact" or "chi2"


def mcnemar(truth: np.ndarray, pred_a: np.ndarray, pred_b: np.ndarray) -> McNemar:
    """McNemar's test of two classifiers on the same samples (two-sided).

    Only the discordant pairs matter: ``only_a`` samples A gets right and B wrong, ``only_b``
    the reverse. With fewer than EXACT_BELOW of them the exact binomial test is used,
    otherwise the chi-square statistic with Edwards' continuity correction.
    """
    truth, pred_a, pred_b = map(np.asarray, (truth, pred_a, pred_b))
    if not (truth.shape == pred_a.shape == pred_b.shape) or truth.ndim != 1:
        raise ValueError(f"paired arrays must share one 1-d shape: {truth.shape}, {pred_a.shape}, {pred_b.shape}")
    right_a, right_b = pred_a == truth, pred_b == truth
    b = int(np.sum(right_a & ~right_b))
    c = int(np.sum(~right_a & right_b))
    if b + c == 0:
        return McNemar(len(truth), b, c, None, 1.0, "exact")
    n = b + c
    if n < EXACT_BELOW:
        # Binomial(n, 1/2) is symmetric: the two-sided p is twice the smaller tail, in exact integers.
        tail = sum(math.comb(n, i) for i in range(min(b, c) + 1))
        return McNemar(len(truth), b, c, None, min(1.0, 2 * tail / 2 ** n), "exact")
    statistic = (abs(b - c) - 1.0) ** 2 / n
    # The chi-square survival function with one degree of freedom.
    return McNemar(len(truth), b, c, statistic, math.erfc(math.sqrt(statistic / 2)), "chi2")
