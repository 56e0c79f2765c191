"""Multivariate and model-output drift: kernel MMD two-sample test, prediction drift."""

from __future__ import annotations

from collections.abc import Hashable, Iterable

import numpy as np

from drift_backend.stats._common import ALPHA, ArrayLike, FloatArray, p_value_result
from drift_backend.stats.categorical import align_counts
from drift_backend.stats.choice import choose_test
from drift_backend.stats.registry import CATEGORICAL_TESTS
from drift_backend.stats.result import TestResult


def _rows(data: ArrayLike, name: str) -> FloatArray:
    arr = np.asarray(data, dtype=np.float64)
    if arr.ndim == 1:
        arr = arr.reshape(-1, 1)
    if arr.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array (rows x features)")
    arr = arr[np.all(np.isfinite(arr), axis=1)]
    if arr.shape[0] < 2:
        raise ValueError(f"{name} has {arr.shape[0]} complete finite row(s); at least 2 needed")
    return arr


def _subsample(arr: FloatArray, limit: int, rng: np.random.Generator) -> FloatArray:
    if arr.shape[0] <= limit:
        return arr
    return arr[rng.choice(arr.shape[0], size=limit, replace=False)]


def _rbf_kernel(pooled: FloatArray) -> FloatArray:
    sq = np.sum(pooled**2, axis=1)
    d2 = np.maximum(sq[:, None] + sq[None, :] - 2.0 * pooled @ pooled.T, 0.0)
    upper = d2[np.triu_indices_from(d2, k=1)]
    bandwidth = float(np.median(upper))
    if bandwidth <= 0:
        positive = upper[upper > 0]
        bandwidth = float(positive.mean()) if positive.size else 1.0
    kernel: FloatArray = np.exp(-d2 / bandwidth)
    return kernel


def _mmd2(kernel: FloatArray, labels: FloatArray, n: int, m: int) -> FloatArray:
    """Unbiased MMD^2 for each column of the 0/1 indicator matrix ``labels`` (1 = reference)."""
    row_sums = kernel.sum(axis=1)
    total = row_sums.sum()
    s_xx = np.sum(labels * (kernel @ labels), axis=0)
    s_xy = labels.T @ row_sums - s_xx
    s_yy = total - s_xx - 2.0 * s_xy
    diag = 1.0  # exp(0) on the diagonal of an RBF kernel
    result: FloatArray = (
        (s_xx - n * diag) / (n * (n - 1)) + (s_yy - m * diag) / (m * (m - 1)) - 2.0 * s_xy / (n * m)
    )
    return result


def mmd(
    reference_2d: ArrayLike,
    current_2d: ArrayLike,
    *,
    permutations: int = 200,
    max_samples: int = 1000,
    seed: int | None = 0,
    threshold: float | None = None,
) -> TestResult:
    """Kernel maximum mean discrepancy two-sample test (Gretton et al., JMLR 2012).

    Rows with any NaN/inf are dropped; each side is randomly subsampled to at most
    ``max_samples`` rows (seeded), then the features are standardized with the reference
    mean and sd. Kernel: Gaussian RBF ``exp(-|x - y|^2 / (2 s^2))`` with ``2 s^2`` the median
    pairwise squared distance of the pooled rows (median heuristic). Statistic: the
    unbiased MMD^2. p-value: ``(k + 1) / (B + 1)`` with k of B random relabellings reaching
    the observed statistic (Phipson & Smyth 2010), so never below ``1 / (B + 1)``.
    Reported sample sizes are those tested (after subsampling).

    References
    ----------
    .. [1] Gretton, A., Borgwardt, K. M., Rasch, M. J., Schölkopf, B. and Smola, A. (2012). A
       kernel two-sample test. *J. Mach. Learn. Res.* 13, 723-773.
    .. [2] Phipson, B. and Smyth, G. K. (2010). Permutation p-values should never be zero.
       *Stat. Appl. Genet. Mol. Biol.* 9(1), article 39.

    Examples
    --------
    >>> import numpy as np
    >>> from drift_backend.stats.multivariate import mmd
    >>> rng = np.random.default_rng(0)
    >>> reference = rng.normal(size=(300, 3))
    >>> current = rng.normal(size=(300, 3))
    >>> current[:, 0] += 0.5  # one of three features shifted by 0.5 sd
    >>> res = mmd(reference, current, permutations=199)
    >>> print(f"MMD^2 = {res.statistic:.4f}, p = {res.p_value:.3f}, drifted: {res.drifted}")
    MMD^2 = 0.0234, p = 0.005, drifted: True

    p = 0.005 = 1 / 200 is the smallest p-value 199 permutations can give.

    >>> mmd(reference, rng.normal(size=(300, 3)), permutations=199).drifted
    False
    """
    if permutations < 1 or max_samples < 2:
        raise ValueError("permutations must be >= 1 and max_samples >= 2")
    ref, cur = _rows(reference_2d, "reference"), _rows(current_2d, "current")
    if ref.shape[1] != cur.shape[1]:
        raise ValueError(f"feature counts differ ({ref.shape[1]} vs {cur.shape[1]})")
    rng = np.random.default_rng(seed)
    ref, cur = _subsample(ref, max_samples, rng), _subsample(cur, max_samples, rng)
    scale = ref.std(axis=0)
    scale[scale == 0] = 1.0
    pooled = (np.vstack([ref, cur]) - ref.mean(axis=0)) / scale
    kernel = _rbf_kernel(pooled)
    n, m = ref.shape[0], cur.shape[0]
    observed = np.zeros((n + m, 1))
    observed[:n] = 1.0
    stat = float(_mmd2(kernel, observed, n, m)[0])
    labels = np.zeros((n + m, permutations))
    for b in range(permutations):
        labels[rng.permutation(n + m)[:n], b] = 1.0
    null = _mmd2(kernel, labels, n, m)
    exceed = int(np.sum(null >= stat - 1e-12))
    p = (exceed + 1) / (permutations + 1)
    alpha = ALPHA if threshold is None else threshold
    return p_value_result("mmd", "multivariate", stat, p, alpha, n, m)


def prediction_drift(
    reference_classes: Iterable[Hashable],
    current_classes: Iterable[Hashable],
    *,
    method: str | None = None,
    threshold: float | None = None,
) -> TestResult:
    """Drift of the predicted-class distribution: a categorical test on the class counts.

    By default the test follows :func:`choice.choose_test` for a categorical column:
    ``z_test`` (2 classes) or ``chi_square`` for n_reference <= 1000, else
    ``jensen_shannon`` (threshold 0.1). ``method`` picks any categorical test by name.

    Examples
    --------
    >>> from drift_backend.stats.multivariate import prediction_drift
    >>> reference = ["cat"] * 300 + ["dog"] * 200
    >>> current = ["cat"] * 240 + ["dog"] * 260
    >>> res = prediction_drift(reference, current)  # two classes, 500 rows: the z-test
    >>> print(f"{res.method}: p = {res.p_value:.1e}, drifted: {res.drifted}")
    z_test: p = 1.4e-04, drifted: True
    >>> res = prediction_drift(reference, current, method="jensen_shannon")
    >>> print(f"{res.method}: {res.distance:.3f}, drifted: {res.drifted}")
    jensen_shannon: 0.085, drifted: False
    """
    _, ref, cur = align_counts(reference_classes, current_classes)
    if ref.sum() == 0 or cur.sum() == 0:
        raise ValueError("prediction_drift needs at least one class label on each side")
    if method is None:
        choice = choose_test("categorical", round(ref.sum()), ref.size)
        method, threshold = choice.name, choice.threshold if threshold is None else threshold
    if method not in CATEGORICAL_TESTS:
        raise ValueError(f"unknown categorical test {method!r}")
    return CATEGORICAL_TESTS[method](ref, cur, threshold=threshold)
