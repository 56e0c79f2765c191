"""Input checks and the two result builders shared by the catalog modules."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from drift_backend.stats.result import Kind, TestResult

FloatArray = npt.NDArray[np.float64]
ArrayLike = npt.ArrayLike

#: Default significance level of the hypothesis tests.
ALPHA = 0.05


def clean_sample(values: ArrayLike, name: str, *, min_size: int = 1) -> FloatArray:
    """A 1-D float copy of ``values`` with NaN and +-inf dropped.

    Raises ``ValueError`` when fewer than ``min_size`` finite values remain (the caller
    reports such a feature as untestable).
    """
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 1:
        arr = arr.reshape(-1)
    arr = arr[np.isfinite(arr)]
    if arr.size < min_size:
        raise ValueError(
            f"{name} has {arr.size} finite value(s); at least {min_size} needed for this test"
        )
    return arr


def clean_pair(
    reference: ArrayLike, current: ArrayLike, *, min_size: int = 1
) -> tuple[FloatArray, FloatArray]:
    """Both samples cleaned by :func:`clean_sample`."""
    return (
        clean_sample(reference, "reference", min_size=min_size),
        clean_sample(current, "current", min_size=min_size),
    )


def check_counts(
    reference_counts: ArrayLike | Sequence[float], current_counts: ArrayLike | Sequence[float]
) -> tuple[FloatArray, FloatArray]:
    """Two non-negative finite count vectors of equal length, each with a positive total."""
    ref = np.asarray(reference_counts, dtype=np.float64).reshape(-1)
    cur = np.asarray(current_counts, dtype=np.float64).reshape(-1)
    if ref.shape != cur.shape:
        raise ValueError(
            f"count vectors differ in length ({ref.size} vs {cur.size}); align them first"
        )
    for name, arr in (("reference", ref), ("current", cur)):
        if not np.all(np.isfinite(arr)) or np.any(arr < 0):
            raise ValueError(f"{name} counts must be finite and non-negative")
        if arr.sum() <= 0:
            raise ValueError(f"{name} counts are empty (total 0)")
    return ref, cur


def count_proportions(
    reference_counts: ArrayLike, current_counts: ArrayLike
) -> tuple[FloatArray, FloatArray, int, int]:
    """``(p, q, n, m)``: two checked count vectors as proportions, and their totals."""
    ref, cur = check_counts(reference_counts, current_counts)
    return ref / ref.sum(), cur / cur.sum(), round(ref.sum()), round(cur.sum())


def p_value_result(
    method: str,
    kind: Kind,
    statistic: float,
    p_value: float,
    alpha: float,
    n_reference: int,
    n_current: int,
) -> TestResult:
    """A hypothesis-test result: drift when ``p_value < alpha``."""
    p = float(min(max(p_value, 0.0), 1.0))
    if math.isnan(p_value):
        raise ValueError(f"{method}: the p-value is undefined for these samples")
    return TestResult(
        method=method,
        kind=kind,
        statistic=float(statistic),
        p_value=p,
        distance=None,
        threshold=float(alpha),
        drifted=p < alpha,
        n_reference=int(n_reference),
        n_current=int(n_current),
    )


def distance_result(
    method: str,
    kind: Kind,
    distance: float,
    threshold: float,
    n_reference: int,
    n_current: int,
    *,
    inclusive: bool,
) -> TestResult:
    """A distance result: drift when ``distance >= threshold`` (``inclusive``) or ``>``."""
    d = float(distance)
    return TestResult(
        method=method,
        kind=kind,
        statistic=d,
        p_value=None,
        distance=d,
        threshold=float(threshold),
        drifted=d >= threshold if inclusive else d > threshold,
        n_reference=int(n_reference),
        n_current=int(n_current),
    )
