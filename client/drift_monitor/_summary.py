"""Summary mode: count a current batch on a baseline's frozen bins, locally.

The counting is :mod:`drift_monitor.counting`, the same code the server runs on raw batches;
this wrapper accepts any supported data (pandas, pyarrow, polars, dicts of columns) and says
what to install when numpy or pyarrow is missing.
"""

from __future__ import annotations

from typing import Any

from drift_monitor._data import DataLike, to_table
from drift_monitor._exceptions import ConfigurationError
from drift_monitor._models import Bins

__all__ = ["summarize"]


def summarize(data: DataLike, bins: Bins) -> dict[str, Any]:
    """The ``BatchSummary`` of ``data`` on ``bins``: what summary mode sends instead of rows.

    ``{"row_count", "features": [{name, present, count, missing, type_mismatch, counts,
    category_counts, unseen_values, unseen_counts, unseen_other, out_of_domain, below_min,
    above_max, negative, outliers, min, max, mean, std}], "extra_columns"}``.
    """
    try:
        from drift_monitor import counting
    except ImportError as exc:
        raise ConfigurationError(
            'summary mode needs numpy and pyarrow: pip install "drift-monitor[data]"'
        ) from exc
    return counting.summarize_table(to_table(data), bins)
