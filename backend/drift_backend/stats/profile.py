"""Numerical tests against a compact stored reference profile, in O(current batch).

A baseline keeps, per numerical feature, its histogram counts on frozen edges (see
:func:`histogram.reference_edges`) and a dense grid of reference quantiles. The current
batch is binned on the same edges (:func:`histogram.bin_counts`) or compared with the
quantile-interpolated reference CDF; the reference rows are never needed again.
"""

from __future__ import annotations

import numpy as np
from scipy import stats

from drift_backend.stats import histogram as h
from drift_backend.stats import numerical as num
from drift_backend.stats._common import (
    ALPHA,
    ArrayLike,
    FloatArray,
    clean_sample,
    count_proportions,
    distance_result,
    p_value_result,
)
from drift_backend.stats.result import TestResult


def psi_counts(
    reference_counts: ArrayLike, current_counts: ArrayLike, *, threshold: float | None = None
) -> TestResult:
    """:func:`numerical.psi` on two count vectors over the same (ordered) bins.

    Examples
    --------
    >>> import numpy as np
    >>> from drift_backend.stats.histogram import bin_counts, reference_edges
    >>> from drift_backend.stats.profile import psi_counts
    >>> rng = np.random.default_rng(0)
    >>> reference, current = rng.normal(size=1000), rng.normal(0.5, size=1000)
    >>> edges = reference_edges(reference)  # 10 equal-mass bins, frozen in the baseline
    >>> ref_counts, cur_counts = bin_counts(reference, edges), bin_counts(current, edges)
    >>> res = psi_counts(ref_counts, cur_counts)
    >>> print(f"{res.distance:.3f}, drifted: {res.drifted}")
    0.290, drifted: True

    The same value as :func:`numerical.psi` on the raw samples.
    """
    p, q, n, m = count_proportions(reference_counts, current_counts)
    t = num.PSI_THRESHOLD if threshold is None else threshold
    return distance_result("psi", "numerical", h.psi_value(p, q), t, n, m, inclusive=True)


def jensen_shannon_counts(
    reference_counts: ArrayLike, current_counts: ArrayLike, *, threshold: float | None = None
) -> TestResult:
    """:func:`numerical.jensen_shannon` on two count vectors over the same bins.

    Examples
    --------
    >>> import numpy as np
    >>> from drift_backend.stats.histogram import bin_counts, reference_edges
    >>> from drift_backend.stats.profile import jensen_shannon_counts
    >>> rng = np.random.default_rng(0)
    >>> reference, current = rng.normal(size=1000), rng.normal(0.5, size=1000)
    >>> edges = reference_edges(reference)  # 10 equal-mass bins, frozen in the baseline
    >>> ref_counts, cur_counts = bin_counts(reference, edges), bin_counts(current, edges)
    >>> res = jensen_shannon_counts(ref_counts, cur_counts)
    >>> print(f"{res.distance:.3f}, drifted: {res.drifted}")
    0.187, drifted: True
    """
    p, q, n, m = count_proportions(reference_counts, current_counts)
    t = num.JENSEN_SHANNON_THRESHOLD if threshold is None else threshold
    return distance_result(
        "jensen_shannon", "numerical", h.jensen_shannon_value(p, q), t, n, m, inclusive=True
    )


def hellinger_counts(
    reference_counts: ArrayLike, current_counts: ArrayLike, *, threshold: float | None = None
) -> TestResult:
    """:func:`numerical.hellinger` on two count vectors over the same bins.

    Examples
    --------
    >>> import numpy as np
    >>> from drift_backend.stats.histogram import bin_counts, reference_edges
    >>> from drift_backend.stats.profile import hellinger_counts
    >>> rng = np.random.default_rng(0)
    >>> reference, current = rng.normal(size=1000), rng.normal(0.5, size=1000)
    >>> edges = reference_edges(reference)  # 10 equal-mass bins, frozen in the baseline
    >>> ref_counts, cur_counts = bin_counts(reference, edges), bin_counts(current, edges)
    >>> res = hellinger_counts(ref_counts, cur_counts)
    >>> print(f"{res.distance:.3f}, drifted: {res.drifted}")
    0.190, drifted: True
    """
    p, q, n, m = count_proportions(reference_counts, current_counts)
    t = num.HELLINGER_THRESHOLD if threshold is None else threshold
    return distance_result(
        "hellinger", "numerical", h.hellinger_value(p, q), t, n, m, inclusive=True
    )


def kl_div_counts(
    reference_counts: ArrayLike, current_counts: ArrayLike, *, threshold: float | None = None
) -> TestResult:
    """:func:`numerical.kl_div` on two count vectors over the same bins.

    Examples
    --------
    >>> import numpy as np
    >>> from drift_backend.stats.histogram import bin_counts, reference_edges
    >>> from drift_backend.stats.profile import kl_div_counts
    >>> rng = np.random.default_rng(0)
    >>> reference, current = rng.normal(size=1000), rng.normal(0.5, size=1000)
    >>> edges = reference_edges(reference)  # 10 equal-mass bins, frozen in the baseline
    >>> ref_counts, cur_counts = bin_counts(reference, edges), bin_counts(current, edges)
    >>> res = kl_div_counts(ref_counts, cur_counts)
    >>> print(f"{res.distance:.3f}, drifted: {res.drifted}")
    0.137, drifted: True
    """
    p, q, n, m = count_proportions(reference_counts, current_counts)
    t = num.KL_THRESHOLD if threshold is None else threshold
    return distance_result("kl_div", "numerical", h.kl_value(p, q), t, n, m, inclusive=True)


def linf_counts(
    reference_counts: ArrayLike,
    current_counts: ArrayLike,
    *,
    threshold: float | None = None,
    robust: bool = False,
) -> TestResult:
    """SageMaker/Deequ L-infinity between the two CDFs known only at the same ordered bin
    edges: ``max |cumsum(p) - cumsum(q)|`` (a lower bound of the exact sample L-infinity,
    equal when the bins separate every point). ``robust=True`` subtracts Deequ's
    ``1.8 * sqrt((n + m) / (n * m))``. Drift when > threshold (default 0.1).

    Examples
    --------
    >>> import numpy as np
    >>> from drift_backend.stats.histogram import bin_counts, reference_edges
    >>> from drift_backend.stats.profile import linf_counts
    >>> rng = np.random.default_rng(0)
    >>> reference, current = rng.normal(size=1000), rng.normal(0.5, size=1000)
    >>> edges = reference_edges(reference)  # 10 equal-mass bins, frozen in the baseline
    >>> ref_counts, cur_counts = bin_counts(reference, edges), bin_counts(current, edges)
    >>> res = linf_counts(ref_counts, cur_counts)
    >>> print(f"{res.distance:.3f}, drifted: {res.drifted}")
    0.224, drifted: True

    On the raw samples L-infinity is 0.237: the bins see a lower bound.
    """
    p, q, n, m = count_proportions(reference_counts, current_counts)
    d = h.linf_cdf_value(p, q)
    if robust:
        d = h.robust_linf(d, n, m)
    t = num.LINF_THRESHOLD if threshold is None else threshold
    method = "linf_robust" if robust else "linf"
    return distance_result(method, "numerical", d, t, n, m, inclusive=False)


def quantile_cdf_at(quantiles: FloatArray, x: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Right-continuous value and left limit at ``x`` of the piecewise-linear CDF through
    ``(quantiles[k], k / (len - 1))``; repeated quantiles become jumps."""
    levels = np.linspace(0.0, 1.0, quantiles.size)
    uq, first = np.unique(quantiles, return_index=True)
    last = quantiles.size - 1 - np.unique(quantiles[::-1], return_index=True)[1]
    lo, hi = levels[first], levels[last]  # CDF just below / at each distinct value
    k = np.searchsorted(uq, x, side="right") - 1  # largest distinct value <= x
    inner = (k >= 0) & (k < uq.size - 1)
    kk = np.clip(k, 0, max(uq.size - 2, 0))
    if uq.size > 1:
        frac = (x - uq[kk]) / (uq[kk + 1] - uq[kk])
        between = hi[kk] + frac * (lo[kk + 1] - hi[kk])
    else:
        between = np.zeros_like(x)
    right = np.where(k < 0, 0.0, np.where(inner, between, 1.0))
    at_value = (k >= 0) & (uq[np.clip(k, 0, None)] == x)
    left = np.where(at_value, lo[np.clip(k, 0, None)], right)
    return right, left


def ks_from_quantiles(
    reference_quantiles: ArrayLike,
    n_reference: int,
    current: ArrayLike,
    *,
    threshold: float | None = None,
) -> TestResult:
    """Two-sample KS test with the reference known only by its quantiles.

    ``reference_quantiles[k]`` is the reference quantile at level ``k / (Q - 1)`` (e.g.
    ``Q = 1001``, min and max included). The reference CDF is interpolated linearly
    between them; D = sup |F_ref - F_cur| is exact for that interpolant (both one-sided
    limits at every current point, where the supremum is attained). Compared with the
    exact two-sample D, the error is at most about ``1 / (Q - 1) + 1 / n_reference``.

    The p-value is scipy's two-sample asymptotic one (``ks_2samp(method="asymp")``):
    ``kstwo.sf(D, round(n * m / (n + m)))`` with the real ``n_reference``.

    Examples
    --------
    >>> import numpy as np
    >>> from drift_backend.stats.profile import ks_from_quantiles
    >>> rng = np.random.default_rng(0)
    >>> reference, current = rng.normal(size=1000), rng.normal(0.5, size=1000)
    >>> grid = np.quantile(reference, np.linspace(0.0, 1.0, 1001))  # what a baseline keeps
    >>> res = ks_from_quantiles(grid, reference.size, current)
    >>> print(f"D = {res.statistic:.3f}, p = {res.p_value:.1e}, drifted: {res.drifted}")
    D = 0.238, p = 2.5e-25, drifted: True

    ``scipy.stats.ks_2samp`` on the two raw samples gives D = 0.237.
    """
    q = np.asarray(reference_quantiles, dtype=np.float64).reshape(-1)
    if q.size < 2 or not np.all(np.isfinite(q)) or np.any(np.diff(q) < 0):
        raise ValueError("reference_quantiles must be >= 2 finite non-decreasing values")
    if n_reference < 1:
        raise ValueError("n_reference must be positive")
    cur = np.sort(clean_sample(current, "current"))
    m = cur.size
    right, left = quantile_cdf_at(q, cur)
    # Current ECDF: right value and left limit at each sorted point (ties handled).
    f_right = np.searchsorted(cur, cur, side="right") / m
    f_left = np.searchsorted(cur, cur, side="left") / m
    d = float(max(np.max(np.abs(f_right - right)), np.max(np.abs(f_left - left))))
    en = max(1.0, float(np.round(n_reference * m / (n_reference + m))))
    p = float(stats.kstwo.sf(d, en))
    alpha = ALPHA if threshold is None else threshold
    return p_value_result("ks", "numerical", d, p, alpha, n_reference, m)


def ks_between_quantiles(
    reference_quantiles: ArrayLike,
    n_reference: int,
    current_quantiles: ArrayLike,
    n_current: int,
    *,
    threshold: float | None = None,
) -> TestResult:
    """Two-sample KS test with both samples known only by quantile grids.

    Both CDFs are interpolated linearly through their grids (``grid[k]`` at level
    ``k / (len - 1)``); D = sup |F_ref - F_cur| is exact for the interpolants (the supremum
    of two piecewise-linear functions is reached at a knot, from one side or the other).
    Against the exact two-sample D the error is at most about ``1 / (Q_ref - 1) +
    1 / (Q_cur - 1)``. The p-value is scipy's asymptotic one with the real sizes, as in
    :func:`ks_from_quantiles`.

    Examples
    --------
    >>> import numpy as np
    >>> from drift_backend.stats.profile import ks_between_quantiles
    >>> rng = np.random.default_rng(0)
    >>> reference, current = rng.normal(size=1000), rng.normal(0.5, size=1000)
    >>> levels = np.linspace(0.0, 1.0, 1001)
    >>> res = ks_between_quantiles(
    ...     np.quantile(reference, levels), 1000, np.quantile(current, levels), 1000
    ... )
    >>> print(f"D = {res.statistic:.3f}, p = {res.p_value:.1e}, drifted: {res.drifted}")
    D = 0.237, p = 3.8e-25, drifted: True
    """
    q = np.asarray(reference_quantiles, dtype=np.float64).reshape(-1)
    c = np.asarray(current_quantiles, dtype=np.float64).reshape(-1)
    for name, grid in (("reference_quantiles", q), ("current_quantiles", c)):
        if grid.size < 2 or not np.all(np.isfinite(grid)) or np.any(np.diff(grid) < 0):
            raise ValueError(f"{name} must be >= 2 finite non-decreasing values")
    if n_reference < 1 or n_current < 1:
        raise ValueError("n_reference and n_current must be positive")
    knots = np.union1d(q, c)
    ref_right, ref_left = quantile_cdf_at(q, knots)
    cur_right, cur_left = quantile_cdf_at(c, knots)
    d = float(max(np.max(np.abs(ref_right - cur_right)), np.max(np.abs(ref_left - cur_left))))
    en = max(1.0, float(np.round(n_reference * n_current / (n_reference + n_current))))
    p = float(stats.kstwo.sf(d, en))
    alpha = ALPHA if threshold is None else threshold
    return p_value_result("ks", "numerical", d, p, alpha, n_reference, n_current)
