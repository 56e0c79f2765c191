"""The one result type every test in the catalog returns."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Kind = Literal["numerical", "categorical", "multivariate"]


@dataclass(frozen=True, slots=True)
class TestResult:
    """Outcome of one drift test between a reference and a current sample.

    ``p_value`` is set for hypothesis tests (drift when ``p_value < threshold``, the
    threshold being the significance level alpha); ``distance`` is set for distance
    measures (drift when ``distance`` exceeds the threshold: ``>`` or ``>=`` as each
    method's source says, see ``docs/statistics.md``). ``statistic`` is the test
    statistic, equal to ``distance`` for distance measures.
    """

    __test__ = False  # not a pytest test class, despite its name

    method: str
    kind: Kind
    statistic: float
    p_value: float | None
    distance: float | None
    threshold: float
    drifted: bool
    n_reference: int
    n_current: int
