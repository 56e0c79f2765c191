"""Multiple-testing correction across the features of one run, and effect sizes.

References: Benjamini & Hochberg (1995), ``scipy.stats.false_discovery_control``; Holm
(1979); Bonferroni. Effect sizes: Cohen (1988) for d, Cramér (1946) for V.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import numpy as np
from scipy import stats

from drift_backend.stats._common import ArrayLike, check_counts, clean_pair

Correction = Literal["bh", "holm", "bonferroni", "none"]
CORRECTIONS: tuple[Correction, ...] = ("bh", "holm", "bonferroni", "none")


def adjust(p_values: Sequence[float | None], method: Correction = "bh") -> list[float | None]:
    """Adjusted p-values, in input order; compare each with alpha.

    ``None`` or NaN entries (untestable features, distance tests) stay ``None`` and do not
    count in the family size. ``"bh"``: Benjamini-Hochberg step-up, controls the false
    discovery rate; ``"holm"``: Holm step-down, controls the family-wise error rate;
    ``"bonferroni"``: ``min(1, m p)``; ``"none"``: unchanged.

    References
    ----------
    .. [1] Benjamini, Y. and Hochberg, Y. (1995). Controlling the false discovery rate: a
       practical and powerful approach to multiple testing. *J. Roy. Statist. Soc. B* 57(1),
       289-300.
    .. [2] Holm, S. (1979). A simple sequentially rejective multiple test procedure. *Scand. J.
       Statist.* 6(2), 65-70.
    .. [3] Dunn, O. J. (1961). Multiple comparisons among means. *J. Amer. Statist. Assoc.*
       56(293), 52-64 (the Bonferroni correction).

    Examples
    --------
    >>> from drift_backend.stats.correction import adjust
    >>> p_values = [0.01, 0.04, 0.03, None, 0.20]  # None: a distance test, or untestable
    >>> [None if p is None else round(p, 3) for p in adjust(p_values)]
    [0.04, 0.053, 0.053, None, 0.2]
    >>> [None if p is None else round(p, 3) for p in adjust(p_values, "holm")]
    [0.04, 0.09, 0.09, None, 0.2]
    >>> [None if p is None else round(p, 3) for p in adjust(p_values, "bonferroni")]
    [0.04, 0.16, 0.12, None, 0.8]
    """
    if method not in CORRECTIONS:
        raise ValueError(f"unknown correction {method!r}; use one of {', '.join(CORRECTIONS)}")
    index = [i for i, p in enumerate(p_values) if p is not None and not math.isnan(p)]
    ps = np.array([p_values[i] for i in index], dtype=np.float64)
    if np.any((ps < 0) | (ps > 1)):
        raise ValueError("p-values must lie in [0, 1]")
    m = ps.size
    if m == 0 or method == "none":
        adjusted = ps
    elif method == "bh":
        adjusted = stats.false_discovery_control(ps, method="bh")
    elif method == "bonferroni":
        adjusted = np.minimum(1.0, ps * m)
    else:  # holm
        order = np.argsort(ps, kind="stable")
        steps = np.maximum.accumulate((m - np.arange(m)) * ps[order])
        adjusted = np.empty(m)
        adjusted[order] = np.minimum(1.0, steps)
    out: list[float | None] = [None] * len(p_values)
    for i, p in zip(index, adjusted, strict=True):
        out[i] = float(p)
    return out


def cohens_d(reference: ArrayLike, current: ArrayLike) -> float:
    """Standardized mean difference (current - reference) / pooled sd (Cohen's d).

    Zero when both samples are constant and equal; +-inf when constant and different.

    References
    ----------
    .. [1] Cohen, J. (1988). *Statistical Power Analysis for the Behavioral Sciences*, 2nd ed.
       Lawrence Erlbaum, ch. 2.

    Examples
    --------
    >>> from drift_backend.stats.correction import cohens_d
    >>> round(cohens_d([1, 2, 3, 4], [2, 3, 4, 5]), 3)
    0.775
    """
    ref, cur = clean_pair(reference, current, min_size=2)
    n, m = ref.size, cur.size
    pooled = math.sqrt(((n - 1) * ref.var(ddof=1) + (m - 1) * cur.var(ddof=1)) / (n + m - 2))
    diff = float(cur.mean() - ref.mean())
    if pooled == 0:
        return 0.0 if diff == 0 else math.copysign(math.inf, diff)
    return diff / pooled


def cramers_v(reference_counts: ArrayLike, current_counts: ArrayLike) -> float:
    """Cramér's V of the 2 x k table [reference, current]: ``sqrt(chi2 / N)``, in [0, 1].

    References
    ----------
    .. [1] Cramér, H. (1946). *Mathematical Methods of Statistics*. Princeton University Press,
       section 21.9.

    Examples
    --------
    >>> from drift_backend.stats.correction import cramers_v
    >>> round(cramers_v([50, 50], [30, 70]), 3)
    0.204
    """
    ref, cur = check_counts(reference_counts, current_counts)
    keep = (ref > 0) | (cur > 0)
    if keep.sum() < 2:
        return 0.0
    table = np.vstack([ref[keep], cur[keep]])
    # Pearson's chi-square of the table, as chi2_contingency(correction=False) computes it;
    # by hand because scipy's wrapper costs 40x the arithmetic on a per-feature hot path.
    total = table.sum()
    expected = np.outer(table.sum(axis=1), table.sum(axis=0)) / total
    chi2 = float(((table - expected) ** 2 / expected).sum())
    return float(math.sqrt(chi2 / total))
