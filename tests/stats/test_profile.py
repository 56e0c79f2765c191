"""Tests against a stored profile (bin counts, quantiles) agree with the raw-sample tests."""

from __future__ import annotations

import numpy as np
import pytest
from drift_backend.stats import histogram as h
from drift_backend.stats import numerical as num
from drift_backend.stats import profile
from scipy import stats


def test_reference_edges_and_bin_counts() -> None:
    ref = np.arange(1.0, 101.0)
    edges = h.reference_edges(ref, 4, "quantile")
    assert edges.tolist() == pytest.approx([1.0, 25.75, 50.5, 75.25, 100.0])
    counts = h.bin_counts([-5.0, 1.0, 25.75, 100.0, 100.5, np.nan], edges)
    assert counts.tolist() == [1, 1, 1, 0, 1, 1]  # under, 4 inner (last closed), over
    assert h.reference_edges(ref, 3, "uniform").tolist() == pytest.approx([1.0, 34.0, 67.0, 100.0])
    assert h.reference_edges(np.full(9, 2.0)).tolist() == [2.0, 2.0]
    assert h.bin_counts([1.0, 2.0, 2.0, 3.0], [2.0, 2.0]).tolist() == [1, 2, 1]
    with pytest.raises(ValueError, match="binning"):
        h.reference_edges(ref, 4, "bogus")  # type: ignore[arg-type]


def test_psi_hand_example() -> None:
    # p = (0.5, 0.5), q = (0.25, 0.75): -0.25 ln 0.5 + 0.25 ln 1.5
    res = profile.psi_counts([50, 50], [25, 75])
    assert res.distance == pytest.approx(0.25 * np.log(2) + 0.25 * np.log(1.5))
    assert res.drifted
    # an empty reference cell counts as 1e-4
    empty = profile.psi_counts([100, 0], [90, 10])
    expected = (0.9 - 1.0) * np.log(0.9) + (0.1 - 1e-4) * np.log(0.1 / 1e-4)
    assert empty.distance == pytest.approx(expected)


def test_count_variants_equal_binned_sample_tests() -> None:
    rng = np.random.default_rng(11)
    ref, cur = rng.gamma(2.0, size=3000), rng.gamma(2.2, size=700)
    for binning in ("quantile", "uniform"):
        edges = h.reference_edges(ref, 10, binning)
        rc, cc = h.bin_counts(ref, edges), h.bin_counts(cur, edges)
        pairs = [
            (num.psi, profile.psi_counts),
            (num.jensen_shannon, profile.jensen_shannon_counts),
            (num.hellinger, profile.hellinger_counts),
            (num.kl_div, profile.kl_div_counts),
        ]
        for sample_test, count_test in pairs:
            a = sample_test(ref, cur, binning=binning)
            b = count_test(rc, cc)
            assert a.distance == pytest.approx(b.distance), sample_test.__name__
            assert (b.n_reference, b.n_current) == (3000, 700)


def test_distance_values_against_formulas() -> None:
    p, q = np.array([10.0, 30.0, 60.0]), np.array([20.0, 20.0, 60.0])
    pp, qq = p / p.sum(), q / q.sum()
    js = profile.jensen_shannon_counts(p, q).distance
    mix = (pp + qq) / 2
    assert js == pytest.approx(np.sqrt((stats.entropy(pp, mix) + stats.entropy(qq, mix)) / 2))
    hel = profile.hellinger_counts(p, q).distance
    assert hel == pytest.approx(np.sqrt(1 - np.sum(np.sqrt(pp * qq))))
    assert profile.kl_div_counts(p, q).distance == pytest.approx(stats.entropy(pp, qq))


def test_linf_counts() -> None:
    res = profile.linf_counts([10, 20, 30, 40], [30, 20, 10, 40])
    assert res.distance == pytest.approx(0.2)  # CDFs (.1,.3,.6,1) vs (.3,.5,.6,1)
    assert res.drifted
    robust = profile.linf_counts([100, 200, 300, 400], [300, 200, 100, 400], robust=True)
    assert robust.distance == pytest.approx(0.2 - 1.8 * np.sqrt(2000 / 1000**2))
    assert robust.method == "linf_robust"
    # with one bin per distinct value it is the exact sample L-infinity
    rng = np.random.default_rng(12)
    ref, cur = rng.integers(0, 8, 400).astype(float), rng.integers(1, 9, 300).astype(float)
    values = np.unique(np.concatenate([ref, cur]))
    rc = np.array([np.sum(ref == v) for v in values])
    cc = np.array([np.sum(cur == v) for v in values])
    assert profile.linf_counts(rc, cc).distance == pytest.approx(num.linf(ref, cur).distance)


@pytest.mark.parametrize("seed", [13, 14])
def test_ks_from_quantiles_matches_ks_2samp(seed: int) -> None:
    rng = np.random.default_rng(seed)
    ref, cur = rng.normal(size=20000), rng.normal(0.05, 1.1, size=1500)
    grid = np.quantile(ref, np.linspace(0, 1, 1001))
    approx = profile.ks_from_quantiles(grid, ref.size, cur)
    exact = stats.ks_2samp(ref, cur, method="asymp")
    assert abs(approx.statistic - exact.statistic) <= 1 / 1000 + 1 / ref.size
    assert approx.p_value == pytest.approx(exact.pvalue, rel=0.25, abs=1e-3)
    assert approx.drifted == (exact.pvalue < 0.05)
    assert (approx.n_reference, approx.n_current) == (20000, 1500)


def test_ks_from_quantiles_exact_on_discrete_data() -> None:
    rng = np.random.default_rng(15)
    ref, cur = rng.integers(0, 5, 3000).astype(float), rng.integers(0, 6, 500).astype(float)
    grid = np.quantile(ref, np.linspace(0, 1, 1001))
    approx = profile.ks_from_quantiles(grid, ref.size, cur)
    exact = stats.ks_2samp(ref, cur, method="asymp")
    assert approx.statistic == pytest.approx(exact.statistic, abs=1e-3)
    assert approx.p_value == pytest.approx(exact.pvalue, rel=0.05)


def test_ks_from_quantiles_edge_cases() -> None:
    grid = np.linspace(0.0, 1.0, 11)
    assert profile.ks_from_quantiles(grid, 100, [5.0, 6.0]).statistic == pytest.approx(1.0)
    assert profile.ks_from_quantiles(np.full(11, 2.0), 50, np.full(20, 2.0)).statistic == 0.0
    with pytest.raises(ValueError, match="current has 0 finite"):
        profile.ks_from_quantiles(grid, 100, [np.nan])
    with pytest.raises(ValueError, match="non-decreasing"):
        profile.ks_from_quantiles(grid[::-1], 100, [0.5])
    with pytest.raises(ValueError, match="empty"):
        profile.psi_counts([0, 0], [1, 2])
    with pytest.raises(ValueError, match="align"):
        profile.psi_counts([1, 2, 3], [1, 2])


def test_bin_counts_sorted_equals_bin_counts() -> None:
    """Counting on sorted values gives exactly the counts of :func:`bin_counts`, ties on
    edges, repeated edges and the right-closed last inner cell included."""
    from drift_backend.stats.histogram import bin_counts, bin_counts_sorted

    rng = np.random.default_rng(11)
    for _ in range(2000):
        n = int(rng.integers(0, 60))
        x = rng.integers(-3, 4, n).astype(float) + rng.choice([0.0, 0.5], n)
        edges = np.sort(rng.integers(-3, 4, int(rng.integers(2, 7))).astype(float))
        np.testing.assert_array_equal(bin_counts_sorted(np.sort(x), edges), bin_counts(x, edges))
