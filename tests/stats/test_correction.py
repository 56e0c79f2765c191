"""Multiple-testing corrections and effect sizes."""

from __future__ import annotations

import numpy as np
import pytest
from drift_backend.stats import adjust, cohens_d, cramers_v
from scipy import stats

PS = [0.01, 0.04, 0.03, 0.005, 0.2]


def test_bh_matches_scipy() -> None:
    assert adjust(PS, "bh") == pytest.approx(
        stats.false_discovery_control(PS, method="bh").tolist()
    )
    # hand: sorted .005 .01 .03 .04 .2 -> 5p/rank = .025 .025 .05 .05 .2, cumulative min from the top
    assert adjust(PS, "bh") == pytest.approx([0.025, 0.05, 0.05, 0.025, 0.2])


def test_holm_hand_example() -> None:
    # sorted .005*5=.025, .01*4=.04, .03*3=.09, .04*2=.08 -> .09 (monotone), .2*1=.2
    assert adjust(PS, "holm") == pytest.approx([0.04, 0.09, 0.09, 0.025, 0.2])


def test_bonferroni_and_none() -> None:
    assert adjust(PS, "bonferroni") == pytest.approx([0.05, 0.2, 0.15, 0.025, 1.0])
    assert adjust(PS, "none") == PS


def test_missing_values_are_preserved_and_not_counted() -> None:
    out = adjust([0.01, None, float("nan"), 0.04], "bonferroni")
    assert out == [pytest.approx(0.02), None, None, pytest.approx(0.08)]
    assert adjust([], "bh") == []
    assert adjust([None], "holm") == [None]
    with pytest.raises(ValueError, match="unknown correction"):
        adjust(PS, "fdr")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        adjust([1.5], "bh")


def test_effect_sizes() -> None:
    rng = np.random.default_rng(41)
    ref, cur = rng.normal(size=20000), rng.normal(0.5, size=20000)
    assert cohens_d(ref, cur) == pytest.approx(0.5, abs=0.03)
    assert cohens_d([1.0, 1.0], [1.0, 1.0]) == 0.0
    assert cohens_d([1.0, 1.0], [2.0, 2.0]) == float("inf")
    table = np.array([[30, 70], [45, 55]])
    chi = stats.chi2_contingency(table, correction=False).statistic
    assert cramers_v(table[0], table[1]) == pytest.approx(np.sqrt(chi / 200))
    assert cramers_v([5, 0], [7, 0]) == 0.0
    # Wider tables, empty cells dropped, against scipy's chi-square.
    rng = np.random.default_rng(43)
    for _ in range(20):
        k = int(rng.integers(2, 12))
        ref_counts, cur_counts = rng.integers(0, 50, k), rng.integers(0, 50, k)
        kept = (ref_counts > 0) | (cur_counts > 0)
        wide = np.vstack([ref_counts[kept], cur_counts[kept]])
        if kept.sum() < 2:
            continue
        chi = stats.chi2_contingency(wide, correction=False).statistic
        assert cramers_v(ref_counts, cur_counts) == pytest.approx(np.sqrt(chi / wide.sum()))
