"""The check engine: a current batch against a stored baseline profile, one report.

Pure (no I/O); the worker runs it in a process pool. Cost is O(current batch): the reference
is known only through its profile (quantile grid, frozen histogram, exact category counts).

How each test reaches the reference through the profile (see docs/statistics.md):
- ``ks``: the reference CDF interpolated from its quantile grid, with the true reference size;
- ``wasserstein``: the mean absolute difference of the two quantile functions on the grid,
  normed by the reference standard deviation;
- ``t_test``: Welch's test from the stored mean, standard deviation and count;
- ``psi``, ``jensen_shannon``, ``hellinger``, ``kl_div``, ``linf``, ``linf_robust``: counts on
  the reference's frozen histogram edges;
- ``mann_whitney``, ``cramer_von_mises``, ``anderson_darling``, ``energy_distance``: a
  pseudo-sample of the reference read off its quantile function (at most 5,000 points), an
  approximation that loses power, never calibration, when the reference is larger;
- categorical tests: the exact reference category counts against the current counts.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import BaseModel
from scipy import stats as sps

from drift_backend.baselines.model import FeatureProfile, Profile
from drift_backend.checks.config import DriftConfig
from drift_backend.stats import CATEGORICAL_TESTS, NUMERICAL_TESTS, TestResult, adjust
from drift_backend.stats import histogram as hist
from drift_backend.stats import profile as by_profile
from drift_backend.stats.choice import choose_test
from drift_backend.stats.correction import cramers_v

PSEUDO_SAMPLE = 5000
NUMERIC_KINDS = {"numerical", "datetime"}
HISTOGRAM_TESTS = {
    "psi": by_profile.psi_counts,
    "jensen_shannon": by_profile.jensen_shannon_counts,
    "hellinger": by_profile.hellinger_counts,
    "kl_div": by_profile.kl_div_counts,
}


class Histogram(BaseModel):
    """Reference and current counts on the same bins, for plotting."""

    edges: list[float] | None = None
    categories: list[str] | None = None
    reference: list[float]
    current: list[float]


class FeatureReport(BaseModel):
    feature: str
    kind: str
    test: str | None
    statistic: float | None = None
    p_value: float | None = None
    p_value_adjusted: float | None = None
    distance: float | None = None
    threshold: float | None = None
    effect_size: float | None = None
    drifted: bool = False
    n_reference: int
    n_current: int
    missing_share: float
    histogram: Histogram | None = None
    #: Why the feature could not be tested (then ``test`` is None and ``drifted`` False).
    untestable: str | None = None


class Report(BaseModel):
    dataset_drift: bool
    drift_share: float
    drifted_features: list[str]
    n_tested: int
    correction: str
    alpha: float
    features: list[FeatureReport]
    violations: list[dict[str, Any]] = []


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def _numeric_values(column: pa.ChunkedArray) -> np.ndarray[Any, np.dtype[np.float64]]:
    if pa.types.is_timestamp(column.type) or pa.types.is_date(column.type):
        column = pc.cast(column, pa.timestamp("s")).cast(pa.int64())
    if pa.types.is_boolean(column.type):
        column = column.cast(pa.int8())
    raw = column.cast(pa.float64(), safe=False).to_numpy(zero_copy_only=False)
    values: np.ndarray[Any, np.dtype[np.float64]] = np.asarray(raw, dtype=np.float64)
    finite: np.ndarray[Any, np.dtype[np.float64]] = values[np.isfinite(values)]
    return finite


def _labels(column: pa.ChunkedArray) -> dict[str, float]:
    if pa.types.is_dictionary(column.type):
        column = column.cast(column.type.value_type)
    counts = pc.value_counts(column.drop_null().cast(pa.string())).to_pylist()
    return {str(item["values"]): float(item["counts"]) for item in counts}


def _pseudo_reference(numeric: Any, n_reference: int) -> np.ndarray[Any, np.dtype[np.float64]]:
    grid = np.asarray(numeric.quantiles, dtype=np.float64)
    size = max(2, min(n_reference, PSEUDO_SAMPLE))
    levels = (np.arange(size) + 0.5) / size
    return np.asarray(np.interp(levels, np.linspace(0, 1, len(grid)), grid), dtype=np.float64)


def _wasserstein_quantiles(
    grid: Sequence[float], current: np.ndarray[Any, np.dtype[np.float64]], std: float | None
) -> float:
    ref = np.asarray(grid, dtype=np.float64)
    cur = np.quantile(current, np.linspace(0, 1, len(ref)))
    distance = float(np.mean(np.abs(ref - cur)))
    scale = std if std and std > 0 else 1.0
    return distance / scale


def _numerical(
    feature: FeatureProfile,
    current: np.ndarray[Any, np.dtype[np.float64]],
    test: str,
    threshold: float | None,
    n_ref: int,
) -> TestResult:
    numeric = feature.numeric
    assert numeric is not None
    assert numeric.quantiles is not None
    if test == "ks":
        return by_profile.ks_from_quantiles(numeric.quantiles, n_ref, current, threshold=threshold)
    if test == "wasserstein":
        limit = 0.1 if threshold is None else threshold
        distance = _wasserstein_quantiles(numeric.quantiles, current, numeric.std)
        return TestResult(
            method="wasserstein",
            statistic=distance,
            p_value=None,
            distance=distance,
            threshold=limit,
            drifted=distance >= limit,
            n_reference=n_ref,
            n_current=len(current),
            kind="numerical",
        )
    if test == "t_test" and numeric.std is not None and numeric.mean is not None:
        alpha = 0.05 if threshold is None else threshold
        std = float(np.std(current, ddof=1)) if len(current) > 1 else 0.0
        result = sps.ttest_ind_from_stats(
            numeric.mean,
            numeric.std,
            n_ref,
            float(np.mean(current)),
            std,
            len(current),
            equal_var=False,
        )
        p_value = float(result.pvalue) if math.isfinite(result.pvalue) else 1.0
        return TestResult(
            method="t_test",
            statistic=float(result.statistic),
            p_value=p_value,
            distance=None,
            threshold=alpha,
            drifted=p_value < alpha,
            n_reference=n_ref,
            n_current=len(current),
            kind="numerical",
        )
    if test in HISTOGRAM_TESTS or test in ("linf", "linf_robust"):
        assert numeric.edges is not None
        assert numeric.counts is not None
        cur_counts = hist.bin_counts(current, numeric.edges)
        if test in HISTOGRAM_TESTS:
            return HISTOGRAM_TESTS[test](numeric.counts, cur_counts, threshold=threshold)
        return by_profile.linf_counts(
            numeric.counts, cur_counts, threshold=threshold, robust=test == "linf_robust"
        )
    return NUMERICAL_TESTS[test](_pseudo_reference(numeric, n_ref), current, threshold=threshold)


def _choose(
    feature: FeatureProfile, config: DriftConfig, n_ref: int, n_unique: int
) -> tuple[str, float | None, str]:
    """(test, threshold or None for the test's default, registry kind)."""
    override = config.features.get(feature.name)
    if override is not None and override.test is not None:
        kind = (
            "numerical"
            if override.test in NUMERICAL_TESTS
            and (feature.kind in NUMERIC_KINDS or override.test not in CATEGORICAL_TESTS)
            else "categorical"
        )
        return override.test, override.threshold, kind
    numeric = feature.kind in NUMERIC_KINDS
    configured = config.numerical_test if numeric else config.categorical_test
    threshold = override.threshold if override is not None else None
    if configured != "auto":
        return configured, threshold, "numerical" if numeric else "categorical"
    choice = choose_test("numerical" if numeric else "categorical", n_ref, n_unique)
    if choice.kind == "categorical" and numeric:
        # Few distinct numeric values: test them as categories on the reference histogram.
        return "jensen_shannon" if n_ref > 1000 else "chi_square_bins", threshold, "numerical"
    if threshold is None and choice.name not in {"ks", "chi_square", "z_test"}:
        threshold = choice.threshold
    return choice.name, threshold, choice.kind


def _test_feature(
    feature: FeatureProfile, column: pa.ChunkedArray | None, config: DriftConfig
) -> FeatureReport:
    n_ref = feature.count - feature.missing
    base: dict[str, Any] = {"feature": feature.name, "kind": feature.kind, "n_reference": n_ref}
    if column is None:
        return FeatureReport(
            **base,
            test=None,
            n_current=0,
            missing_share=1.0,
            untestable="column missing from the current batch",
        )
    missing_share = column.null_count / len(column) if len(column) else 1.0
    if not feature.has_distribution:
        return FeatureReport(
            **base,
            test=None,
            n_current=len(column) - column.null_count,
            missing_share=missing_share,
            untestable="the baseline holds no distribution for this feature",
        )
    try:
        if feature.kind in NUMERIC_KINDS:
            return _numerical_report(feature, column, config, base, missing_share)
        return _categorical_report(feature, column, config, base, missing_share)
    except (ValueError, pa.ArrowInvalid, pa.ArrowNotImplementedError) as error:
        return FeatureReport(
            **base,
            test=None,
            n_current=len(column) - column.null_count,
            missing_share=missing_share,
            untestable=str(error),
        )


def _numerical_report(
    feature: FeatureProfile,
    column: pa.ChunkedArray,
    config: DriftConfig,
    base: dict[str, Any],
    missing_share: float,
) -> FeatureReport:
    if not (
        pa.types.is_integer(column.type)
        or pa.types.is_floating(column.type)
        or pa.types.is_boolean(column.type)
        or pa.types.is_temporal(column.type)
    ):
        raise ValueError(f"expected numbers, got {column.type}")
    current = _numeric_values(column)
    if len(current) == 0:
        raise ValueError("no finite values in the current batch")
    numeric = feature.numeric
    assert numeric is not None
    assert numeric.edges is not None
    assert numeric.counts is not None
    n_unique = len(np.unique(np.concatenate([current[:100_000], numeric.quantiles or []])))
    test, threshold, _ = _choose(feature, config, base["n_reference"], n_unique)
    cur_counts = hist.bin_counts(current, numeric.edges)
    if test == "chi_square_bins":
        ref_counts = np.asarray(numeric.counts, dtype=np.float64)
        keep = (ref_counts + cur_counts) > 0
        result = CATEGORICAL_TESTS["chi_square"](
            ref_counts[keep], cur_counts[keep], threshold=threshold
        )
    else:
        result = _numerical(feature, current, test, threshold, base["n_reference"])
    effect = (
        _wasserstein_quantiles(numeric.quantiles or [], current, numeric.std)
        if numeric.quantiles
        else None
    )
    return _feature_report(
        result,
        base,
        missing_share,
        effect,
        Histogram(edges=numeric.edges, reference=list(numeric.counts), current=cur_counts.tolist()),
    )


def _categorical_report(
    feature: FeatureProfile,
    column: pa.ChunkedArray,
    config: DriftConfig,
    base: dict[str, Any],
    missing_share: float,
) -> FeatureReport:
    categorical = feature.categorical
    assert categorical is not None
    reference = dict(zip(categorical.values, map(float, categorical.counts), strict=True))
    current = _labels(column)
    if not current:
        raise ValueError("no values in the current batch")
    categories = list(reference) + sorted(set(current) - set(reference))
    ref_counts = np.array([reference.get(c, 0.0) for c in categories], dtype=np.float64)
    cur_counts = np.array([current.get(c, 0.0) for c in categories], dtype=np.float64)
    test, threshold, _ = _choose(feature, config, base["n_reference"], len(categories))
    if test not in CATEGORICAL_TESTS:
        raise ValueError(f"{test} is not a categorical test")
    result = CATEGORICAL_TESTS[test](ref_counts, cur_counts, threshold=threshold)
    effect = cramers_v(ref_counts, cur_counts) if len(categories) > 1 else 0.0
    return _feature_report(
        result,
        base,
        missing_share,
        effect,
        Histogram(
            categories=categories, reference=ref_counts.tolist(), current=cur_counts.tolist()
        ),
    )


def _feature_report(
    result: TestResult,
    base: dict[str, Any],
    missing_share: float,
    effect: float | None,
    histogram: Histogram,
) -> FeatureReport:
    return FeatureReport(
        **base,
        test=result.method,
        statistic=_finite(result.statistic),
        p_value=_finite(result.p_value),
        distance=_finite(result.distance),
        threshold=result.threshold,
        effect_size=_finite(effect),
        drifted=result.drifted,
        n_current=result.n_current,
        missing_share=missing_share,
        histogram=histogram,
    )


def run_check(profile: Profile, batch: pa.Table, config: DriftConfig) -> Report:
    """Test every baseline feature of ``batch``; decide per feature and for the dataset."""
    features = [
        _test_feature(
            feature,
            batch.column(feature.name) if feature.name in batch.column_names else None,
            config,
        )
        for feature in profile.features
    ]
    # p-value tests are corrected across features; distance tests keep their threshold.
    p_values = [f.p_value if f.test is not None else None for f in features]
    adjusted = adjust(p_values, config.correction)
    for feature, p_adj in zip(features, adjusted, strict=True):
        if feature.p_value is None or feature.test is None:
            continue
        feature.p_value_adjusted = p_adj
        alpha = feature.threshold if feature.threshold is not None else config.alpha
        feature.drifted = p_adj is not None and p_adj < alpha
    if config.effect_size_floor is not None:
        for feature in features:
            if feature.drifted and (feature.effect_size or 0.0) < config.effect_size_floor:
                feature.drifted = False
    tested = [f for f in features if f.test is not None]
    drifted = [f.feature for f in tested if f.drifted]
    share = len(drifted) / len(tested) if tested else 0.0
    return Report(
        dataset_drift=bool(tested) and share >= config.drift_share,
        drift_share=share,
        drifted_features=drifted,
        n_tested=len(tested),
        correction=config.correction,
        alpha=config.alpha,
        features=features,
    )
