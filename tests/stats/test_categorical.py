"""Categorical tests: agreement with scipy and hand formulas, power, edge cases."""

from __future__ import annotations

import numpy as np
import pytest
from drift_backend.stats import CATEGORICAL_TESTS, align_counts
from drift_backend.stats import categorical as cat
from scipy import stats

REF = np.array([120.0, 80.0, 50.0, 0.0])
CUR = np.array([90.0, 70.0, 60.0, 0.0])


def test_align_counts_labels_and_mappings() -> None:
    cats, ref, cur = align_counts(["b", "a", None, "b", float("nan")], {"a": 2, "c": 5})
    assert cats == ["a", "b", "c"]
    assert ref.tolist() == [1, 2, 0]
    assert cur.tolist() == [2, 0, 5]
    cats, ref, _ = align_counts(np.array([3, 1, 3]), [1, "x"])
    assert set(cats) == {1, 3, "x"}
    assert ref.sum() == 3


def test_chi_square_is_the_homogeneity_test() -> None:
    res = cat.chi_square(REF, CUR)
    table = np.vstack([REF[:3], CUR[:3]])
    expected = stats.chi2_contingency(table, correction=False)
    assert res.statistic == pytest.approx(expected.statistic)
    assert res.p_value == pytest.approx(expected.pvalue)
    assert (res.n_reference, res.n_current) == (250, 220)


def test_chi_square_goodness_of_fit_matches_scipy_chisquare() -> None:
    res = cat.chi_square(REF, CUR, reference_is_sample=False)
    expected = stats.chisquare(CUR[:3], REF[:3] / REF.sum() * CUR.sum())
    assert res.p_value == pytest.approx(expected.pvalue)
    # a huge reference makes the two forms agree
    big = REF * 10_000
    hom = cat.chi_square(big, CUR).p_value
    assert cat.chi_square(big, CUR, reference_is_sample=False).p_value == pytest.approx(
        hom, rel=1e-3
    )


def test_chi_square_category_new_in_current() -> None:
    hom = cat.chi_square([50, 50, 0], [45, 50, 5])
    assert hom.p_value is not None
    assert 0 < hom.p_value < 0.1
    gof = cat.chi_square([50, 50, 0], [45, 50, 5], reference_is_sample=False)
    smoothed = np.array([50.5, 50.5, 0.5])
    expected = stats.chisquare([45, 50, 5], smoothed / smoothed.sum() * 100)
    assert gof.p_value == pytest.approx(expected.pvalue)


def test_g_test_matches_scipy() -> None:
    res = cat.g_test(REF, CUR)
    expected = stats.chi2_contingency(np.vstack([REF[:3], CUR[:3]]), lambda_="log-likelihood")
    assert res.p_value == pytest.approx(expected.pvalue)
    gof = cat.g_test(REF, CUR, reference_is_sample=False)
    f_exp = REF[:3] / REF.sum() * CUR.sum()
    assert gof.p_value == pytest.approx(
        stats.power_divergence(CUR[:3], f_exp, lambda_="log-likelihood").pvalue
    )


def test_z_test_equals_chi_square_2x2_and_formula() -> None:
    ref, cur = np.array([30.0, 70.0]), np.array([45.0, 55.0])
    res = cat.z_test(ref, cur)
    p1, p2, p = 0.30, 0.45, 0.375
    z = (p2 - p1) / np.sqrt(p * (1 - p) * (1 / 100 + 1 / 100))
    assert res.statistic == pytest.approx(z)
    chi = stats.chi2_contingency(np.vstack([ref, cur]), correction=False)
    assert res.statistic**2 == pytest.approx(chi.statistic)
    assert res.p_value == pytest.approx(chi.pvalue, rel=1e-9)
    assert cat.chi_square(ref, cur).p_value == pytest.approx(res.p_value)


def test_fisher_exact_matches_scipy() -> None:
    res = cat.fisher_exact([8, 2], [1, 5])
    expected = stats.fisher_exact([[8, 2], [1, 5]])
    assert res.p_value == pytest.approx(expected.pvalue)
    assert res.statistic == pytest.approx(expected.statistic)


@pytest.mark.parametrize("name", ["fisher_exact", "z_test"])
def test_binary_tests_reject_more_categories(name: str) -> None:
    with pytest.raises(ValueError, match="binary"):
        CATEGORICAL_TESTS[name]([1, 2, 3], [3, 2, 1])
    # categories absent from both samples do not count
    assert CATEGORICAL_TESTS[name]([5, 0, 5], [5, 0, 5]).p_value == pytest.approx(1.0)


def test_distances_hand_values() -> None:
    p, q = [50, 30, 20], [40, 30, 30]
    assert cat.tvd(p, q).distance == pytest.approx(0.1)
    assert cat.linf(p, q).distance == pytest.approx(0.1)
    # exactly at the threshold: inclusive like Evidently's distances, strict like Deequ
    assert cat.tvd([2, 2], [1, 3], threshold=0.25).drifted
    assert not cat.linf([2, 2], [1, 3], threshold=0.25).drifted
    assert cat.psi(p, q).distance == pytest.approx(-0.1 * np.log(0.8) + 0.1 * np.log(1.5))
    assert cat.hellinger(p, q).distance == pytest.approx(
        np.sqrt(1 - (np.sqrt(0.2) + 0.3 + np.sqrt(0.06)))
    )
    assert cat.jensen_shannon(p, q).distance == pytest.approx(_js([0.5, 0.3, 0.2], [0.4, 0.3, 0.3]))


def _js(p: list[float], q: list[float]) -> float:
    a, b = np.array(p), np.array(q)
    m = (a + b) / 2
    return float(np.sqrt((np.sum(a * np.log(a / m)) + np.sum(b * np.log(b / m))) / 2))


@pytest.mark.parametrize("name", list(CATEGORICAL_TESTS))
def test_detects_proportion_shift(name: str) -> None:
    rng = np.random.default_rng(21)
    probs = [0.6, 0.4] if name in ("fisher_exact", "z_test") else [0.4, 0.3, 0.2, 0.1]
    shifted = [0.45, 0.55] if len(probs) == 2 else [0.25, 0.3, 0.25, 0.2]
    ref = rng.multinomial(1000, probs).astype(float)
    cur = rng.multinomial(1000, shifted).astype(float)
    res = CATEGORICAL_TESTS[name](ref, cur)
    assert res.kind == "categorical"
    assert res.drifted, res
    same = CATEGORICAL_TESTS[name](ref, rng.multinomial(5000, probs))
    assert not same.drifted, same


@pytest.mark.parametrize("name", list(CATEGORICAL_TESTS))
def test_single_category_and_empty(name: str) -> None:
    res = CATEGORICAL_TESTS[name]([10.0], [7.0])
    assert not res.drifted
    assert res.p_value in (None, 1.0)
    assert res.distance in (None, 0.0)
    with pytest.raises(ValueError, match="empty"):
        CATEGORICAL_TESTS[name]([0.0, 0.0], [1.0, 2.0])
    with pytest.raises(ValueError, match="non-negative"):
        CATEGORICAL_TESTS[name]([1.0, -1.0], [1.0, 2.0])
