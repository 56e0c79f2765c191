"""A current batch reduced at upload to what the tests need, so raw rows never reach the
database or the queue: the batch's counts on the baseline's bins (the same ``summarize`` as
summary mode) and, per numerical feature, its sorted finite values when there are at most
``EXACT_VALUES`` of them, else their quantiles on a grid of ``GRID`` levels.

The tests read the grid as they read the reference's: ``ks`` compares two interpolated CDFs
(error at most about 1/1000 + 1/5000 in D), ``wasserstein`` two quantile functions. Tests
that need every raw value (``Needs.values`` in :mod:`drift_backend.stats.registry`:
Mann-Whitney, Cramér-von Mises, Anderson-Darling, energy distance) make the API keep the
whole batch instead (:func:`needs_raw`). Sorted values kept whole are as good as the raw
batch for every univariate test: against a reference that keeps its values too, the engine
then runs the test on the two whole samples.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from drift_backend.baselines import packed_values
from drift_backend.baselines.model import BatchSummary, Profile, RowSample
from drift_backend.baselines.parallel import map_columns
from drift_backend.baselines.profile import sorted_quantiles
from drift_backend.baselines.sample import row_sample
from drift_backend.baselines.summary import bins, summarize_feature, summary_of
from drift_backend.checks.config import DriftConfig
from drift_backend.stats.registry import VALUE_TESTS

EXACT_VALUES = 20_000
GRID = 5_001
NUMERIC_KINDS = frozenset({"numerical", "datetime"})
_SUMMARY_KEY = b"drift_monitor.summary"
_SAMPLE_KEY = b"drift_monitor.sample"

FloatArray = np.ndarray[Any, np.dtype[np.float64]]


@dataclass(frozen=True)
class CurrentValues:
    """A numerical feature's current values: all of them sorted (``exact``) or a grid."""

    values: FloatArray
    exact: bool


@dataclass(frozen=True)
class ReducedBatch:
    summary: BatchSummary
    numeric: dict[str, CurrentValues]
    #: Rows on the reference sample's features, for the opt-in multivariate test.
    sample: RowSample | None = None


def needs_raw(config: DriftConfig) -> bool:
    """Whether a test the configuration may run needs every raw value."""
    chosen = {config.numerical_test} | {f.test for f in config.features.values() if f.test}
    return bool(chosen & VALUE_TESTS)


def reduce_batch(
    table: pa.Table, profile: Profile, *, exact_limit: int = EXACT_VALUES, rows: bool = True
) -> ReducedBatch:
    """Counts on the baseline's bins and, per numerical feature, sorted values or a grid;
    with ``rows``, also the row sample the multivariate test reads."""
    feature_bins = bins(profile)
    per_feature = map_columns(
        lambda fb: summarize_feature(table, fb, feature_bins), feature_bins.features
    )
    numeric: dict[str, CurrentValues] = {}
    for feature, (_, values) in zip(profile.features, per_feature, strict=True):
        if feature.kind not in NUMERIC_KINDS or values is None:
            continue
        if values.size <= exact_limit:
            numeric[feature.name] = CurrentValues(values, exact=True)
        else:
            grid = sorted_quantiles(values, np.linspace(0.0, 1.0, GRID))
            numeric[feature.name] = CurrentValues(grid, exact=False)
    sample = None
    if rows and profile.sample is not None:
        sample = row_sample(table, profile.sample.features, seed=1)
        if sample is not None and sample.features != profile.sample.features:
            sample = None  # a column is missing: the rows would not line up
    summary = summary_of(table, feature_bins, [counts for counts, _ in per_feature])
    return ReducedBatch(summary, numeric, sample)


def exact_batch(table: pa.Table, profile: Profile, *, rows: bool = True) -> ReducedBatch:
    """Every value kept: what a raw batch stored whole gives the engine."""
    return reduce_batch(table, profile, exact_limit=table.num_rows, rows=rows)


def encode(batch: ReducedBatch) -> bytes:
    """One row per numerical feature with its values packed (:mod:`.packed_values`), the
    summary JSON (and the row sample) in the schema metadata."""
    metadata = {_SUMMARY_KEY: batch.summary.model_dump_json().encode()}
    if batch.sample is not None:
        metadata[_SAMPLE_KEY] = batch.sample.model_dump_json().encode()
    exact = pa.array([kept.exact for kept in batch.numeric.values()], pa.bool_())
    return packed_values.pack(
        {name: kept.values for name, kept in batch.numeric.items()}, {"exact": exact}, metadata
    )


def decode(data: bytes | bytearray) -> ReducedBatch:
    table, values = packed_values.unpack(data)
    metadata = table.schema.metadata or {}
    summary = BatchSummary.model_validate_json(metadata[_SUMMARY_KEY])
    numeric = {
        name: CurrentValues(kept, exact=bool(exact))
        for (name, kept), exact in zip(
            values.items(), table.column("exact").to_pylist(), strict=True
        )
    }
    sample = (
        RowSample.model_validate_json(metadata[_SAMPLE_KEY]) if _SAMPLE_KEY in metadata else None
    )
    return ReducedBatch(summary, numeric, sample)
