"""Name -> test tables with one signature per kind, and what each test needs.

Numerical: ``fn(reference, current, *, threshold=None) -> TestResult`` on raw samples.
Categorical: ``fn(reference_counts, current_counts, *, threshold=None) -> TestResult`` on
count vectors aligned by :func:`categorical.align_counts`.

Each numerical test declares beside it what it needs of the two samples (:class:`Needs`);
the batch reduction, the check engine and the configuration all read this one table.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from drift_backend.stats import categorical as cat
from drift_backend.stats import numerical as num
from drift_backend.stats._common import ArrayLike
from drift_backend.stats.result import TestResult


class DriftTest(Protocol):
    """The uniform signature of the registered tests."""

    def __call__(
        self, reference: ArrayLike, current: ArrayLike, /, *, threshold: float | None = None
    ) -> TestResult: ...


class Needs(StrEnum):
    """What a test reads of each sample. Tests on ``counts`` or ``moments`` are exact from a
    stored profile and in summary mode; the others are exact on two whole samples and
    approximated from quantile grids otherwise."""

    #: Counts on the reference's frozen bins (or categories).
    counts = "counts"
    #: Count, mean and standard deviation of each sample.
    moments = "moments"
    #: Each sample's quantile function: a dense quantile grid stands in for a large sample.
    quantiles = "quantiles"
    #: Every value of the current batch (a grid would not do); the reference's too when it
    #: keeps them, else a pseudo-sample read off its quantile grid.
    values = "values"


@dataclass(frozen=True)
class NumericalTest:
    run: DriftTest
    needs: Needs


NUMERICAL: dict[str, NumericalTest] = {
    "ks": NumericalTest(num.ks, Needs.quantiles),
    "cramer_von_mises": NumericalTest(num.cramer_von_mises, Needs.values),
    "anderson_darling": NumericalTest(num.anderson_darling, Needs.values),
    "mann_whitney": NumericalTest(num.mann_whitney, Needs.values),
    "t_test": NumericalTest(num.t_test, Needs.moments),
    "wasserstein": NumericalTest(num.wasserstein, Needs.quantiles),
    "energy_distance": NumericalTest(num.energy_distance, Needs.values),
    "psi": NumericalTest(num.psi, Needs.counts),
    "jensen_shannon": NumericalTest(num.jensen_shannon, Needs.counts),
    "hellinger": NumericalTest(num.hellinger, Needs.counts),
    "kl_div": NumericalTest(num.kl_div, Needs.counts),
    "linf": NumericalTest(num.linf, Needs.counts),
    "linf_robust": NumericalTest(num.linf_robust, Needs.counts),
}

NUMERICAL_TESTS: dict[str, DriftTest] = {name: test.run for name, test in NUMERICAL.items()}


def numerical_needing(*needs: Needs) -> frozenset[str]:
    """The numerical tests that need one of ``needs``."""
    return frozenset(name for name, test in NUMERICAL.items() if test.needs in needs)


#: Tests that read every current value: a reduced batch's grid does not do.
VALUE_TESTS = numerical_needing(Needs.values)
#: Tests that read values (or a quantile grid of them), not counts: none runs in summary mode.
SAMPLE_TESTS = numerical_needing(Needs.values, Needs.quantiles)
#: Tests that run on the two whole samples when both are kept whole, giving scipy's result.
WHOLE_SAMPLE_TESTS = numerical_needing(Needs.values, Needs.quantiles, Needs.moments)

CATEGORICAL_TESTS: dict[str, DriftTest] = {
    "chi_square": cat.chi_square,
    "g_test": cat.g_test,
    "fisher_exact": cat.fisher_exact,
    "z_test": cat.z_test,
    "psi": cat.psi,
    "jensen_shannon": cat.jensen_shannon,
    "hellinger": cat.hellinger,
    "tvd": cat.tvd,
    "linf": cat.linf,
}
