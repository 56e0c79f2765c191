"""Column conversions shared by profiling, summary mode and the violation checks (vectorised).

Missing values are nulls, NaN and +-inf (as pandas' ``isna`` plus the infinities, which no
moment or quantile can use). Text in a numeric column is a *type mismatch*, not a missing
value (SageMaker ``data_type_check``).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

FloatArray = npt.NDArray[np.float64]
ArrowKind = Literal["integer", "floating", "boolean", "datetime", "string", "null"]

#: A decimal or scientific number, optionally signed and padded; "nan"/"inf" too (missing).
_NUMBER = r"^\s*([-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?|[-+]?(?i:nan|inf|infinity))\s*$"
_SECONDS = {"s": 1.0, "ms": 1e3, "us": 1e6, "ns": 1e9}


def arrow_kind(t: pa.DataType) -> ArrowKind:
    """The family of an Arrow type (dictionaries by their value type)."""
    if pa.types.is_dictionary(t):
        return arrow_kind(t.value_type)
    if pa.types.is_boolean(t):
        return "boolean"
    if pa.types.is_integer(t):
        return "integer"
    if pa.types.is_floating(t) or pa.types.is_decimal(t):
        return "floating"
    if pa.types.is_timestamp(t) or pa.types.is_date(t):
        return "datetime"
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return "string"
    return "null"


def _decode(column: pa.ChunkedArray) -> pa.ChunkedArray:
    if pa.types.is_dictionary(column.type):
        return pc.cast(column, column.type.value_type)
    return column


def epoch_seconds(column: pa.ChunkedArray) -> FloatArray:
    """A timestamp/date column as float epoch seconds (NaN where null)."""
    t = column.type
    if pa.types.is_date32(t):
        raw = pc.cast(pc.cast(column, pa.int32()), pa.float64()).to_numpy()
        return np.asarray(raw, dtype=np.float64) * 86400.0
    if pa.types.is_date64(t):
        raw = pc.cast(pc.cast(column, pa.int64()), pa.float64()).to_numpy()
        return np.asarray(raw, dtype=np.float64) / 1e3
    raw = pc.cast(pc.cast(column, pa.int64()), pa.float64()).to_numpy()
    return np.asarray(raw, dtype=np.float64) / _SECONDS[t.unit]


def as_float(column: pa.ChunkedArray, *, datetime: bool = False) -> tuple[FloatArray, int]:
    """``(values, type_mismatches)``: float64 values, NaN where missing or mismatched.

    Numbers pass; text is parsed where it is a number (else a mismatch); timestamps
    become epoch seconds when ``datetime`` (else a mismatch, like booleans).
    """
    column = _decode(column)
    kind = arrow_kind(column.type)
    n = len(column)
    if kind in ("integer", "floating") and not datetime:
        values = pc.cast(column, pa.float64()).to_numpy()
        return np.asarray(values, dtype=np.float64), 0
    if kind == "datetime" and datetime:
        return epoch_seconds(column), 0
    if kind == "string" and datetime:
        try:
            return epoch_seconds(pc.cast(column, pa.timestamp("us"))), 0
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            return np.full(n, np.nan), int(n - column.null_count)
    if kind == "string":
        ok = pc.match_substring_regex(column, _NUMBER)
        mismatches = int(n - column.null_count - (pc.sum(ok).as_py() or 0)) if n else 0
        kept = pc.if_else(ok, column, pa.scalar(None, pa.string()))
        values = pc.cast(pc.utf8_trim_whitespace(kept), pa.float64()).to_numpy()
        return np.asarray(values, dtype=np.float64), mismatches
    return np.full(n, np.nan), int(n - column.null_count)


def as_strings(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """Any supported column as strings (booleans as ``"true"``/``"false"``); nulls stay."""
    column = _decode(column)
    if pa.types.is_string(column.type):
        return column
    return pc.cast(column, pa.string())


def value_counts(strings: pa.ChunkedArray) -> tuple[list[str], npt.NDArray[np.int64]]:
    """Distinct non-null values and their counts, most frequent first (ties by value)."""
    counted = pc.value_counts(strings)
    table = pa.table({"values": counted.field("values"), "counts": counted.field("counts")})
    table = table.filter(pc.is_valid(table["values"]))
    order = pc.sort_indices(table, sort_keys=[("counts", "descending"), ("values", "ascending")])
    table = table.take(order)
    counts = np.asarray(table["counts"].to_numpy(), dtype=np.int64)
    return table["values"].to_pylist(), counts
