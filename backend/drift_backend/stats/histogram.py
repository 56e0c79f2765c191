"""Frozen reference bins, bin counts, and distances between two discrete distributions.

The distances here work on proportion vectors over the same cells (histogram bins or
categories) and are shared by the numerical (binned) and the categorical tests.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

# bin_counts of values already sorted: summary-mode counting, which the SDK runs too.
from drift_monitor.counting import bin_counts_sorted as bin_counts_sorted
from scipy.spatial.distance import jensenshannon as _scipy_jensenshannon

from drift_backend.stats._common import ArrayLike, FloatArray, clean_sample

Binning = Literal["quantile", "uniform"]

#: Bins built from the reference by default (classic PSI deciles).
DEFAULT_BINS = 10
#: Proportion used in place of an empty cell by PSI and KL (as Evidently does: 0.0001).
EPSILON = 1e-4


def reference_edges(
    reference: ArrayLike, n_bins: int = DEFAULT_BINS, binning: Binning = "quantile"
) -> FloatArray:
    """Bin edges frozen from the reference sample (NaN/inf dropped).

    ``"quantile"``: the reference quantiles at ``0, 1/n_bins, ..., 1`` (equal-mass bins);
    ``"uniform"``: ``n_bins`` equal widths from the reference min to max. Repeated edges
    (ties, discrete data) are merged, so fewer bins may result; a constant reference gives
    the edges ``[c, c]``: one bin holding exactly ``c``.

    Examples
    --------
    >>> import numpy as np
    >>> from drift_backend.stats.histogram import reference_edges
    >>> reference_edges(np.arange(10.0), n_bins=4).tolist()
    [0.0, 2.25, 4.5, 6.75, 9.0]
    >>> reference_edges(np.arange(10.0), n_bins=3, binning="uniform").tolist()
    [0.0, 3.0, 6.0, 9.0]
    """
    if n_bins < 1:
        raise ValueError("n_bins must be at least 1")
    ref = clean_sample(reference, "reference")
    if binning == "quantile":
        edges = np.quantile(ref, np.linspace(0.0, 1.0, n_bins + 1))
    elif binning == "uniform":
        edges = np.linspace(ref.min(), ref.max(), n_bins + 1)
    else:
        raise ValueError(f"unknown binning {binning!r}; use 'quantile' or 'uniform'")
    unique = np.unique(edges)
    if unique.size == 1:
        return np.array([unique[0], unique[0]], dtype=np.float64)
    return unique.astype(np.float64)


def bin_counts(values: ArrayLike, edges: ArrayLike) -> FloatArray:
    """Counts of finite ``values`` in ``len(edges) + 1`` cells.

    Cell 0 is the underflow ``x < edges[0]``; cell ``i`` (1..len-1) is
    ``edges[i-1] <= x < edges[i]``, the last inner cell being closed on the right like
    ``numpy.histogram``; the final cell is the overflow ``x > edges[-1]``. Out-of-range
    current values therefore land in the outer cells instead of being lost.

    Examples
    --------
    >>> from drift_backend.stats.histogram import bin_counts
    >>> bin_counts([-1.0, 0.5, 1.5, 2.5, 3.0, 9.0], [0, 1, 2, 3]).tolist()
    [1.0, 1.0, 1.0, 2.0, 1.0]
    """
    e = np.asarray(edges, dtype=np.float64)
    if e.ndim != 1 or e.size < 2 or np.any(np.diff(e) < 0):
        raise ValueError("edges must be a non-decreasing 1-D array of at least 2 values")
    x = np.asarray(values, dtype=np.float64).reshape(-1)
    x = x[np.isfinite(x)]
    idx = np.searchsorted(e, x, side="right")
    idx[x == e[-1]] = e.size - 1
    return np.bincount(idx, minlength=e.size + 1).astype(np.float64)


def proportions(counts: FloatArray) -> FloatArray:
    """Counts scaled to sum to one."""
    total = float(counts.sum())
    if total <= 0:
        raise ValueError("counts are empty (total 0)")
    return counts / total


def _floored(p: FloatArray) -> FloatArray:
    return np.where(p == 0, EPSILON, p)


def psi_value(p: FloatArray, q: FloatArray) -> float:
    """Population stability index ``sum((q - p) * ln(q / p))``, empty cells set to EPSILON."""
    pe, qe = _floored(p), _floored(q)
    return float(np.sum((qe - pe) * np.log(qe / pe)))


def kl_value(p: FloatArray, q: FloatArray) -> float:
    """Kullback-Leibler divergence KL(reference || current) in nats, empty cells at EPSILON."""
    pe, qe = _floored(p), _floored(q)
    pe, qe = pe / pe.sum(), qe / qe.sum()
    return float(np.sum(pe * np.log(pe / qe)))


def jensen_shannon_value(p: FloatArray, q: FloatArray) -> float:
    """Jensen-Shannon distance (square root of the divergence, natural log), in [0, sqrt(ln 2)]."""
    return float(_scipy_jensenshannon(p, q))


def hellinger_value(p: FloatArray, q: FloatArray) -> float:
    """Hellinger distance ``sqrt(sum((sqrt p - sqrt q)^2) / 2)``, in [0, 1]."""
    return float(np.sqrt(np.sum((np.sqrt(p) - np.sqrt(q)) ** 2) / 2.0))


def tvd_value(p: FloatArray, q: FloatArray) -> float:
    """Total variation distance ``sum(|p - q|) / 2``, in [0, 1]."""
    return float(np.abs(p - q).sum() / 2.0)


def linf_value(p: FloatArray, q: FloatArray) -> float:
    """Largest difference between cell probabilities ``max |p - q|``."""
    return float(np.max(np.abs(p - q)))


def linf_cdf_value(p: FloatArray, q: FloatArray) -> float:
    """Largest difference between the two CDFs over ordered cells ``max |P - Q|``."""
    return float(np.max(np.abs(np.cumsum(p) - np.cumsum(q))))


def robust_linf(linf: float, n: int, m: int) -> float:
    """Deequ's robust L-infinity: ``max(0, linf - 1.8 * sqrt((n + m) / (n * m)))``."""
    return max(0.0, linf - 1.8 * float(np.sqrt((n + m) / (n * m))))
