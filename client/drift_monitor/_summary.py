"""Summary mode: count a current batch on a baseline's frozen bins, locally.

A port of the server's ``summarize`` (``drift_backend.baselines.summary``) with the same
conventions, so the server decides on exactly the counts it would have computed from the
rows: missing values are nulls, NaN and +-inf; text in a numeric column is a type mismatch
unless it parses as a number; ``Integral`` features count non-integral numbers as
mismatches; histogram cells are ``len(edges) + 1`` (open underflow, ``[e[i-1], e[i])`` inner
cells with the last one closed, open overflow). Needs numpy and pyarrow (the ``data`` extra).
"""

from __future__ import annotations

from typing import Any

from drift_monitor._data import DataLike, to_table
from drift_monitor._exceptions import ConfigurationError
from drift_monitor._models import Bins, FeatureBins

__all__ = ["summarize"]

#: A decimal or scientific number, optionally signed and padded; "nan"/"inf" too (missing).
_NUMBER = r"^\s*([-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?|[-+]?(?i:nan|inf|infinity))\s*$"
_SECONDS = {"s": 1.0, "ms": 1e3, "us": 1e6, "ns": 1e9}


class _Libs:
    """numpy, pyarrow and pyarrow.compute, imported on first use."""

    def __init__(self) -> None:
        try:
            import numpy
            import pyarrow
            import pyarrow.compute
        except ImportError as exc:
            raise ConfigurationError(
                'summary mode needs numpy and pyarrow: pip install "drift-monitor[data]"'
            ) from exc
        self.np: Any = numpy
        self.pa: Any = pyarrow
        self.pc: Any = pyarrow.compute


def summarize(data: DataLike, bins: Bins) -> dict[str, Any]:
    """The ``BatchSummary`` of ``data`` on ``bins``: what summary mode sends instead of rows.

    ``{"row_count", "features": [{name, present, count, missing, type_mismatch, counts,
    category_counts, unseen_values, unseen_counts, unseen_other, out_of_domain, below_min,
    above_max, negative, outliers, min, max, mean, std}], "extra_columns"}``.
    """
    libs = _Libs()
    table = to_table(data)
    features: list[dict[str, Any]] = []
    for feature in bins.features:
        if feature.name not in table.column_names:
            features.append(_counts(feature.name, present=False))
            continue
        column = table.column(feature.name)
        if feature.kind == "unknown" and feature.inferred_type == "Unknown":
            n = len(column)
            features.append(_counts(feature.name, count=n, missing=column.null_count))
        elif _is_numeric(feature):
            features.append(_numeric_counts(libs, column, feature, bins))
        else:
            features.append(_string_counts(libs, column, feature, bins))
    known = {f.name for f in bins.features}
    return {
        "row_count": int(table.num_rows),
        "features": features,
        "extra_columns": [c for c in table.column_names if c not in known],
    }


def _counts(name: str, **fields: Any) -> dict[str, Any]:
    """A ``FeatureCounts`` with the server model's defaults."""
    out: dict[str, Any] = {
        "name": name,
        "present": True,
        "count": 0,
        "missing": 0,
        "type_mismatch": 0,
        "counts": None,
        "category_counts": None,
        "unseen_values": None,
        "unseen_counts": None,
        "unseen_other": 0,
        "out_of_domain": 0,
        "below_min": 0,
        "above_max": 0,
        "negative": 0,
        "outliers": 0,
        "min": None,
        "max": None,
        "mean": None,
        "std": None,
    }
    out.update(fields)
    return out


def _is_numeric(feature: FeatureBins) -> bool:
    return feature.kind == "datetime" or feature.inferred_type in ("Integral", "Fractional")


# Column conversions ------------------------------------------------------------------------
def _decode(libs: _Libs, column: Any) -> Any:
    pa, pc = libs.pa, libs.pc
    if pa.types.is_dictionary(column.type):
        return pc.cast(column, column.type.value_type)
    return column


def _arrow_kind(libs: _Libs, t: Any) -> str:
    types = libs.pa.types
    if types.is_dictionary(t):
        return _arrow_kind(libs, t.value_type)
    if types.is_boolean(t):
        return "boolean"
    if types.is_integer(t):
        return "integer"
    if types.is_floating(t) or types.is_decimal(t):
        return "floating"
    if types.is_timestamp(t) or types.is_date(t):
        return "datetime"
    if types.is_string(t) or types.is_large_string(t):
        return "string"
    return "null"


def _to_float(libs: _Libs, column: Any) -> Any:
    raw = libs.pc.cast(column, libs.pa.float64()).to_numpy()
    return libs.np.asarray(raw, dtype=libs.np.float64)


def _epoch_seconds(libs: _Libs, column: Any) -> Any:
    pa, pc = libs.pa, libs.pc
    t = column.type
    if pa.types.is_date32(t):
        return _to_float(libs, pc.cast(column, pa.int32())) * 86400.0
    if pa.types.is_date64(t):
        return _to_float(libs, pc.cast(column, pa.int64())) / 1e3
    return _to_float(libs, pc.cast(column, pa.int64())) / _SECONDS[t.unit]


def _as_float(libs: _Libs, column: Any, *, datetime: bool) -> tuple[Any, int]:
    """``(values, type_mismatches)``: float64 values, NaN where missing or mismatched."""
    np, pa, pc = libs.np, libs.pa, libs.pc
    column = _decode(libs, column)
    kind = _arrow_kind(libs, column.type)
    n = len(column)
    if kind in ("integer", "floating") and not datetime:
        return _to_float(libs, column), 0
    if kind == "datetime" and datetime:
        return _epoch_seconds(libs, column), 0
    if kind == "string" and datetime:
        try:
            return _epoch_seconds(libs, pc.cast(column, pa.timestamp("us"))), 0
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            return np.full(n, np.nan), int(n - column.null_count)
    if kind == "string":
        ok = pc.match_substring_regex(column, _NUMBER)
        mismatches = int(n - column.null_count - (pc.sum(ok).as_py() or 0)) if n else 0
        kept = pc.if_else(ok, column, pa.scalar(None, pa.string()))
        return _to_float(libs, pc.utf8_trim_whitespace(kept)), mismatches
    return np.full(n, np.nan), int(n - column.null_count)


def _as_strings(libs: _Libs, column: Any) -> Any:
    column = _decode(libs, column)
    if libs.pa.types.is_string(column.type):
        return column
    return libs.pc.cast(column, libs.pa.string())


def _value_counts(libs: _Libs, strings: Any) -> tuple[list[str], list[int]]:
    """Distinct non-null values and their counts, most frequent first (ties by value)."""
    pa, pc = libs.pa, libs.pc
    counted = pc.value_counts(strings)
    table = pa.table({"values": counted.field("values"), "counts": counted.field("counts")})
    table = table.filter(pc.is_valid(table["values"]))
    order = pc.sort_indices(table, sort_keys=[("counts", "descending"), ("values", "ascending")])
    table = table.take(order)
    return list(table["values"].to_pylist()), [int(c) for c in table["counts"].to_pylist()]


def _sorted_unique(libs: _Libs, xs: Any) -> tuple[Any, Any]:
    np = libs.np
    if xs.size == 0:
        return xs, np.zeros(0, dtype=np.int64)
    starts = np.concatenate(([0], np.flatnonzero(np.diff(xs)) + 1))
    return xs[starts], np.diff(np.append(starts, xs.size))


def _number_strings(libs: _Libs, values: Any, integral: bool) -> list[str]:
    """Numbers as category labels, formatted exactly as Arrow casts them to strings."""
    pa = libs.pa
    array = pa.array(values, type=pa.float64())
    if integral:
        array = array.cast(pa.int64())
    return [str(v) for v in array.cast(pa.string()).to_pylist()]


def _bin_counts(libs: _Libs, x: Any, edges: list[float]) -> list[float]:
    np = libs.np
    e = np.asarray(edges, dtype=np.float64)
    idx = np.searchsorted(e, x, side="right")
    idx[x == e[-1]] = e.size - 1
    return [float(c) for c in np.bincount(idx, minlength=e.size + 1)]


# Per-feature counts ------------------------------------------------------------------------
def _counts_on(
    names: list[str], counts: list[int], feature: FeatureBins, max_unseen: int
) -> dict[str, Any]:
    index = {v: i for i, v in enumerate(feature.categories or [])}
    aligned = [0.0] * len(index)
    unseen_values: list[str] = []
    unseen_counts: list[int] = []
    other = 0
    for name, count in zip(names, counts, strict=True):
        if name in index:
            aligned[index[name]] = float(count)
        elif len(unseen_values) < max_unseen:
            unseen_values.append(name)
            unseen_counts.append(count)
        else:
            other += count
    domain = set(feature.domains) if feature.domains is not None else None
    out = (
        0
        if domain is None
        else sum(c for v, c in zip(names, counts, strict=True) if v not in domain)
    )
    has_categories = feature.categories is not None
    return {
        "category_counts": aligned if has_categories else None,
        "unseen_values": unseen_values if has_categories else None,
        "unseen_counts": unseen_counts if has_categories else None,
        "unseen_other": other,
        "out_of_domain": out,
    }


def _numeric_counts(libs: _Libs, column: Any, feature: FeatureBins, bins: Bins) -> dict[str, Any]:
    np = libs.np
    n = len(column)
    values, mismatches = _as_float(libs, column, datetime=feature.kind == "datetime")
    finite = np.isfinite(values)
    if feature.inferred_type == "Integral":
        fractional = finite & (values != np.floor(values))
        mismatches += int(fractional.sum())
        finite &= ~fractional
    x = values[finite]
    fields: dict[str, Any] = {}
    if feature.edges is not None:
        fields["counts"] = _bin_counts(libs, x, feature.edges)
    if feature.categories is not None or feature.domains is not None:
        uniq, uniq_counts = _sorted_unique(libs, np.sort(x))
        labels = _number_strings(libs, uniq, feature.inferred_type == "Integral")
        fields |= _counts_on(labels, [int(c) for c in uniq_counts], feature, bins.max_unseen)
    if x.size:
        fields |= {
            "min": float(x.min()),
            "max": float(x.max()),
            "mean": float(x.mean()),
            "std": float(x.std(ddof=1)) if x.size > 1 else 0.0,
        }
    if feature.min is not None and feature.max is not None:
        fields["below_min"] = int((x < feature.min).sum())
        fields["above_max"] = int((x > feature.max).sum())
    if feature.mean is not None and feature.std:
        z = np.abs(x - feature.mean) / feature.std
        fields["outliers"] = int((z > bins.outlier_cutoff).sum())
    return _counts(
        feature.name,
        count=n,
        missing=n - int(x.size) - mismatches,
        type_mismatch=mismatches,
        negative=int((x < 0).sum()),
        **fields,
    )


def _string_counts(libs: _Libs, column: Any, feature: FeatureBins, bins: Bins) -> dict[str, Any]:
    pa, pc = libs.pa, libs.pc
    n = len(column)
    strings = _as_strings(libs, column)
    mismatches = 0
    if feature.kind == "boolean":
        strings = pc.utf8_lower(strings)
        ok = pc.is_in(strings, value_set=pa.array(["true", "false"]))
        mismatches = int(len(strings) - strings.null_count - (pc.sum(ok).as_py() or 0)) if n else 0
        strings = pc.if_else(ok, strings, pa.scalar(None, pa.string()))
    names, counts = _value_counts(libs, strings)
    return _counts(
        feature.name,
        count=n,
        missing=int(strings.null_count) - mismatches,
        type_mismatch=mismatches,
        **_counts_on(names, counts, feature, bins.max_unseen),
    )
