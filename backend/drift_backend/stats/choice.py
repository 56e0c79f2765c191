"""Automatic choice of a drift test per column, after Evidently's published default rules.

With ``n`` the reference size and ``u`` the number of distinct finite values of the
reference and the current sample together:

- numerical, ``u > 5``: ``ks`` (alpha 0.05) if ``n <= 1000`` else ``wasserstein`` (0.1);
- numerical with ``3 <= u <= 5``, or categorical with ``u > 2``: ``chi_square`` (alpha 0.05)
  if ``n <= 1000`` else ``jensen_shannon`` (0.1), the values taken as categories;
- ``u <= 2`` (binary): ``z_test`` (alpha 0.05) if ``n <= 1000`` else ``jensen_shannon`` (0.1).

Source: Evidently ``get_default_stattest`` (docs "Data drift algorithm"). These are a
default only; experiments and features may override the method and the threshold.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Literal, NamedTuple

import numpy as np

ColumnKind = Literal["numerical", "categorical"]

#: Reference size above which Evidently switches from p-value tests to distances.
LARGE_REFERENCE = 1000


class Choice(NamedTuple):
    """The chosen test: its registry name, its threshold, and which registry (and input
    form) it belongs to: ``"numerical"`` (raw values) or ``"categorical"`` (counts)."""

    name: str
    threshold: float
    kind: ColumnKind


def choose_test(kind: ColumnKind, n_reference: int, n_unique: int) -> Choice:
    """Evidently's default test for a column of ``kind`` (see the module docstring).

    Examples
    --------
    >>> from drift_backend.stats.choice import choose_test
    >>> choose_test("numerical", n_reference=500, n_unique=480)
    Choice(name='ks', threshold=0.05, kind='numerical')
    >>> choose_test("categorical", n_reference=5000, n_unique=2)
    Choice(name='jensen_shannon', threshold=0.1, kind='categorical')
    """
    if kind not in ("numerical", "categorical"):
        raise ValueError(f"unknown column kind {kind!r}")
    small = n_reference <= LARGE_REFERENCE
    if kind == "numerical" and n_unique > 5:
        return Choice("ks", 0.05, "numerical") if small else Choice("wasserstein", 0.1, "numerical")
    if n_unique > 2:
        return (
            Choice("chi_square", 0.05, "categorical")
            if small
            else Choice("jensen_shannon", 0.1, "categorical")
        )
    return (
        Choice("z_test", 0.05, "categorical")
        if small
        else Choice("jensen_shannon", 0.1, "categorical")
    )


def _is_missing(value: object) -> bool:
    return value is None or (isinstance(value, float | np.floating) and not math.isfinite(value))


def choose_for_data(
    reference: Iterable[object], current: Iterable[object], kind: ColumnKind
) -> Choice:
    """:func:`choose_test` with ``n`` and ``u`` counted on the data (NaN/inf/None dropped).

    Examples
    --------
    >>> from drift_backend.stats.choice import choose_for_data
    >>> choose_for_data([1.0, 2.0, 2.0, float("nan")], [1.0, 3.0], "numerical")  # 3 values
    Choice(name='chi_square', threshold=0.05, kind='categorical')
    """
    ref = [v for v in reference if not _is_missing(v)]
    cur = [v for v in current if not _is_missing(v)]
    return choose_test(kind, len(ref), len(set(ref) | set(cur)))
