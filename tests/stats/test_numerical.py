"""Numerical tests: agreement with scipy / independent computations, power, edge cases."""

from __future__ import annotations

import numpy as np
import pytest
from drift_backend.stats import NUMERICAL_TESTS, TestResult
from drift_backend.stats import numerical as num
from scipy import stats

P_VALUE_TESTS = ["ks", "cramer_von_mises", "anderson_darling", "mann_whitney", "t_test"]
DISTANCES = [name for name in NUMERICAL_TESTS if name not in P_VALUE_TESTS]


def _samples(seed: int, shift: float = 0.0, n: int = 1000) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.normal(size=n), rng.normal(loc=shift, size=n)


def test_p_value_tests_match_scipy() -> None:
    ref, cur = _samples(1, 0.1, 300)
    expected = {
        "ks": stats.ks_2samp(ref, cur).pvalue,
        "cramer_von_mises": stats.cramervonmises_2samp(ref, cur).pvalue,
        "mann_whitney": stats.mannwhitneyu(ref, cur, alternative="two-sided").pvalue,
        "t_test": stats.ttest_ind(ref, cur, equal_var=False).pvalue,
    }
    for name, p in expected.items():
        res = NUMERICAL_TESTS[name](ref, cur)
        assert res.p_value == pytest.approx(p, rel=1e-12), name
        assert res.distance is None
        assert res.drifted == (p < 0.05)


def test_t_test_matches_welch_formula() -> None:
    ref, cur = _samples(2, 0.2, 50)
    va, vb = ref.var(ddof=1) / ref.size, cur.var(ddof=1) / cur.size
    t = (ref.mean() - cur.mean()) / np.sqrt(va + vb)
    dof = (va + vb) ** 2 / (va**2 / (ref.size - 1) + vb**2 / (cur.size - 1))
    res = num.t_test(ref, cur)
    assert res.statistic == pytest.approx(t)
    assert res.p_value == pytest.approx(2 * stats.t.sf(abs(t), dof))


def test_anderson_darling_p_value_is_capped() -> None:
    same = num.anderson_darling(*_samples(3, 0.0, 200))
    far = num.anderson_darling(*_samples(3, 2.0, 200))
    assert same.p_value is not None
    assert same.p_value <= 0.25
    assert far.p_value == pytest.approx(0.001)
    assert far.drifted
    assert not same.drifted


def test_wasserstein_and_energy_are_normed_by_reference_std() -> None:
    ref, cur = _samples(4, 0.3, 500)
    w = num.wasserstein(ref, cur)
    assert w.distance == pytest.approx(stats.wasserstein_distance(ref, cur) / np.std(ref))
    scaled = num.wasserstein(ref * 1000, cur * 1000)
    assert scaled.distance == pytest.approx(w.distance)
    e = num.energy_distance(ref * 7, cur * 7)
    s = np.std(ref)
    assert e.distance == pytest.approx(stats.energy_distance(ref / s, cur / s))
    assert num.energy_distance(ref, cur).distance == pytest.approx(e.distance)


@pytest.mark.parametrize("seed", range(6))
def test_wasserstein_equals_scipy_on_any_sizes_ties_and_order(seed: int) -> None:
    # Computed on the two quantile functions, not scipy's CDFs: equal up to rounding on
    # sizes of every ratio, tied values and unsorted input alike.
    rng = np.random.default_rng(seed)
    for _ in range(40):
        n, m = (int(k) for k in rng.integers(1, 400, 2))
        if seed % 2:
            ref, cur = rng.integers(0, 6, n).astype(float), rng.integers(2, 9, m).astype(float)
        else:
            ref, cur = rng.normal(size=n) * 1e3, rng.standard_t(3, size=m) * 1e3
        expected = stats.wasserstein_distance(ref, cur) / max(np.std(ref), 0.001)
        assert num.wasserstein(ref, cur).distance == pytest.approx(expected, rel=1e-12, abs=1e-15)


def test_linf_matches_brute_force_cdf() -> None:
    rng = np.random.default_rng(5)
    ref = rng.integers(0, 20, 120).astype(float)  # ties on purpose
    cur = rng.integers(2, 25, 80).astype(float)
    best = max(abs(np.mean(ref <= x) - np.mean(cur <= x)) for x in np.concatenate([ref, cur]))
    res = num.linf(ref, cur)
    assert res.distance == pytest.approx(best)
    assert res.distance == pytest.approx(stats.ks_2samp(ref, cur).statistic)
    robust = num.linf_robust(ref, cur)
    assert robust.distance == pytest.approx(max(0.0, best - 1.8 * np.sqrt(200 / (120 * 80))))


def test_linf_drifts_strictly_above_threshold() -> None:
    ref = np.arange(10.0)
    cur = np.arange(1.0, 11.0)  # CDFs differ by exactly 0.1
    res = num.linf(ref, cur, threshold=0.1)
    assert res.distance == pytest.approx(0.1)
    assert num.linf(ref, cur, threshold=0.1 + 1e-9).drifted is False


@pytest.mark.parametrize("name", list(NUMERICAL_TESTS))
def test_detects_half_sd_mean_shift(name: str) -> None:
    res = NUMERICAL_TESTS[name](*_samples(6, 0.5, 1000))
    assert isinstance(res, TestResult)
    assert res.kind == "numerical"
    assert res.n_reference == res.n_current == 1000
    assert res.drifted, res


@pytest.mark.parametrize("name", DISTANCES)
def test_distances_quiet_without_drift(name: str) -> None:
    res = NUMERICAL_TESTS[name](*_samples(7, 0.0, 5000))
    assert res.p_value is None
    assert res.distance == res.statistic
    assert not res.drifted, res


@pytest.mark.parametrize("name", list(NUMERICAL_TESTS))
def test_empty_or_all_nan_is_a_clear_error(name: str) -> None:
    test = NUMERICAL_TESTS[name]
    with pytest.raises(ValueError, match="current has 0 finite"):
        test(np.arange(10.0), np.array([np.nan, np.inf, -np.inf]))
    with pytest.raises(ValueError, match="reference has 0 finite"):
        test(np.array([]), np.arange(10.0))


@pytest.mark.parametrize("name", list(NUMERICAL_TESTS))
def test_identical_constant_samples_do_not_drift(name: str) -> None:
    res = NUMERICAL_TESTS[name](np.full(50, 3.0), np.full(40, 3.0))
    assert not res.drifted
    assert res.p_value in (None, 1.0)


def test_nan_values_are_dropped_before_testing() -> None:
    ref, cur = _samples(8, 0.0, 100)
    dirty = np.concatenate([cur, [np.nan, np.inf]])
    assert num.ks(ref, dirty) == num.ks(ref, cur)


def test_constant_samples_with_different_values() -> None:
    t = num.t_test(np.full(5, 1.0), np.full(5, 2.0))
    assert t.p_value == 0.0
    assert t.drifted
    assert num.ks(np.full(50, 1.0), np.full(50, 2.0)).drifted
    assert num.wasserstein(np.full(50, 1.0), np.full(50, 1.5)).distance == pytest.approx(500.0)
