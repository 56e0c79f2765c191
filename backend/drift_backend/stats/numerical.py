"""Two-sample drift tests on numerical features (raw reference and current samples).

Every function takes two 1-D samples (NaN and +-inf are dropped first; an empty sample
raises ``ValueError``) and an optional ``threshold``: the significance level alpha for
hypothesis tests (default 0.05), the distance threshold for distances (the defaults are
Evidently's, and SageMaker's for L-infinity).
"""

from __future__ import annotations

import math
import warnings
from functools import lru_cache
from typing import Any

import numpy as np
from scipy import stats

from drift_backend.stats import histogram as h
from drift_backend.stats._common import (
    ALPHA,
    ArrayLike,
    FloatArray,
    clean_pair,
    distance_result,
    p_value_result,
)
from drift_backend.stats.result import TestResult

#: Default thresholds of the distance measures (Evidently; SageMaker for L-infinity).
WASSERSTEIN_THRESHOLD = 0.1
ENERGY_THRESHOLD = 0.1
PSI_THRESHOLD = 0.1
JENSEN_SHANNON_THRESHOLD = 0.1
HELLINGER_THRESHOLD = 0.1
KL_THRESHOLD = 0.1
LINF_THRESHOLD = 0.1
#: Floor of the reference standard deviation used to norm distances (Evidently's 0.001).
MIN_STD = 0.001


def _alpha(threshold: float | None) -> float:
    return ALPHA if threshold is None else threshold


def _sizes(ref: FloatArray, cur: FloatArray) -> tuple[int, int]:
    return int(ref.size), int(cur.size)


def _single_value(ref: FloatArray, cur: FloatArray) -> bool:
    """True when both samples hold one and the same value (no evidence of any change)."""
    return bool(ref.min() == ref.max() == cur.min() == cur.max())


def ks(reference: ArrayLike, current: ArrayLike, *, threshold: float | None = None) -> TestResult:
    """Two-sample Kolmogorov-Smirnov test (``scipy.stats.ks_2samp``, two-sided).

    Statistic D = sup |F_ref - F_cur|; exact p-value for small samples, asymptotic otherwise
    (scipy's ``method="auto"``). Drift when p < alpha.

    References
    ----------
    .. [1] Smirnov, N. (1948). Table for estimating the goodness of fit of empirical
       distributions. *Ann. Math. Statist.* 19(2), 279-281.
    .. [2] Hodges, J. L. (1958). The significance probability of the Smirnov two-sample test.
       *Arkiv för Matematik* 3(5), 469-486.

    Examples
    --------
    >>> import numpy as np
    >>> from drift_backend.stats.numerical import ks
    >>> rng = np.random.default_rng(0)
    >>> reference = rng.normal(size=1000)
    >>> res = ks(reference, rng.normal(0.5, size=1000))  # mean shifted by 0.5 sd
    >>> print(f"D = {res.statistic:.3f}, p = {res.p_value:.1e}, drifted: {res.drifted}")
    D = 0.237, p = 4.9e-25, drifted: True
    >>> ks(reference, rng.normal(size=1000)).drifted  # the same distribution
    False
    """
    ref, cur = clean_pair(reference, current)
    res = stats.ks_2samp(ref, cur)
    return p_value_result(
        "ks", "numerical", res.statistic, res.pvalue, _alpha(threshold), *_sizes(ref, cur)
    )


def cramer_von_mises(
    reference: ArrayLike, current: ArrayLike, *, threshold: float | None = None
) -> TestResult:
    """Two-sample Cramér-von Mises test (``scipy.stats.cramervonmises_2samp``; Anderson 1962).

    Exact p-value for small samples, asymptotic otherwise. Needs 2 values per sample.

    References
    ----------
    .. [1] Anderson, T. W. (1962). On the distribution of the two-sample Cramér-von Mises
       criterion. *Ann. Math. Statist.* 33(3), 1148-1159.

    Examples
    --------
    >>> import numpy as np
    >>> from drift_backend.stats.numerical import cramer_von_mises
    >>> rng = np.random.default_rng(0)
    >>> reference = rng.normal(size=1000)
    >>> res = cramer_von_mises(reference, rng.normal(0.5, size=1000))  # mean shifted by 0.5 sd
    >>> print(f"T = {res.statistic:.3f}, p = {res.p_value:.1e}, drifted: {res.drifted}")
    T = 13.208, p = 1.9e-10, drifted: True
    >>> cramer_von_mises(reference, rng.normal(size=1000)).drifted  # the same distribution
    False
    """
    ref, cur = clean_pair(reference, current, min_size=2)
    if _single_value(ref, cur):
        return p_value_result(
            "cramer_von_mises", "numerical", 0.0, 1.0, _alpha(threshold), *_sizes(ref, cur)
        )
    res = stats.cramervonmises_2samp(ref, cur)
    return p_value_result(
        "cramer_von_mises",
        "numerical",
        res.statistic,
        res.pvalue,
        _alpha(threshold),
        *_sizes(ref, cur),
    )


def anderson_darling(
    reference: ArrayLike, current: ArrayLike, *, threshold: float | None = None
) -> TestResult:
    """k-sample Anderson-Darling test for two samples (``scipy.stats.anderson_ksamp``,
    midrank variant; Scholz & Stephens 1987).

    The p-value is interpolated from scipy's table and therefore **capped to [0.001, 0.25]**:
    fine for decisions at the usual alphas, not for reporting tiny p-values or for ranking.
    Two identical constant samples give p = 1.

    References
    ----------
    .. [1] Scholz, F. W. and Stephens, M. A. (1987). K-sample Anderson-Darling tests. *J. Amer.
       Statist. Assoc.* 82(399), 918-924.

    Examples
    --------
    >>> import numpy as np
    >>> from drift_backend.stats.numerical import anderson_darling
    >>> rng = np.random.default_rng(0)
    >>> reference = rng.normal(size=1000)
    >>> res = anderson_darling(reference, rng.normal(0.5, size=1000))  # mean shifted by 0.5 sd
    >>> print(f"A = {res.statistic:.3f}, p = {res.p_value:.1e}, drifted: {res.drifted}")
    A = 87.509, p = 1.0e-03, drifted: True
    >>> anderson_darling(reference, rng.normal(size=1000)).drifted  # the same distribution
    False

    The p-value of the drifted sample is the table's floor 0.001, not its true value.
    """
    ref, cur = clean_pair(reference, current)
    if _single_value(ref, cur):
        return p_value_result(
            "anderson_darling", "numerical", 0.0, 1.0, _alpha(threshold), *_sizes(ref, cur)
        )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the documented p-value cap
        res = stats.anderson_ksamp([ref, cur], variant="midrank")
    return p_value_result(
        "anderson_darling",
        "numerical",
        res.statistic,
        res.pvalue,
        _alpha(threshold),
        *_sizes(ref, cur),
    )


def mann_whitney(
    reference: ArrayLike, current: ArrayLike, *, threshold: float | None = None
) -> TestResult:
    """Mann-Whitney U test, two-sided (``scipy.stats.mannwhitneyu``; Mann & Whitney 1947).

    Sensitive to a location shift, blind to a change of spread alone.

    References
    ----------
    .. [1] Mann, H. B. and Whitney, D. R. (1947). On a test of whether one of two random
       variables is stochastically larger than the other. *Ann. Math. Statist.* 18(1), 50-60.

    Examples
    --------
    >>> import numpy as np
    >>> from drift_backend.stats.numerical import mann_whitney
    >>> rng = np.random.default_rng(0)
    >>> reference = rng.normal(size=1000)
    >>> res = mann_whitney(reference, rng.normal(0.5, size=1000))  # mean shifted by 0.5 sd
    >>> print(f"U = {res.statistic:.3f}, p = {res.p_value:.1e}, drifted: {res.drifted}")
    U = 350761.000, p = 6.8e-31, drifted: True
    >>> mann_whitney(reference, rng.normal(size=1000)).drifted  # the same distribution
    False
    """
    ref, cur = clean_pair(reference, current)
    if _single_value(ref, cur):
        u = ref.size * cur.size / 2.0
        return p_value_result(
            "mann_whitney", "numerical", u, 1.0, _alpha(threshold), *_sizes(ref, cur)
        )
    res = stats.mannwhitneyu(ref, cur, alternative="two-sided")
    return p_value_result(
        "mann_whitney", "numerical", res.statistic, res.pvalue, _alpha(threshold), *_sizes(ref, cur)
    )


def t_test(
    reference: ArrayLike, current: ArrayLike, *, threshold: float | None = None
) -> TestResult:
    """Welch's unequal-variance t-test on the means (``scipy.stats.ttest_ind(equal_var=False)``).

    Needs 2 values per sample. When both samples have zero variance the test degenerates:
    equal means give t = 0, p = 1; different means give t = +-inf, p = 0.

    References
    ----------
    .. [1] Welch, B. L. (1947). The generalization of "Student's" problem when several different
       population variances are involved. *Biometrika* 34(1-2), 28-35.

    Examples
    --------
    >>> import numpy as np
    >>> from drift_backend.stats.numerical import t_test
    >>> rng = np.random.default_rng(0)
    >>> reference = rng.normal(size=1000)
    >>> res = t_test(reference, rng.normal(0.5, size=1000))  # mean shifted by 0.5 sd
    >>> print(f"t = {res.statistic:.3f}, p = {res.p_value:.1e}, drifted: {res.drifted}")
    t = -12.069, p = 2.0e-32, drifted: True
    >>> t_test(reference, rng.normal(size=1000)).drifted  # the same distribution
    False
    """
    ref, cur = clean_pair(reference, current, min_size=2)
    alpha = _alpha(threshold)
    if ref.var() == 0 and cur.var() == 0:
        diff = float(ref.mean() - cur.mean())
        if diff == 0:
            return p_value_result("t_test", "numerical", 0.0, 1.0, alpha, *_sizes(ref, cur))
        return p_value_result(
            "t_test", "numerical", float(np.sign(diff)) * np.inf, 0.0, alpha, *_sizes(ref, cur)
        )
    res = stats.ttest_ind(ref, cur, equal_var=False)
    return p_value_result(
        "t_test", "numerical", res.statistic, res.pvalue, alpha, *_sizes(ref, cur)
    )


def _cdf_l2_distance(u: FloatArray, v: FloatArray) -> float:
    """scipy's ``_cdf_distance(2, u, v)`` without weights, ``sqrt(integral (U - V)^2)`` (the
    energy distance's; Wasserstein-1 has the cheaper :func:`_w1`), equal to it up to rounding and faster on large samples (a thousand-feature check feels it).

    scipy evaluates both empirical CDFs at every point of the merged sample with two binary
    searches and sums with ``np.vecdot``; here one stable merge (linear on samples that are
    already sorted, as the kept values are) gives the CDFs as running counts. The counts
    differ from scipy's only inside runs of tied values, where the step width is 0.
    """
    values = np.concatenate((u, v))
    order = np.argsort(values, kind="stable")
    merged = values[order]
    deltas = np.diff(merged)
    in_u = np.cumsum(order < u.size)[:-1]
    in_v = np.arange(1, merged.size) - in_u
    gap = in_u / u.size - in_v / v.size
    return float(np.sqrt((np.square(gap) * deltas).sum()))


IntArray = np.ndarray[Any, np.dtype[np.int64]]


@lru_cache(maxsize=16)
def _quantile_steps(n: int, m: int) -> tuple[IntArray, IntArray, FloatArray]:
    """Where the empirical quantile functions of ``n`` and of ``m`` sorted values step:
    on each interval between their merged steps ``i/n`` and ``j/m`` (in integers on the
    common scale ``lcm(n, m)``), the index of the value each takes there and the interval's
    width. They depend on the sizes alone, so a check of many features of one size makes
    them once (the cache)."""
    g = math.gcd(n, m)
    step_u, step_v = m // g, n // g  # i/n and j/m on the scale lcm(n, m) = n * step_u
    ends = np.union1d(
        np.arange(1, n + 1, dtype=np.int64) * step_u, np.arange(1, m + 1, dtype=np.int64) * step_v
    )
    widths = np.diff(ends, prepend=0) / float(n * step_u)
    at_u = (ends + step_u - 1) // step_u - 1  # ceil(t * n) - 1 at the interval's end t
    at_v = (ends + step_v - 1) // step_v - 1
    for array in (at_u, at_v, widths):
        array.flags.writeable = False  # shared by every caller of the cache
    return at_u, at_v, widths


def _ascending(values: FloatArray) -> FloatArray:
    return values if bool(np.all(values[:-1] <= values[1:])) else np.sort(values)


def _w1(u: FloatArray, v: FloatArray) -> float:
    """Wasserstein-1 between two samples as the integral of the absolute difference of
    their quantile functions, equal to scipy's integral of the CDFs' difference up to
    rounding. On samples already sorted (the kept values are) it is a gather and a dot
    product, with no merge of the two samples (a thousand-feature check feels it)."""
    u, v = _ascending(u), _ascending(v)
    at_u, at_v, widths = _quantile_steps(u.size, v.size)
    return float(np.dot(widths, np.abs(u[at_u] - v[at_v])))


def _reference_std(ref: FloatArray) -> float:
    return max(float(np.std(ref)), MIN_STD)


def wasserstein(
    reference: ArrayLike, current: ArrayLike, *, threshold: float | None = None
) -> TestResult:
    """Wasserstein-1 distance normed by the reference standard deviation (as Evidently's
    ``wasserstein``: ``scipy.stats.wasserstein_distance / max(std(ref), 0.001)``).

    Drift when distance >= threshold (default 0.1, i.e. a shift of 0.1 reference sd).

    References
    ----------
    .. [1] Ramdas, A., García Trillos, N. and Cuturi, M. (2017). On Wasserstein two-sample
       testing and related families of nonparametric tests. *Entropy* 19(2), 47.

    Examples
    --------
    >>> import numpy as np
    >>> from drift_backend.stats.numerical import wasserstein
    >>> rng = np.random.default_rng(0)
    >>> reference = rng.normal(size=1000)
    >>> res = wasserstein(reference, rng.normal(0.5, size=1000))  # mean shifted by 0.5 sd
    >>> print(f"W = {res.distance:.3f}, drifted: {res.drifted}")
    W = 0.553, drifted: True
    >>> wasserstein(reference, rng.normal(size=1000)).drifted  # the same distribution
    False
    """
    ref, cur = clean_pair(reference, current)
    d = _w1(ref, cur) / _reference_std(ref)
    t = WASSERSTEIN_THRESHOLD if threshold is None else threshold
    return distance_result("wasserstein", "numerical", d, t, *_sizes(ref, cur), inclusive=True)


def energy_distance(
    reference: ArrayLike, current: ArrayLike, *, threshold: float | None = None
) -> TestResult:
    """Energy distance (Székely & Rizzo 2013; ``scipy.stats.energy_distance``) of both
    samples divided by the reference standard deviation, so that the threshold is
    scale-free (scipy's value grows with the square root of the unit, so dividing the
    distance itself by the sd would not be).

    Evidently's ``ed`` compares the raw (un-normed) distance with 0.1; we norm like its
    Wasserstein test. Drift when distance >= threshold (default 0.1).

    References
    ----------
    .. [1] Székely, G. J. and Rizzo, M. L. (2013). Energy statistics: a class of statistics
       based on distances. *J. Statist. Plann. Inference* 143(8), 1249-1272.

    Examples
    --------
    >>> import numpy as np
    >>> from drift_backend.stats.numerical import energy_distance
    >>> rng = np.random.default_rng(0)
    >>> reference = rng.normal(size=1000)
    >>> res = energy_distance(reference, rng.normal(0.5, size=1000))  # mean shifted by 0.5 sd
    >>> print(f"E = {res.distance:.3f}, drifted: {res.drifted}")
    E = 0.414, drifted: True
    >>> energy_distance(reference, rng.normal(size=1000)).drifted  # the same distribution
    False
    """
    ref, cur = clean_pair(reference, current)
    scale = _reference_std(ref)
    d = np.sqrt(2) * _cdf_l2_distance(ref / scale, cur / scale)  # stats.energy_distance
    t = ENERGY_THRESHOLD if threshold is None else threshold
    return distance_result("energy_distance", "numerical", d, t, *_sizes(ref, cur), inclusive=True)


def _binned(
    reference: ArrayLike, current: ArrayLike, n_bins: int, binning: h.Binning
) -> tuple[FloatArray, FloatArray, int, int]:
    ref, cur = clean_pair(reference, current)
    edges = h.reference_edges(ref, n_bins, binning)
    p = h.proportions(h.bin_counts(ref, edges))
    q = h.proportions(h.bin_counts(cur, edges))
    return p, q, *_sizes(ref, cur)


def psi(
    reference: ArrayLike,
    current: ArrayLike,
    *,
    threshold: float | None = None,
    n_bins: int = h.DEFAULT_BINS,
    binning: h.Binning = "quantile",
) -> TestResult:
    """Population stability index on bins frozen from the reference (Siddiqi 2006;
    Evidently ``psi``): ``sum((q - p) * ln(q / p))``, empty cells at ``EPSILON`` = 1e-4.

    Bins: see :func:`histogram.reference_edges` (default 10 reference quantile bins, plus
    under/overflow cells). Drift when PSI >= threshold (default 0.1).

    References
    ----------
    .. [1] Siddiqi, N. (2006). *Credit Risk Scorecards: Developing and Implementing Intelligent
       Credit Scoring*. Wiley, ch. 8.
    .. [2] Yurdakul, B. (2018). Statistical properties of population stability index. PhD
       thesis, Western Michigan University.

    Examples
    --------
    >>> import numpy as np
    >>> from drift_backend.stats.numerical import psi
    >>> rng = np.random.default_rng(0)
    >>> reference = rng.normal(size=1000)
    >>> res = psi(reference, rng.normal(0.5, size=1000))  # mean shifted by 0.5 sd
    >>> print(f"PSI = {res.distance:.3f}, drifted: {res.drifted}")
    PSI = 0.290, drifted: True
    >>> psi(reference, rng.normal(size=1000)).drifted  # the same distribution
    False
    """
    p, q, n, m = _binned(reference, current, n_bins, binning)
    t = PSI_THRESHOLD if threshold is None else threshold
    return distance_result("psi", "numerical", h.psi_value(p, q), t, n, m, inclusive=True)


def jensen_shannon(
    reference: ArrayLike,
    current: ArrayLike,
    *,
    threshold: float | None = None,
    n_bins: int = h.DEFAULT_BINS,
    binning: h.Binning = "quantile",
) -> TestResult:
    """Jensen-Shannon distance (``scipy.spatial.distance.jensenshannon``, natural log; Lin
    1991) between the binned samples; Evidently ``jensenshannon``. Drift when >= threshold.

    References
    ----------
    .. [1] Lin, J. (1991). Divergence measures based on the Shannon entropy. *IEEE Trans. Inf.
       Theory* 37(1), 145-151.
    .. [2] Endres, D. M. and Schindelin, J. E. (2003). A new metric for probability
       distributions. *IEEE Trans. Inf. Theory* 49(7), 1858-1860.

    Examples
    --------
    >>> import numpy as np
    >>> from drift_backend.stats.numerical import jensen_shannon
    >>> rng = np.random.default_rng(0)
    >>> reference = rng.normal(size=1000)
    >>> res = jensen_shannon(reference, rng.normal(0.5, size=1000))  # mean shifted by 0.5 sd
    >>> print(f"JS = {res.distance:.3f}, drifted: {res.drifted}")
    JS = 0.187, drifted: True
    >>> jensen_shannon(reference, rng.normal(size=1000)).drifted  # the same distribution
    False
    """
    p, q, n, m = _binned(reference, current, n_bins, binning)
    t = JENSEN_SHANNON_THRESHOLD if threshold is None else threshold
    return distance_result(
        "jensen_shannon", "numerical", h.jensen_shannon_value(p, q), t, n, m, inclusive=True
    )


def hellinger(
    reference: ArrayLike,
    current: ArrayLike,
    *,
    threshold: float | None = None,
    n_bins: int = h.DEFAULT_BINS,
    binning: h.Binning = "quantile",
) -> TestResult:
    """Hellinger distance between the binned samples, in [0, 1] (Evidently ``hellinger``).
    Drift when >= threshold (default 0.1).

    References
    ----------
    .. [1] Hellinger, E. (1909). Neue Begründung der Theorie quadratischer Formen von
       unendlichvielen Veränderlichen. *J. reine angew. Math.* 136, 210-271.

    Examples
    --------
    >>> import numpy as np
    >>> from drift_backend.stats.numerical import hellinger
    >>> rng = np.random.default_rng(0)
    >>> reference = rng.normal(size=1000)
    >>> res = hellinger(reference, rng.normal(0.5, size=1000))  # mean shifted by 0.5 sd
    >>> print(f"H = {res.distance:.3f}, drifted: {res.drifted}")
    H = 0.190, drifted: True
    >>> hellinger(reference, rng.normal(size=1000)).drifted  # the same distribution
    False
    """
    p, q, n, m = _binned(reference, current, n_bins, binning)
    t = HELLINGER_THRESHOLD if threshold is None else threshold
    return distance_result(
        "hellinger", "numerical", h.hellinger_value(p, q), t, n, m, inclusive=True
    )


def kl_div(
    reference: ArrayLike,
    current: ArrayLike,
    *,
    threshold: float | None = None,
    n_bins: int = h.DEFAULT_BINS,
    binning: h.Binning = "quantile",
) -> TestResult:
    """Kullback-Leibler divergence KL(reference || current) in nats between the binned
    samples, empty cells at 1e-4 (Evidently ``kl_div``, ``scipy.stats.entropy``).
    Drift when >= threshold (default 0.1).

    References
    ----------
    .. [1] Kullback, S. and Leibler, R. A. (1951). On information and sufficiency. *Ann. Math.
       Statist.* 22(1), 79-86.

    Examples
    --------
    >>> import numpy as np
    >>> from drift_backend.stats.numerical import kl_div
    >>> rng = np.random.default_rng(0)
    >>> reference = rng.normal(size=1000)
    >>> res = kl_div(reference, rng.normal(0.5, size=1000))  # mean shifted by 0.5 sd
    >>> print(f"KL = {res.distance:.3f}, drifted: {res.drifted}")
    KL = 0.137, drifted: True
    >>> kl_div(reference, rng.normal(size=1000)).drifted  # the same distribution
    False
    """
    p, q, n, m = _binned(reference, current, n_bins, binning)
    t = KL_THRESHOLD if threshold is None else threshold
    return distance_result("kl_div", "numerical", h.kl_value(p, q), t, n, m, inclusive=True)


def _linf_exact(ref: FloatArray, cur: FloatArray) -> float:
    points = np.concatenate([ref, cur])
    f_ref = np.searchsorted(np.sort(ref), points, side="right") / ref.size
    f_cur = np.searchsorted(np.sort(cur), points, side="right") / cur.size
    return float(np.max(np.abs(f_ref - f_cur)))


def linf(reference: ArrayLike, current: ArrayLike, *, threshold: float | None = None) -> TestResult:
    """SageMaker Model Monitor / Deequ ``linf_simple``: max |CDF_ref - CDF_cur| over the union
    of the sample points (Deequ ``Distance.scala``; equals the KS statistic D).

    Drift when the distance exceeds (``>``) the threshold (default 0.1). Deequ evaluates
    CDFs from KLL sketches; on raw samples this is the exact value.

    References
    ----------
    .. [1] Schelter, S., Lange, D., Schmidt, P., Celikel, M., Biessmann, F. and Grafberger, A.
       (2018). Automating large-scale data quality verification. *PVLDB* 11(12), 1781-1794.

    Examples
    --------
    >>> import numpy as np
    >>> from drift_backend.stats.numerical import linf
    >>> rng = np.random.default_rng(0)
    >>> reference = rng.normal(size=1000)
    >>> res = linf(reference, rng.normal(0.5, size=1000))  # mean shifted by 0.5 sd
    >>> print(f"L = {res.distance:.3f}, drifted: {res.drifted}")
    L = 0.237, drifted: True
    >>> linf(reference, rng.normal(size=1000)).drifted  # the same distribution
    False
    """
    ref, cur = clean_pair(reference, current)
    t = LINF_THRESHOLD if threshold is None else threshold
    return distance_result(
        "linf", "numerical", _linf_exact(ref, cur), t, *_sizes(ref, cur), inclusive=False
    )


def linf_robust(
    reference: ArrayLike, current: ArrayLike, *, threshold: float | None = None
) -> TestResult:
    """SageMaker / Deequ ``linf_robust``: ``max(0, linf - 1.8 * sqrt((n + m) / (n * m)))``,
    i.e. L-infinity minus roughly the KS critical value at alpha ~ 0.003, so that sampling
    noise alone does not cross the threshold. Drift when > threshold (default 0.1).

    References
    ----------
    .. [1] Schelter, S. et al. (2018). Automating large-scale data quality verification. *PVLDB*
       11(12), 1781-1794 (Deequ).

    Examples
    --------
    >>> import numpy as np
    >>> from drift_backend.stats.numerical import linf_robust
    >>> rng = np.random.default_rng(0)
    >>> reference = rng.normal(size=1000)
    >>> res = linf_robust(reference, rng.normal(0.5, size=1000))  # mean shifted by 0.5 sd
    >>> print(f"L = {res.distance:.3f}, drifted: {res.drifted}")
    L = 0.157, drifted: True
    >>> linf_robust(reference, rng.normal(size=1000)).drifted  # the same distribution
    False

    The plain L-infinity of the same samples is 0.237: the robust form subtracts 0.080
    (n = m = 1000).
    """
    ref, cur = clean_pair(reference, current)
    d = h.robust_linf(_linf_exact(ref, cur), ref.size, cur.size)
    t = LINF_THRESHOLD if threshold is None else threshold
    return distance_result("linf_robust", "numerical", d, t, *_sizes(ref, cur), inclusive=False)
