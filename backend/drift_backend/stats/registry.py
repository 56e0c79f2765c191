"""Name -> function registries with one signature per kind.

Numerical: ``fn(reference, current, *, threshold=None) -> TestResult`` on raw samples.
Categorical: ``fn(reference_counts, current_counts, *, threshold=None) -> TestResult`` on
count vectors aligned by :func:`categorical.align_counts`.
"""

from __future__ import annotations

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


NUMERICAL_TESTS: dict[str, DriftTest] = {
    "ks": num.ks,
    "cramer_von_mises": num.cramer_von_mises,
    "anderson_darling": num.anderson_darling,
    "mann_whitney": num.mann_whitney,
    "t_test": num.t_test,
    "wasserstein": num.wasserstein,
    "energy_distance": num.energy_distance,
    "psi": num.psi,
    "jensen_shannon": num.jensen_shannon,
    "hellinger": num.hellinger,
    "kl_div": num.kl_div,
    "linf": num.linf,
    "linf_robust": num.linf_robust,
}

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
