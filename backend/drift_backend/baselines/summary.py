"""Summary mode: a current batch counted on the reference's frozen bins and categories.

:func:`bins` extracts from a stored profile what a client needs (edges, categories, domains,
the reference min/max/mean/std for bound and outlier counts); :func:`summarize` is the
small pure function both the server (raw mode) and the client (summary mode) run, so the
server reaches the same decisions without seeing a row. Keep it easy to port: only
:mod:`.columns` conversions, ``searchsorted``-style binning and value counts.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from drift_backend.baselines.columns import FloatArray, as_float, as_strings, value_counts
from drift_backend.baselines.model import (
    BatchSummary,
    Bins,
    FeatureBins,
    FeatureCounts,
    Profile,
)
from drift_backend.baselines.profile import number_strings, sorted_unique
from drift_backend.stats.histogram import bin_counts_sorted

OUTLIER_CUTOFF = 4.0


def bins(profile: Profile, *, outlier_cutoff: float = OUTLIER_CUTOFF) -> Bins:
    """The frozen edges and categories of every feature (``GET .../bins``)."""
    features = []
    for f in profile.features:
        num = f.numeric
        features.append(
            FeatureBins(
                name=f.name,
                kind=f.kind,
                inferred_type=f.inferred_type,
                edges=num.edges if num else None,
                categories=f.categorical.values if f.categorical else None,
                domains=f.constraints.domains,
                min=num.min if num else None,
                max=num.max if num else None,
                mean=num.mean if num else None,
                std=num.std if num else None,
            )
        )
    return Bins(features=features, outlier_cutoff=outlier_cutoff)


def is_numeric(feature: FeatureBins) -> bool:
    """Whether a feature is read as numbers (else as strings)."""
    return feature.kind == "datetime" or feature.inferred_type in ("Integral", "Fractional")


def numeric_values(column: pa.ChunkedArray, feature: FeatureBins) -> tuple[FloatArray, int]:
    """``(finite values, type mismatches)`` of a current column for a numeric feature.

    For an ``Integral`` reference, non-integral numbers are type mismatches too. These
    are the raw values the sample-based tests (KS on quantiles, Wasserstein...) use.
    """
    values, mismatches = as_float(column, datetime=feature.kind == "datetime")
    finite_mask = np.isfinite(values)
    if feature.inferred_type == "Integral":
        fractional = finite_mask & (values != np.floor(values))
        mismatches += int(fractional.sum())
        finite_mask &= ~fractional
    return values[finite_mask], mismatches


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
    return {
        "category_counts": aligned if feature.categories is not None else None,
        "unseen_values": unseen_values if feature.categories is not None else None,
        "unseen_counts": unseen_counts if feature.categories is not None else None,
        "unseen_other": other,
        "out_of_domain": out,
    }


def _numeric_counts(
    column: pa.ChunkedArray, feature: FeatureBins, bins_: Bins
) -> tuple[FeatureCounts, FloatArray]:
    n = len(column)
    x, mismatches = numeric_values(column, feature)
    xs = np.sort(x)  # counting on sorted values searches the edges, not every value
    fields: dict[str, Any] = {}
    if feature.edges is not None:
        fields["counts"] = bin_counts_sorted(xs, feature.edges).tolist()
    if feature.categories is not None or feature.domains is not None:
        uniq, uniq_counts = sorted_unique(xs)
        labels = number_strings(uniq, feature.inferred_type == "Integral")
        cat = _counts_on(labels, uniq_counts.tolist(), feature, bins_.max_unseen)
        fields |= cat
    if x.size:
        fields |= {
            "min": float(xs[0]),
            "max": float(xs[-1]),
            # On the unsorted values: the same sums, in the same order, as the client's port.
            "mean": float(x.mean()),
            "std": float(x.std(ddof=1)) if x.size > 1 else 0.0,
        }
    if feature.min is not None and feature.max is not None:
        fields["below_min"] = int(np.searchsorted(xs, feature.min, side="left"))
        fields["above_max"] = int(xs.size - np.searchsorted(xs, feature.max, side="right"))
    if feature.mean is not None and feature.std:
        fields["outliers"] = int(
            (np.abs(x - feature.mean) / feature.std > bins_.outlier_cutoff).sum()
        )
    counts = FeatureCounts(
        name=feature.name,
        count=n,
        missing=n - int(x.size) - mismatches,
        type_mismatch=mismatches,
        negative=int(np.searchsorted(xs, 0.0, side="left")),
        **fields,
    )
    return counts, xs


def _string_counts(column: pa.ChunkedArray, feature: FeatureBins, bins_: Bins) -> FeatureCounts:
    n = len(column)
    strings = as_strings(column)
    mismatches = 0
    if feature.kind == "boolean":
        strings = pc.utf8_lower(strings)
        ok = pc.is_in(strings, value_set=pa.array(["true", "false"]))
        mismatches = int(len(strings) - strings.null_count - (pc.sum(ok).as_py() or 0)) if n else 0
        strings = pc.if_else(ok, strings, pa.scalar(None, pa.string()))
    names, counts = value_counts(strings)
    return FeatureCounts(
        name=feature.name,
        count=n,
        missing=strings.null_count - mismatches,
        type_mismatch=mismatches,
        **_counts_on(names, counts.tolist(), feature, bins_.max_unseen),
    )


def summarize_feature(
    table: pa.Table, feature: FeatureBins, bins_: Bins
) -> tuple[FeatureCounts, FloatArray | None]:
    """One feature's counts and, for a numeric feature, its finite values sorted (what the
    quantile-based tests read; sorting is most of the cost, so it is done once)."""
    # An indexed look-up: ``column_names`` builds a new list per call, quadratic on wide tables.
    if table.schema.get_field_index(feature.name) < 0:
        return FeatureCounts(name=feature.name, present=False), None
    column = table.column(feature.name)
    if feature.kind == "unknown" and feature.inferred_type == "Unknown":
        return FeatureCounts(name=feature.name, count=len(column), missing=column.null_count), None
    if is_numeric(feature):
        return _numeric_counts(column, feature, bins_)
    return _string_counts(column, feature, bins_), None


def summary_of(table: pa.Table, bins_: Bins, features: list[FeatureCounts]) -> BatchSummary:
    known = {f.name for f in bins_.features}
    return BatchSummary(
        row_count=table.num_rows,
        features=features,
        extra_columns=[c for c in table.column_names if c not in known],
    )


def summarize(table: pa.Table, bins_: Bins) -> BatchSummary:
    """Counts of ``table`` on ``bins_``: what summary mode sends instead of rows."""
    counts = [summarize_feature(table, feature, bins_)[0] for feature in bins_.features]
    return summary_of(table, bins_, counts)


def profile_batch(
    table: pa.Table, reference: Profile, *, outlier_cutoff: float = OUTLIER_CUTOFF
) -> BatchSummary:
    """The current batch summarized on ``reference``'s frozen edges and categories.

    The raw values stay in ``table``: tests that need them call :func:`numeric_values`
    with the matching entry of ``bins(reference).features``.
    """
    return summarize(table, bins(reference, outlier_cutoff=outlier_cutoff))
