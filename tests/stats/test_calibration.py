"""False-alarm rates without drift: per test, and per run across features with correction.

Each rate is checked against the 99.9% binomial interval around alpha for the number of
seeded runs, so a correct test fails here about once in a thousand seeds.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from drift_backend.stats import adjust
from drift_backend.stats import categorical as cat
from drift_backend.stats import numerical as num
from scipy import stats

ALPHA = 0.05
RUNS = 400
SIZE = 200
PROBS = [0.4, 0.3, 0.2, 0.1]


def _interval(runs: int, rate: float = ALPHA) -> tuple[float, float]:
    low, high = stats.binom.interval(0.999, runs, rate)
    return low / runs, high / runs


def _numeric_p(test: Callable[..., object]) -> Callable[[np.random.Generator], float]:
    def draw(rng: np.random.Generator) -> float:
        return test(rng.normal(size=SIZE), rng.normal(size=SIZE)).p_value  # type: ignore[attr-defined,no-any-return]

    return draw


def _chi_square_p(rng: np.random.Generator) -> float:
    ref, cur = rng.multinomial(SIZE, PROBS), rng.multinomial(SIZE, PROBS)
    p = cat.chi_square(ref, cur).p_value
    assert p is not None
    return p


DRAWS = {
    "ks": _numeric_p(num.ks),
    "mann_whitney": _numeric_p(num.mann_whitney),
    "t_test": _numeric_p(num.t_test),
    "chi_square": _chi_square_p,
}


def false_alarm_rate(name: str, seed: int = 2024) -> float:
    rng = np.random.default_rng(seed)
    return float(np.mean([DRAWS[name](rng) < ALPHA for _ in range(RUNS)]))


@pytest.mark.parametrize("name", list(DRAWS))
def test_false_alarm_rate_within_binomial_tolerance(name: str) -> None:
    low, high = _interval(RUNS)
    assert low <= false_alarm_rate(name) <= high


def test_goodness_of_fit_chi_square_overshoots_with_a_sampled_reference() -> None:
    """Why chi_square defaults to the homogeneity form: Evidently's goodness-of-fit form
    treats the reference proportions as exact and alarms far too often at equal sizes."""
    rng = np.random.default_rng(7)
    alarms = [
        cat.chi_square(
            rng.multinomial(SIZE, PROBS), rng.multinomial(SIZE, PROBS), reference_is_sample=False
        ).drifted
        for _ in range(RUNS)
    ]
    assert np.mean(alarms) > _interval(RUNS)[1]


def familywise_rates(runs: int = 300, features: int = 10, seed: int = 99) -> tuple[float, float]:
    """Share of drift-free runs with any feature flagged: (BH-corrected, uncorrected)."""
    rng = np.random.default_rng(seed)
    corrected = raw = 0
    for _ in range(runs):
        ps = [
            num.t_test(rng.normal(size=100), rng.normal(size=100)).p_value for _ in range(features)
        ]
        raw += any(p is not None and p < ALPHA for p in ps)
        corrected += any(p is not None and p < ALPHA for p in adjust(ps, "bh"))
    return corrected / runs, raw / runs


def test_bh_keeps_the_per_run_false_alarm_rate_at_alpha() -> None:
    corrected, raw = familywise_rates()
    assert corrected <= _interval(300)[1]
    assert raw > 0.25  # 1 - 0.95**10 = 0.40 expected without correction
