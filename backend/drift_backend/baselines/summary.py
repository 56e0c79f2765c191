"""Summary mode: a current batch counted on the reference's frozen bins and categories.

:func:`bins` extracts from a stored profile what a client needs (edges, categories, domains,
the reference min/max/mean/std for bound and outlier counts); :func:`summarize` counts a
batch on them with :mod:`drift_monitor.counting`, the very code the SDK runs in summary mode,
so the server reaches the same decisions without seeing a row.
"""

from __future__ import annotations

import pyarrow as pa
from drift_monitor import counting

from drift_backend.baselines.columns import FloatArray
from drift_backend.baselines.model import (
    BatchSummary,
    Bins,
    FeatureBins,
    FeatureCounts,
    Profile,
)

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
    return counting.is_numeric(feature)


def numeric_values(column: pa.ChunkedArray, feature: FeatureBins) -> tuple[FloatArray, int]:
    """``(finite values, type mismatches)`` of a current column for a numeric feature.

    For an ``Integral`` reference, non-integral numbers are type mismatches too. These
    are the raw values the sample-based tests (KS on quantiles, Wasserstein...) use.
    """
    return counting.numeric_values(column, feature)


def summarize_feature(
    table: pa.Table, feature: FeatureBins, bins_: Bins
) -> tuple[FeatureCounts, FloatArray | None]:
    """One feature's counts and, for a numeric feature, its finite values sorted (what the
    quantile-based tests read; sorting is most of the cost, so it is done once)."""
    record, values = counting.feature_counts(table, feature, bins_)
    return FeatureCounts.model_validate(record), values


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
