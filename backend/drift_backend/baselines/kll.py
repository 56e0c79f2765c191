"""Deequ KLL sketches (as SageMaker Model Monitor writes them) <-> our quantile grid.

In Deequ's ``KLLSketch`` serialization (``statistics.json``
``numerical_statistics.distribution.kll.sketch.data``), ``data[i]`` holds the items of
compactor level ``i``, each standing for ``2**i`` input values; the weighted items give the
CDF. The ``buckets`` are 10 equal-width intervals from min to max with their counts.

Import: the weighted items, sorted, are placed at their mid-CDF positions
``(C_j - w_j / 2) / W``, anchored at ``(0, min)`` and ``(1, max)``, and the quantile grid
is read off that piecewise-linear quantile function.

Export: ``M = Q - 1`` level-0 items (weight 1) at the stored quantile function's values at
``(j + 1/2) / M``; importing them places each one back at the level it came from, so a round
trip reproduces the grid up to the local second difference of the quantiles (exact where
the quantile function is linear). Bucket counts are ``n * (F(upper) - F(lower))`` from the
same interpolated CDF, rounded by largest remainder so they sum to ``n``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from drift_backend.baselines.columns import FloatArray

#: Deequ's defaults (``KLLParameters(sketchSize=2048, shrinkingFactor=0.64, ...)``).
DEFAULT_C = 0.64
DEFAULT_K = 2048
N_BUCKETS = 10


def levels(n_quantiles: int) -> FloatArray:
    return np.linspace(0.0, 1.0, n_quantiles)


def sketch_quantiles(
    data: list[list[float]], n_quantiles: int, lo: float | None, hi: float | None
) -> FloatArray | None:
    """The quantile grid of a weighted KLL sketch (None when it holds no finite item)."""
    items = np.asarray([v for level in data for v in level], dtype=np.float64)
    weights = np.asarray([2.0**i for i, level in enumerate(data) for _ in level], dtype=np.float64)
    keep = np.isfinite(items)
    items, weights = items[keep], weights[keep]
    if items.size == 0:
        return None
    order = np.argsort(items, kind="stable")
    v, w = items[order], weights[order]
    total = w.sum()
    mid = (np.cumsum(w) - w / 2.0) / total
    low = v[0] if lo is None else min(lo, float(v[0]))
    high = v[-1] if hi is None else max(hi, float(v[-1]))
    xp = np.concatenate(([0.0], mid, [1.0]))
    fp = np.concatenate(([low], v, [high]))
    out: FloatArray = np.interp(levels(n_quantiles), xp, fp)
    return out


def quantile_cdf(quantiles: list[float], x: FloatArray) -> FloatArray:
    """The right-continuous CDF interpolated linearly between grid quantiles, at ``x``."""
    q = np.asarray(quantiles, dtype=np.float64)
    step = 1.0 / (q.size - 1)
    k = np.searchsorted(q, x, side="right") - 1
    inner = (k >= 0) & (k < q.size - 1)
    out: FloatArray = np.where(k >= q.size - 1, 1.0, 0.0)
    ki = k[inner]
    frac = (x[inner] - q[ki]) / (q[ki + 1] - q[ki])
    out[inner] = (ki + frac) * step
    return out


def rounded(counts: FloatArray, total: int) -> list[int]:
    """Non-negative integers summing to ``total``, proportional to ``counts``."""
    raw = counts * (total / counts.sum()) if counts.sum() > 0 else counts
    base = np.floor(raw).astype(np.int64)
    short = total - int(base.sum())
    if short > 0:
        base[np.argsort(-(raw - base), kind="stable")[:short]] += 1
    return [int(c) for c in base]


def export_kll(quantiles: list[float], n: int) -> dict[str, Any]:
    """``distribution.kll`` (buckets and a level-0 sketch) for a stored quantile grid."""
    q = np.asarray(quantiles, dtype=np.float64)
    m = max(q.size - 1, 1)
    items = np.interp((np.arange(m) + 0.5) / m, levels(q.size), q)
    lo, hi = float(q[0]), float(q[-1])
    bounds = np.linspace(lo, hi, N_BUCKETS + 1)
    cdf = quantile_cdf(quantiles, bounds)
    cdf[0], cdf[-1] = 0.0, 1.0
    counts = rounded(np.diff(cdf), n)
    buckets = [
        {"lower_bound": float(a), "upper_bound": float(b), "count": c}
        for a, b, c in zip(bounds[:-1], bounds[1:], counts, strict=True)
    ]
    return {
        "buckets": buckets,
        "sketch": {
            "parameters": {"c": DEFAULT_C, "k": DEFAULT_K},
            "data": [items.tolist()],
        },
    }
