"""Column conversions shared by profiling, summary mode and the violation checks (vectorised).

They are :mod:`drift_monitor.counting`'s, the module the SDK counts summary-mode batches
with, so a profile, the server's counts and a client's counts read a column alike: missing
values are nulls, NaN and +-inf; text in a numeric column is a *type mismatch*, not a
missing value (SageMaker ``data_type_check``).
"""

from __future__ import annotations

from drift_monitor.counting import (
    ArrowKind,
    FloatArray,
    arrow_kind,
    as_float,
    as_strings,
    epoch_seconds,
    value_counts,
)

__all__ = [
    "ArrowKind",
    "FloatArray",
    "arrow_kind",
    "as_float",
    "as_strings",
    "epoch_seconds",
    "value_counts",
]
