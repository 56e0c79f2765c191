"""Deequ KLL sketches (as SageMaker Model Monitor writes them) <-> our quantile grid.

In Deequ's ``KLLSketch`` serialization (``statistics.json``
``numerical_statistics.distribution.kll.sketch.data``), ``data[i]`` holds the items of
compactor level ``i``, each standing for ``2**i`` input values; the weighted items give the
CDF. The ``buckets`` are 10 equal-width intervals from min to max with their counts.

Import: the quantile grid is numpy's linear quantile of the sample the sketch stands for
(each item repeated ``2**level`` times), computed from cumulative weights without
expanding it; the ends are pinned to the exact min and max.

Export: the ``Q`` stored grid quantiles themselves as level-0 items (weight 1). Their
linear quantiles at the levels ``k / (Q - 1)`` are exactly the grid, so a round trip keeps
the quantiles unchanged; the sketch's total weight is ``Q``, not the row count (consumers
read counts from ``buckets`` and ``common``). Bucket counts are ``n * (F(upper) - F(lower))`` from the
same interpolated CDF, rounded by largest remainder so they sum to ``n``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from drift_backend.baselines.columns import FloatArray
from drift_backend.stats.profile import quantile_cdf_at

#: Deequ's defaults (``KLLParameters(sketchSize=2048, shrinkingFactor=0.64, ...)``).
DEFAULT_C = 0.64
DEFAULT_K = 2048
N_BUCKETS = 10


def levels(n_quantiles: int) -> FloatArray:
    return np.linspace(0.0, 1.0, n_quantiles)


def sketch_quantiles(
    data: list[list[float]], n_quantiles: int, lo: float | None, hi: float | None
) -> FloatArray | None:
    """The quantile grid of a weighted KLL sketch (None when it holds no finite item).

    The grid is ``numpy.quantile(expanded, levels)`` (linear) of the sample the sketch stands
    for, each item repeated ``2**level`` times, computed without expanding it. The ends are
    replaced by the exact ``min``/``max`` when given (compaction may drop the extremes).
    """
    items = np.asarray([v for level in data for v in level], dtype=np.float64)
    weights = np.asarray([2.0**i for i, level in enumerate(data) for _ in level], dtype=np.float64)
    keep = np.isfinite(items)
    items, weights = items[keep], weights[keep]
    if items.size == 0:
        return None
    order = np.argsort(items, kind="stable")
    v, cum = items[order], np.cumsum(weights[order])
    pos = levels(n_quantiles) * (cum[-1] - 1.0)
    below = np.floor(pos)
    j_lo = np.minimum(np.searchsorted(cum, below, side="right"), v.size - 1)
    j_hi = np.minimum(np.searchsorted(cum, below + 1.0, side="right"), v.size - 1)
    out: FloatArray = v[j_lo] + (pos - below) * (v[j_hi] - v[j_lo])
    if lo is not None:
        out[0] = min(lo, float(out[0]))
    if hi is not None:
        out[-1] = max(hi, float(out[-1]))
    return np.maximum.accumulate(out)


def quantile_cdf(quantiles: list[float], x: FloatArray) -> FloatArray:
    """The right-continuous CDF interpolated linearly between grid quantiles, at ``x``."""
    return quantile_cdf_at(np.asarray(quantiles, dtype=np.float64), x)[0]


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
    items = q
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
