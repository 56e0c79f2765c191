"""Drift statistics: pure functions (numpy/scipy, no I/O) returning one ``TestResult``.

Catalog: :mod:`.numerical` (raw samples), :mod:`.profile` (against a stored baseline
profile: bin counts, quantiles), :mod:`.categorical` (aligned count vectors),
:mod:`.multivariate` (MMD, prediction drift), :mod:`.correction` (multiple testing,
effect sizes), :mod:`.choice` (default test per column). See ``docs/statistics.md``.
"""

from __future__ import annotations

from drift_backend.stats._common import ALPHA
from drift_backend.stats.categorical import align_counts
from drift_backend.stats.choice import Choice, choose_for_data, choose_test
from drift_backend.stats.correction import CORRECTIONS, adjust, cohens_d, cramers_v
from drift_backend.stats.histogram import bin_counts, reference_edges
from drift_backend.stats.multivariate import mmd, prediction_drift
from drift_backend.stats.profile import (
    hellinger_counts,
    jensen_shannon_counts,
    kl_div_counts,
    ks_from_quantiles,
    linf_counts,
    psi_counts,
)
from drift_backend.stats.registry import (
    CATEGORICAL_TESTS,
    NUMERICAL,
    NUMERICAL_TESTS,
    DriftTest,
    Needs,
)
from drift_backend.stats.result import TestResult

__all__ = [
    "ALPHA",
    "CATEGORICAL_TESTS",
    "CORRECTIONS",
    "NUMERICAL",
    "NUMERICAL_TESTS",
    "Choice",
    "DriftTest",
    "Needs",
    "TestResult",
    "adjust",
    "align_counts",
    "bin_counts",
    "choose_for_data",
    "choose_test",
    "cohens_d",
    "cramers_v",
    "hellinger_counts",
    "jensen_shannon_counts",
    "kl_div_counts",
    "ks_from_quantiles",
    "linf_counts",
    "mmd",
    "prediction_drift",
    "psi_counts",
    "reference_edges",
]
