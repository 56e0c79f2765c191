"""Exact where affordable, in the engine: a reference that keeps its values and a current
batch kept whole give exactly what scipy gives on the two samples; above the limit the
quantile grid stands in and the result says so."""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np
import pyarrow as pa
import pytest
from drift_backend.baselines.profile import build_profile
from drift_backend.checks.config import DriftConfig
from drift_backend.checks.engine import FeatureReport, run_check
from drift_backend.checks.reduce import decode, encode, reduce_batch
from drift_backend.stats.registry import WHOLE_SAMPLE_TESTS
from scipy import stats as sps

Scipy = Callable[[np.ndarray, np.ndarray], float]


def _scale(ref: np.ndarray) -> float:
    return max(float(np.std(ref)), 0.001)


def _anderson(ref: np.ndarray, cur: np.ndarray) -> float:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # scipy's capped p-value
        return float(sps.anderson_ksamp([ref, cur], variant="midrank").pvalue)


#: What scipy says on the two whole samples: the p-value, or the normed distance.
SCIPY: dict[str, Scipy] = {
    "ks": lambda r, c: float(sps.ks_2samp(r, c).pvalue),
    "cramer_von_mises": lambda r, c: float(sps.cramervonmises_2samp(r, c).pvalue),
    "anderson_darling": _anderson,
    "mann_whitney": lambda r, c: float(sps.mannwhitneyu(r, c, alternative="two-sided").pvalue),
    "t_test": lambda r, c: float(sps.ttest_ind(r, c, equal_var=False).pvalue),
    "wasserstein": lambda r, c: float(sps.wasserstein_distance(r, c)) / _scale(r),
    "energy_distance": lambda r, c: float(sps.energy_distance(r / _scale(r), c / _scale(r))),
}


def _samples(seed: int, n: int, m: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.normal(0.0, 1.0, n), rng.normal(0.25, 1.2, m)


def _outcome(feature: FeatureReport) -> float | None:
    return feature.p_value if feature.p_value is not None else feature.distance


def test_the_table_names_the_seven_whole_sample_tests() -> None:
    assert set(SCIPY) == WHOLE_SAMPLE_TESTS


@pytest.mark.parametrize("name", sorted(SCIPY))
@pytest.mark.parametrize("sizes", [(40, 30), (400, 250)])
def test_whole_samples_give_what_scipy_gives(name: str, sizes: tuple[int, int]) -> None:
    ref, cur = _samples(11, *sizes)
    profile = build_profile(pa.table({"x": ref}))
    config = DriftConfig(numerical_test=name, correction="none")
    (feature,) = run_check(profile, pa.table({"x": cur}), config).features
    assert feature.test == name
    assert feature.exact
    assert (feature.n_reference, feature.n_current) == sizes
    assert _outcome(feature) == pytest.approx(SCIPY[name](ref, cur), rel=1e-9, abs=1e-12)


def test_small_samples_get_scipys_exact_ks_distribution() -> None:
    # 40 against 30 values: scipy's method="auto" takes the exact distribution, which the
    # asymptotic one (what a quantile grid gives) misses by far more than 1e-9.
    ref, cur = _samples(3, 40, 30)
    (feature,) = run_check(
        build_profile(pa.table({"x": ref})), pa.table({"x": cur}), DriftConfig()
    ).features
    exact = sps.ks_2samp(ref, cur, method="exact").pvalue
    assert feature.test == "ks"
    assert feature.p_value == pytest.approx(exact, rel=1e-9)
    assert feature.p_value != pytest.approx(sps.ks_2samp(ref, cur, method="asymp").pvalue)


def test_a_reduced_batch_that_kept_its_values_is_exact_too() -> None:
    ref, cur = _samples(5, 500, 300)
    profile = build_profile(pa.table({"x": ref}))
    reduced = decode(encode(reduce_batch(pa.table({"x": cur}), profile)))
    (feature,) = run_check(profile, reduced, DriftConfig(numerical_test="ks")).features
    assert feature.exact
    assert feature.p_value == pytest.approx(sps.ks_2samp(ref, cur).pvalue, rel=1e-9)


def test_above_the_limit_the_grid_stands_in_and_says_so() -> None:
    ref, cur = _samples(7, 500, 300)
    profile = build_profile(pa.table({"x": ref}), exact_rows=499)
    x = profile.feature("x")
    assert x is not None
    assert x.numeric is not None
    assert not x.numeric.exact_values
    assert profile.values("x") is None
    for name in ("ks", "wasserstein", "mann_whitney"):
        config = DriftConfig(numerical_test=name)
        (feature,) = run_check(profile, pa.table({"x": cur}), config).features
        assert feature.test == name
        assert not feature.exact
    # Count-based tests read exact counts: exact whatever the reference's size.
    (binned,) = run_check(profile, pa.table({"x": cur}), DriftConfig(numerical_test="psi")).features
    assert binned.exact


def test_a_current_batch_reduced_to_a_grid_is_not_exact() -> None:
    ref, cur = _samples(9, 500, 3000)
    profile = build_profile(pa.table({"x": ref}))
    reduced = reduce_batch(pa.table({"x": cur}), profile, exact_limit=1000)
    (feature,) = run_check(profile, reduced, DriftConfig(numerical_test="ks")).features
    assert feature.test == "ks"
    assert not feature.exact


def test_the_limit_counts_finite_values_only() -> None:
    values = np.concatenate([np.arange(100.0), np.full(50, np.nan)])
    profile = build_profile(pa.table({"x": values}), exact_rows=100)
    kept = profile.values("x")
    assert kept is not None
    assert np.array_equal(kept, np.arange(100.0))
