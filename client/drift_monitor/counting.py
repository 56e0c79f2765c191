"""Summary-mode counting: a batch counted on a baseline's frozen bins and categories.

The one implementation both sides run: the SDK in summary mode (``drift_monitor.summarize``),
and the server on raw batches (``drift_backend.baselines.summary``), whose column conversions
(``drift_backend.baselines.columns``) are these too. So the server decides on exactly the
counts it would have computed from the rows.

Conventions: missing values are nulls, NaN and +-inf (as pandas' ``isna`` plus the
infinities, which no moment or quantile can use); text in a numeric column is a type
mismatch unless it parses as a number (SageMaker ``data_type_check``); ``Integral`` features
count non-integral numbers as mismatches; histogram cells are ``len(edges) + 1`` (open
underflow, ``[e[i-1], e[i])`` inner cells with the last one closed, open overflow).

Needs numpy and pyarrow (the SDK's ``data`` extra); nothing else.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal, Protocol

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

FloatArray = npt.NDArray[np.float64]
ArrowKind = Literal["integer", "floating", "boolean", "datetime", "string", "null"]

#: A decimal or scientific number, optionally signed and padded; "nan"/"inf" too (missing).
_NUMBER = r"^\s*([-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?|[-+]?(?i:nan|inf|infinity))\s*$"
_SECONDS = {"s": 1.0, "ms": 1e3, "us": 1e6, "ns": 1e9}


class FeatureSpec(Protocol):
    """One feature's frozen bins: the SDK's ``FeatureBins`` or the server's model."""

    @property
    def name(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def inferred_type(self) -> str: ...
    @property
    def edges(self) -> Sequence[float] | None: ...
    @property
    def categories(self) -> Sequence[str] | None: ...
    @property
    def domains(self) -> Sequence[str] | None: ...
    @property
    def min(self) -> float | None: ...
    @property
    def max(self) -> float | None: ...
    @property
    def mean(self) -> float | None: ...
    @property
    def std(self) -> float | None: ...


class BinsSpec(Protocol):
    @property
    def features(self) -> Sequence[FeatureSpec]: ...
    @property
    def outlier_cutoff(self) -> float: ...
    @property
    def max_unseen(self) -> int: ...


# Column conversions ------------------------------------------------------------------------
def arrow_kind(t: Any) -> ArrowKind:
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


def _decode(column: Any) -> Any:
    if pa.types.is_dictionary(column.type):
        return pc.cast(column, column.type.value_type)
    return column


def _to_float(column: Any) -> FloatArray:
    return np.asarray(pc.cast(column, pa.float64()).to_numpy(), dtype=np.float64)


def epoch_seconds(column: Any) -> FloatArray:
    """A timestamp/date column as float epoch seconds (NaN where null)."""
    t = column.type
    if pa.types.is_date32(t):
        return _to_float(pc.cast(column, pa.int32())) * 86400.0
    if pa.types.is_date64(t):
        return _to_float(pc.cast(column, pa.int64())) / 1e3
    return _to_float(pc.cast(column, pa.int64())) / _SECONDS[t.unit]


def as_float(column: Any, *, datetime: bool = False) -> tuple[FloatArray, int]:
    """``(values, type_mismatches)``: float64 values, NaN where missing or mismatched.

    Numbers pass; text is parsed where it is a number (else a mismatch); timestamps
    become epoch seconds when ``datetime`` (else a mismatch, like booleans).
    """
    column = _decode(column)
    kind = arrow_kind(column.type)
    n = len(column)
    if kind in ("integer", "floating") and not datetime:
        return _to_float(column), 0
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
        return _to_float(pc.utf8_trim_whitespace(kept)), mismatches
    return np.full(n, np.nan), int(n - column.null_count)


def as_strings(column: Any) -> Any:
    """Any supported column as strings (booleans as ``"true"``/``"false"``); nulls stay."""
    column = _decode(column)
    if pa.types.is_string(column.type):
        return column
    return pc.cast(column, pa.string())


def value_counts(strings: Any) -> tuple[list[str], npt.NDArray[np.int64]]:
    """Distinct non-null values and their counts, most frequent first (ties by value)."""
    counted = pc.value_counts(strings)
    table = pa.table({"values": counted.field("values"), "counts": counted.field("counts")})
    table = table.filter(pc.is_valid(table["values"]))
    order = pc.sort_indices(table, sort_keys=[("counts", "descending"), ("values", "ascending")])
    table = table.take(order)
    counts = np.asarray(table["counts"].to_numpy(), dtype=np.int64)
    return list(table["values"].to_pylist()), counts


def sorted_unique(xs: FloatArray) -> tuple[FloatArray, npt.NDArray[np.int64]]:
    """``numpy.unique(xs, return_counts=True)`` of an already sorted sample, in O(n)."""
    if xs.size == 0:
        return xs, np.zeros(0, dtype=np.int64)
    starts = np.concatenate(([0], np.flatnonzero(np.diff(xs)) + 1))
    return xs[starts], np.diff(np.append(starts, xs.size))


def number_strings(values: FloatArray, integral: bool) -> list[str]:
    """Numbers as category labels, formatted exactly as Arrow casts them to strings."""
    array = pa.array(values, type=pa.float64())
    if integral:
        array = array.cast(pa.int64())
    return [str(v) for v in array.cast(pa.string()).to_pylist()]


def bin_counts_sorted(sorted_values: FloatArray, edges: Sequence[float] | FloatArray) -> FloatArray:
    """Counts of finite values already sorted ascending on ``edges`` (``len(edges) + 1``
    cells), by searching the edges in the values: O(edges x log n), not O(n x log edges)."""
    e = np.asarray(edges, dtype=np.float64)
    if e.ndim != 1 or e.size < 2 or np.any(np.diff(e) < 0):
        raise ValueError("edges must be a non-decreasing 1-D array of at least 2 values")
    x = sorted_values
    below = np.searchsorted(x, e, side="left")  # values < each edge
    at_or_below_last = int(np.searchsorted(x, e[-1], side="right"))
    counts = np.empty(e.size + 1, dtype=np.float64)
    counts[0] = below[0]
    counts[1:-1] = np.diff(below)
    counts[-2] = at_or_below_last - below[-2]  # the last inner cell is closed on the right
    counts[-1] = x.size - at_or_below_last
    return counts


# Per-feature counts ------------------------------------------------------------------------
def is_numeric(feature: FeatureSpec) -> bool:
    """Whether a feature is read as numbers (else as strings)."""
    return feature.kind == "datetime" or feature.inferred_type in ("Integral", "Fractional")


def numeric_values(column: Any, feature: FeatureSpec) -> tuple[FloatArray, int]:
    """``(finite values, type mismatches)`` of a current column for a numeric feature; for
    an ``Integral`` reference, non-integral numbers are type mismatches too."""
    values, mismatches = as_float(column, datetime=feature.kind == "datetime")
    finite_mask = np.isfinite(values)
    if feature.inferred_type == "Integral":
        fractional = finite_mask & (values != np.floor(values))
        mismatches += int(fractional.sum())
        finite_mask &= ~fractional
    return values[finite_mask], mismatches


def counts_record(name: str, **fields: Any) -> dict[str, Any]:
    """A ``FeatureCounts`` (the wire format) with every field, defaults filled in."""
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


def _counts_on(
    names: list[str], counts: list[int], feature: FeatureSpec, max_unseen: int
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


def _numeric_counts(
    column: Any, feature: FeatureSpec, bins: BinsSpec
) -> tuple[dict[str, Any], FloatArray]:
    n = len(column)
    x, mismatches = numeric_values(column, feature)
    xs = np.sort(x)  # counting on sorted values searches the edges, not every value
    fields: dict[str, Any] = {}
    if feature.edges is not None:
        fields["counts"] = bin_counts_sorted(xs, feature.edges).tolist()
    if feature.categories is not None or feature.domains is not None:
        uniq, uniq_counts = sorted_unique(xs)
        labels = number_strings(uniq, feature.inferred_type == "Integral")
        fields |= _counts_on(labels, uniq_counts.tolist(), feature, bins.max_unseen)
    if x.size:
        fields |= {
            "min": float(xs[0]),
            "max": float(xs[-1]),
            "mean": float(x.mean()),
            "std": float(x.std(ddof=1)) if x.size > 1 else 0.0,
        }
    if feature.min is not None and feature.max is not None:
        fields["below_min"] = int(np.searchsorted(xs, feature.min, side="left"))
        fields["above_max"] = int(xs.size - np.searchsorted(xs, feature.max, side="right"))
    if feature.mean is not None and feature.std:
        fields["outliers"] = int(
            (np.abs(x - feature.mean) / feature.std > bins.outlier_cutoff).sum()
        )
    record = counts_record(
        feature.name,
        count=n,
        missing=n - int(x.size) - mismatches,
        type_mismatch=mismatches,
        negative=int(np.searchsorted(xs, 0.0, side="left")),
        **fields,
    )
    return record, xs


def _string_counts(column: Any, feature: FeatureSpec, bins: BinsSpec) -> dict[str, Any]:
    n = len(column)
    strings = as_strings(column)
    mismatches = 0
    if feature.kind == "boolean":
        strings = pc.utf8_lower(strings)
        ok = pc.is_in(strings, value_set=pa.array(["true", "false"]))
        mismatches = int(len(strings) - strings.null_count - (pc.sum(ok).as_py() or 0)) if n else 0
        strings = pc.if_else(ok, strings, pa.scalar(None, pa.string()))
    names, counts = value_counts(strings)
    return counts_record(
        feature.name,
        count=n,
        missing=int(strings.null_count) - mismatches,
        type_mismatch=mismatches,
        **_counts_on(names, counts.tolist(), feature, bins.max_unseen),
    )


def feature_counts(
    table: Any, feature: FeatureSpec, bins: BinsSpec
) -> tuple[dict[str, Any], FloatArray | None]:
    """One feature's counts (a ``FeatureCounts`` record) and, for a numeric feature, its
    finite values sorted (what the server's quantile-based tests read; sorting is most of the
    cost, so it is done once)."""
    # An indexed look-up: ``column_names`` builds a new list per call, quadratic on wide tables.
    if table.schema.get_field_index(feature.name) < 0:
        return counts_record(feature.name, present=False), None
    column = table.column(feature.name)
    if feature.kind == "unknown" and feature.inferred_type == "Unknown":
        return counts_record(feature.name, count=len(column), missing=column.null_count), None
    if is_numeric(feature):
        return _numeric_counts(column, feature, bins)
    return _string_counts(column, feature, bins), None


def summary_record(table: Any, bins: BinsSpec, features: list[dict[str, Any]]) -> dict[str, Any]:
    """A ``BatchSummary`` record around per-feature counts."""
    known = {f.name for f in bins.features}
    return {
        "row_count": int(table.num_rows),
        "features": features,
        "extra_columns": [c for c in table.column_names if c not in known],
    }


def summarize_table(table: Any, bins: BinsSpec) -> dict[str, Any]:
    """The ``BatchSummary`` of an Arrow table on ``bins``: what summary mode sends."""
    return summary_record(table, bins, [feature_counts(table, f, bins)[0] for f in bins.features])
