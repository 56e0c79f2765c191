"""A bounded, seeded sample of complete rows over the numerical features (for MMD)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from drift_backend.baselines.columns import as_float
from drift_backend.baselines.model import RowSample

SAMPLE_ROWS = 1000


def row_sample(
    table: pa.Table, features: list[str], *, size: int = SAMPLE_ROWS, seed: int = 0
) -> RowSample | None:
    """Up to ``size`` random rows (seeded) of ``features`` with every value finite; None
    when there are no such features or rows. Drawn before dropping incomplete rows, so the
    sample stays random when missing values are."""
    columns_in = set(table.column_names)  # a new list on every access: not in the loop
    present = [name for name in features if name in columns_in]
    if not present or table.num_rows == 0:
        return None
    rng = np.random.default_rng(seed)
    take = np.sort(rng.choice(table.num_rows, min(size, table.num_rows), replace=False))
    indices = pa.array(take)
    columns = []
    for name in present:
        column = table.column(name).take(indices)
        datetime = pa.types.is_timestamp(column.type) or pa.types.is_date(column.type)
        columns.append(as_float(column, datetime=datetime)[0])
    rows = np.column_stack(columns)
    rows = rows[np.all(np.isfinite(rows), axis=1)]
    if rows.shape[0] < 2:
        return None
    return RowSample(features=present, rows=rows.tolist())
