"""MMD permutation test and prediction drift."""

from __future__ import annotations

import numpy as np
import pytest
from drift_backend.stats import mmd, prediction_drift
from scipy import stats


def test_mmd_null_and_shift() -> None:
    rng = np.random.default_rng(31)
    ref = rng.normal(size=(600, 4))
    same = mmd(ref, rng.normal(size=(500, 4)), permutations=100, seed=1)
    assert not same.drifted
    assert same.kind == "multivariate"
    shifted = rng.normal(size=(500, 4))
    shifted[:, 2] += 0.5
    res = mmd(ref, shifted, permutations=100, seed=1)
    assert res.drifted
    assert res.p_value == pytest.approx(1 / 101)  # (k + 1) / (B + 1) with k = 0


def test_mmd_detects_correlation_change_invisible_to_marginals() -> None:
    rng = np.random.default_rng(32)
    ref = rng.multivariate_normal([0, 0], [[1, 0.8], [0.8, 1]], size=500)
    cur = rng.multivariate_normal([0, 0], [[1, -0.8], [-0.8, 1]], size=500)
    assert stats.ks_2samp(ref[:, 0], cur[:, 0]).pvalue > 0.05
    assert mmd(ref, cur, permutations=100, seed=2).drifted


def test_mmd_matches_brute_force_statistic_and_is_seeded() -> None:
    rng = np.random.default_rng(33)
    x, y = rng.normal(size=(30, 2)), rng.normal(0.3, size=(25, 2))
    res = mmd(x, y, permutations=50, seed=3)
    z = np.vstack([x, y])
    z = (z - x.mean(axis=0)) / x.std(axis=0)
    d2 = ((z[:, None, :] - z[None, :, :]) ** 2).sum(-1)
    k = np.exp(-d2 / np.median(d2[np.triu_indices(55, 1)]))
    kxx, kyy, kxy = k[:30, :30], k[30:, 30:], k[:30, 30:]
    expected = (kxx.sum() - 30) / (30 * 29) + (kyy.sum() - 25) / (25 * 24) - 2 * kxy.mean()
    assert res.statistic == pytest.approx(expected)
    assert mmd(x, y, permutations=50, seed=3) == res
    assert res.p_value is not None
    assert res.p_value * 51 == pytest.approx(round(res.p_value * 51))


def test_mmd_subsamples_and_validates() -> None:
    rng = np.random.default_rng(34)
    res = mmd(
        rng.normal(size=(3000, 2)), rng.normal(size=(50, 2)), max_samples=400, permutations=20
    )
    assert (res.n_reference, res.n_current) == (400, 50)
    with pytest.raises(ValueError, match="feature counts"):
        mmd(np.zeros((5, 2)), np.zeros((5, 3)))
    with pytest.raises(ValueError, match="current has 0 complete"):
        mmd(rng.normal(size=(5, 2)), np.full((5, 2), np.nan))


def test_prediction_drift() -> None:
    rng = np.random.default_rng(35)
    ref = rng.choice(["cat", "dog", "fox"], size=800, p=[0.5, 0.3, 0.2])
    cur = rng.choice(["cat", "dog", "fox"], size=800, p=[0.35, 0.35, 0.3])
    res = prediction_drift(ref, cur)
    assert res.method == "chi_square"
    assert res.drifted
    big = rng.choice(["cat", "dog"], size=5000, p=[0.5, 0.5])
    assert prediction_drift(big, big[:1000]).method == "jensen_shannon"
    assert prediction_drift(ref[:100] == "cat", cur[:100] == "cat").method == "z_test"
    assert prediction_drift(ref, cur, method="tvd").method == "tvd"
    with pytest.raises(ValueError, match="unknown"):
        prediction_drift(ref, cur, method="nope")
