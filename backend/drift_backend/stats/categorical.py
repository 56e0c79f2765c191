"""Two-sample drift tests on categorical features, on count vectors over the same categories.

Use :func:`align_counts` to turn label arrays (or ``{category: count}`` mappings) into two
aligned count vectors over the union of categories. Zero counts are allowed; categories
absent from both samples are ignored by the hypothesis tests.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Hashable, Iterable, Mapping
from typing import Any

import numpy as np
from scipy import stats

from drift_backend.stats import histogram as h
from drift_backend.stats._common import (
    ALPHA,
    ArrayLike,
    FloatArray,
    check_counts,
    count_proportions,
    distance_result,
    p_value_result,
)
from drift_backend.stats.result import TestResult

PSI_THRESHOLD = 0.1
JENSEN_SHANNON_THRESHOLD = 0.1
HELLINGER_THRESHOLD = 0.1
TVD_THRESHOLD = 0.1
LINF_THRESHOLD = 0.1
#: Pseudo-count added to every reference category by the goodness-of-fit chi-square and
#: G-tests when a category seen in the current sample never occurs in the reference.
PSEUDO_COUNT = 0.5

Labels = Iterable[Hashable] | Mapping[Hashable, float]


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _count(data: Labels) -> dict[Hashable, float]:
    if isinstance(data, Mapping):
        return {k: float(v) for k, v in data.items() if not _is_missing(k)}
    labels = data.tolist() if isinstance(data, np.ndarray) else list(data)
    return {k: float(v) for k, v in Counter(labels).items() if not _is_missing(k)}


def align_counts(
    reference: Labels, current: Labels
) -> tuple[list[Hashable], FloatArray, FloatArray]:
    """Categories (the sorted union) and the two aligned count vectors.

    Each side is either a sequence/array of labels or a ``{category: count}`` mapping;
    missing labels (None, NaN) are dropped. Categories sort naturally, or by ``repr``
    when their types do not compare.

    Examples
    --------
    >>> from drift_backend.stats.categorical import align_counts
    >>> categories, ref, cur = align_counts(["a", "b", "b", None], {"b": 1, "c": 1})
    >>> categories, ref.tolist(), cur.tolist()
    (['a', 'b', 'c'], [1.0, 2.0, 0.0], [0.0, 1.0, 1.0])
    """
    ref, cur = _count(reference), _count(current)
    keys = set(ref) | set(cur)
    try:
        categories: list[Hashable] = sorted(keys)  # type: ignore[type-var]
    except TypeError:
        categories = sorted(keys, key=repr)
    return (
        categories,
        np.array([ref.get(k, 0.0) for k in categories], dtype=np.float64),
        np.array([cur.get(k, 0.0) for k in categories], dtype=np.float64),
    )


def _observed(
    reference_counts: ArrayLike, current_counts: ArrayLike
) -> tuple[FloatArray, FloatArray, int, int]:
    ref, cur = check_counts(reference_counts, current_counts)
    keep = (ref > 0) | (cur > 0)
    return ref[keep], cur[keep], round(ref.sum()), round(cur.sum())


def _divergence_test(
    method: str,
    lambda_: str,
    reference_counts: ArrayLike,
    current_counts: ArrayLike,
    threshold: float | None,
    reference_is_sample: bool,
) -> TestResult:
    ref, cur, n, m = _observed(reference_counts, current_counts)
    alpha = ALPHA if threshold is None else threshold
    if ref.size < 2:
        return p_value_result(method, "categorical", 0.0, 1.0, alpha, n, m)
    if reference_is_sample:
        res = stats.chi2_contingency(np.vstack([ref, cur]), correction=False, lambda_=lambda_)
        return p_value_result(method, "categorical", res.statistic, res.pvalue, alpha, n, m)
    base = ref + PSEUDO_COUNT if np.any((ref == 0) & (cur > 0)) else ref
    expected = base / base.sum() * cur.sum()
    gof = stats.power_divergence(cur, expected, lambda_=lambda_)
    return p_value_result(method, "categorical", gof.statistic, gof.pvalue, alpha, n, m)


def chi_square(
    reference_counts: ArrayLike,
    current_counts: ArrayLike,
    *,
    threshold: float | None = None,
    reference_is_sample: bool = True,
) -> TestResult:
    """Pearson chi-square test that both samples come from one categorical distribution.

    Default (``reference_is_sample=True``): the 2 x k test of homogeneity
    (``scipy.stats.chi2_contingency``, no continuity correction), which accounts for the
    reference being a sample too, and is well calibrated for any n_reference / n_current.
    ``reference_is_sample=False``: Evidently's goodness-of-fit form
    (``scipy.stats.chisquare`` of the current counts against the reference proportions
    scaled to n_current), valid only when the reference is much larger than the current
    sample (otherwise it raises too many alarms: with equal sizes its statistic is about
    twice the homogeneity one). There, a category present in the current sample but
    never in the reference would give an infinite statistic; instead every reference
    category gets ``PSEUDO_COUNT`` = 0.5 (Jeffreys) before forming proportions.

    Categories absent from both samples are dropped; with fewer than two categories left
    there is nothing to test: statistic 0, p = 1.

    References
    ----------
    .. [1] Pearson, K. (1900). On the criterion that a given system of deviations from the
       probable in the case of a correlated system of variables is such that it can be
       reasonably supposed to have arisen from random sampling. *Phil. Mag.* 50(302), 157-175.

    Examples
    --------
    >>> from drift_backend.stats.categorical import chi_square
    >>> reference_counts, current_counts = [500, 300, 200], [380, 340, 280]
    >>> res = chi_square(reference_counts, current_counts)
    >>> print(f"chi2 = {res.statistic:.3f}, p = {res.p_value:.1e}, drifted: {res.drifted}")
    chi2 = 32.197, p = 1.0e-07, drifted: True

    The goodness-of-fit form treats the reference proportions as known, so its statistic is
    about twice as large with samples of equal size:

    >>> res = chi_square(reference_counts, current_counts, reference_is_sample=False)
    >>> print(f"chi2 = {res.statistic:.3f}, p = {res.p_value:.1e}")
    chi2 = 66.133, p = 4.4e-15
    """
    return _divergence_test(
        "chi_square", "pearson", reference_counts, current_counts, threshold, reference_is_sample
    )


def g_test(
    reference_counts: ArrayLike,
    current_counts: ArrayLike,
    *,
    threshold: float | None = None,
    reference_is_sample: bool = True,
) -> TestResult:
    """G-test (log-likelihood ratio; Sokal & Rohlf): as :func:`chi_square` with
    ``lambda_="log-likelihood"`` (``chi2_contingency`` / ``power_divergence``).

    References
    ----------
    .. [1] Sokal, R. R. and Rohlf, F. J. (2012). *Biometry*, 4th ed. W. H. Freeman, ch. 17.
    .. [2] Wilks, S. S. (1938). The large-sample distribution of the likelihood ratio for
       testing composite hypotheses. *Ann. Math. Statist.* 9(1), 60-62.

    Examples
    --------
    >>> from drift_backend.stats.categorical import g_test
    >>> reference_counts, current_counts = [500, 300, 200], [380, 340, 280]
    >>> res = g_test(reference_counts, current_counts)
    >>> print(f"G = {res.statistic:.3f}, p = {res.p_value:.1e}, drifted: {res.drifted}")
    G = 32.312, p = 9.6e-08, drifted: True
    """
    return _divergence_test(
        "g_test", "log-likelihood", reference_counts, current_counts, threshold, reference_is_sample
    )


def _two_cells(
    method: str, reference_counts: ArrayLike, current_counts: ArrayLike
) -> tuple[FloatArray, FloatArray, int, int]:
    ref, cur, n, m = _observed(reference_counts, current_counts)
    if ref.size > 2:
        raise ValueError(f"{method} needs a binary feature; got {ref.size} categories")
    if ref.size == 1:
        ref, cur = np.append(ref, 0.0), np.append(cur, 0.0)
    return ref, cur, n, m


def fisher_exact(
    reference_counts: ArrayLike, current_counts: ArrayLike, *, threshold: float | None = None
) -> TestResult:
    """Fisher's exact test on the 2 x 2 table [reference counts, current counts]
    (``scipy.stats.fisher_exact``, two-sided); statistic = the sample odds ratio.

    Binary features only: more than two observed categories raise ``ValueError``. A single
    observed category gives odds ratio 1 and p = 1.

    References
    ----------
    .. [1] Fisher, R. A. (1922). On the interpretation of chi-square from contingency tables,
       and the calculation of P. *J. Roy. Statist. Soc.* 85(1), 87-94.

    Examples
    --------
    >>> from drift_backend.stats.categorical import fisher_exact
    >>> res = fisher_exact([90, 10], [75, 25])  # the second category went from 10% to 25%
    >>> print(f"odds ratio = {res.statistic:.2f}, p = {res.p_value:.3f}, drifted: {res.drifted}")
    odds ratio = 3.00, p = 0.009, drifted: True
    """
    ref, cur, n, m = _two_cells("fisher_exact", reference_counts, current_counts)
    alpha = ALPHA if threshold is None else threshold
    if ref[1] == 0 and cur[1] == 0:
        return p_value_result("fisher_exact", "categorical", 1.0, 1.0, alpha, n, m)
    table = np.rint(np.vstack([ref, cur])).astype(np.int64)
    res = stats.fisher_exact(table)
    return p_value_result("fisher_exact", "categorical", res.statistic, res.pvalue, alpha, n, m)


def z_test(
    reference_counts: ArrayLike, current_counts: ArrayLike, *, threshold: float | None = None
) -> TestResult:
    """Two-proportion z-test with pooled variance, two-sided (Evidently's ``z``; any
    statistics textbook): with p1, p2 the shares of the first category,
    ``z = (p2 - p1) / sqrt(p (1 - p) (1/n + 1/m))``, ``p`` the pooled share; ``z**2``
    equals the 2 x 2 Pearson chi-square without continuity correction.

    Binary features only (``ValueError`` otherwise); one observed category gives z = 0, p = 1.

    References
    ----------
    .. [1] Fleiss, J. L., Levin, B. and Paik, M. C. (2003). *Statistical Methods for Rates and
       Proportions*, 3rd ed. Wiley, ch. 2.

    Examples
    --------
    >>> from drift_backend.stats.categorical import z_test
    >>> res = z_test([90, 10], [75, 25])
    >>> print(f"z = {res.statistic:.3f}, p = {res.p_value:.3f}, drifted: {res.drifted}")
    z = -2.791, p = 0.005, drifted: True
    """
    ref, cur, n_obs, m_obs = _two_cells("z_test", reference_counts, current_counts)
    alpha = ALPHA if threshold is None else threshold
    n, m = float(ref.sum()), float(cur.sum())
    p1, p2 = ref[0] / n, cur[0] / m
    pooled = (ref[0] + cur[0]) / (n + m)
    if pooled in (0.0, 1.0):
        return p_value_result("z_test", "categorical", 0.0, 1.0, alpha, n_obs, m_obs)
    z = float((p2 - p1) / math.sqrt(pooled * (1.0 - pooled) * (1.0 / n + 1.0 / m)))
    p = float(2.0 * stats.norm.sf(abs(z)))
    return p_value_result("z_test", "categorical", z, p, alpha, n_obs, m_obs)


def psi(
    reference_counts: ArrayLike, current_counts: ArrayLike, *, threshold: float | None = None
) -> TestResult:
    """Population stability index over categories, empty cells at 1e-4 (Evidently ``psi``).
    Drift when >= threshold (default 0.1).

    References
    ----------
    .. [1] Siddiqi, N. (2006). *Credit Risk Scorecards*. Wiley, ch. 8.

    Examples
    --------
    >>> from drift_backend.stats.categorical import psi
    >>> reference_counts, current_counts = [500, 300, 200], [380, 340, 280]
    >>> res = psi(reference_counts, current_counts)
    >>> print(f"PSI = {res.distance:.3f}, drifted: {res.drifted}")
    PSI = 0.065, drifted: False
    """
    p, q, n, m = count_proportions(reference_counts, current_counts)
    t = PSI_THRESHOLD if threshold is None else threshold
    return distance_result("psi", "categorical", h.psi_value(p, q), t, n, m, inclusive=True)


def jensen_shannon(
    reference_counts: ArrayLike, current_counts: ArrayLike, *, threshold: float | None = None
) -> TestResult:
    """Jensen-Shannon distance over categories (scipy, natural log; Evidently
    ``jensenshannon``). Drift when >= threshold (default 0.1).

    References
    ----------
    .. [1] Lin, J. (1991). Divergence measures based on the Shannon entropy. *IEEE Trans. Inf.
       Theory* 37(1), 145-151.

    Examples
    --------
    >>> from drift_backend.stats.categorical import jensen_shannon
    >>> reference_counts, current_counts = [500, 300, 200], [380, 340, 280]
    >>> res = jensen_shannon(reference_counts, current_counts)
    >>> print(f"JS = {res.distance:.3f}, drifted: {res.drifted}")
    JS = 0.090, drifted: False
    """
    p, q, n, m = count_proportions(reference_counts, current_counts)
    t = JENSEN_SHANNON_THRESHOLD if threshold is None else threshold
    return distance_result(
        "jensen_shannon", "categorical", h.jensen_shannon_value(p, q), t, n, m, inclusive=True
    )


def hellinger(
    reference_counts: ArrayLike, current_counts: ArrayLike, *, threshold: float | None = None
) -> TestResult:
    """Hellinger distance over categories, in [0, 1] (Evidently ``hellinger``).
    Drift when >= threshold (default 0.1).

    References
    ----------
    .. [1] Hellinger, E. (1909). Neue Begründung der Theorie quadratischer Formen von
       unendlichvielen Veränderlichen. *J. reine angew. Math.* 136, 210-271.

    Examples
    --------
    >>> from drift_backend.stats.categorical import hellinger
    >>> reference_counts, current_counts = [500, 300, 200], [380, 340, 280]
    >>> res = hellinger(reference_counts, current_counts)
    >>> print(f"H = {res.distance:.3f}, drifted: {res.drifted}")
    H = 0.090, drifted: False
    """
    p, q, n, m = count_proportions(reference_counts, current_counts)
    t = HELLINGER_THRESHOLD if threshold is None else threshold
    return distance_result(
        "hellinger", "categorical", h.hellinger_value(p, q), t, n, m, inclusive=True
    )


def tvd(
    reference_counts: ArrayLike, current_counts: ArrayLike, *, threshold: float | None = None
) -> TestResult:
    """Total variation distance ``sum |p - q| / 2`` over categories, in [0, 1].
    Drift when >= threshold (default 0.1).

    References
    ----------
    .. [1] Levin, D. A., Peres, Y. and Wilmer, E. L. (2009). *Markov Chains and Mixing Times*.
       AMS, ch. 4.1.

    Examples
    --------
    >>> from drift_backend.stats.categorical import tvd
    >>> reference_counts, current_counts = [500, 300, 200], [380, 340, 280]
    >>> res = tvd(reference_counts, current_counts)
    >>> print(f"TVD = {res.distance:.3f}, drifted: {res.drifted}")
    TVD = 0.120, drifted: True
    """
    p, q, n, m = count_proportions(reference_counts, current_counts)
    t = TVD_THRESHOLD if threshold is None else threshold
    return distance_result("tvd", "categorical", h.tvd_value(p, q), t, n, m, inclusive=True)


def linf(
    reference_counts: ArrayLike, current_counts: ArrayLike, *, threshold: float | None = None
) -> TestResult:
    """SageMaker / Deequ categorical L-infinity ``max_v |p1(v) - p2(v)|``
    (Deequ ``Distance.scala``). Drift when > threshold (default 0.1).

    References
    ----------
    .. [1] Schelter, S. et al. (2018). Automating large-scale data quality verification. *PVLDB*
       11(12), 1781-1794 (Deequ).

    Examples
    --------
    >>> from drift_backend.stats.categorical import linf
    >>> reference_counts, current_counts = [500, 300, 200], [380, 340, 280]
    >>> res = linf(reference_counts, current_counts)
    >>> print(f"L = {res.distance:.3f}, drifted: {res.drifted}")
    L = 0.120, drifted: True
    """
    p, q, n, m = count_proportions(reference_counts, current_counts)
    t = LINF_THRESHOLD if threshold is None else threshold
    return distance_result("linf", "categorical", h.linf_value(p, q), t, n, m, inclusive=False)
