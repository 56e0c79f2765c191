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

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from drift_backend.baselines import packed_values
from drift_backend.baselines.model import (
    BatchSummary,
    FeatureCounts,
    FeatureProfile,
    Profile,
    RowSample,
)
from drift_backend.baselines.parallel import map_columns
from drift_backend.baselines.profile import sorted_quantiles
from drift_backend.baselines.sample import row_sample
from drift_backend.baselines.summary import bins, summarize_feature, summary_of
from drift_backend.checks.config import DriftConfig
from drift_backend.stats.registry import VALUE_TESTS

EXACT_VALUES = 20_000
GRID = 5_001
#: Features reduced and packed at a time when a batch is stored as it is reduced: about 5 MB
#: of 10,000-row features, so storing the first part starts early and a part in memory is
#: small.
PART_FEATURES = 64
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


def _kept(
    features: Iterable[FeatureProfile], values: Iterable[FloatArray | None], exact_limit: int
) -> dict[str, CurrentValues]:
    """What is kept of each numerical feature's sorted values: all, or a grid of them."""
    numeric: dict[str, CurrentValues] = {}
    for feature, kept in zip(features, values, strict=True):
        if feature.kind not in NUMERIC_KINDS or kept is None:
            continue
        if kept.size <= exact_limit:
            numeric[feature.name] = CurrentValues(kept, exact=True)
        else:
            grid = sorted_quantiles(kept, np.linspace(0.0, 1.0, GRID))
            numeric[feature.name] = CurrentValues(grid, exact=False)
    return numeric


def _sample(table: pa.Table, profile: Profile, rows: bool) -> RowSample | None:
    if not rows or profile.sample is None:
        return None
    sample = row_sample(table, profile.sample.features, seed=1)
    if sample is not None and sample.features != profile.sample.features:
        return None  # a column is missing: the rows would not line up
    return sample


def _reduced_parts(
    table: pa.Table, profile: Profile, exact_limit: int, features_per_part: int
) -> Iterator[tuple[list[FeatureCounts], dict[str, CurrentValues]]]:
    """Counts on the baseline's bins and what is kept of the numerical values, a part of
    ``features_per_part`` features at a time (each part's columns on the column threads)."""
    feature_bins = bins(profile)
    for start in range(0, len(profile.features), features_per_part):
        part = feature_bins.features[start : start + features_per_part]
        per_feature = map_columns(lambda fb: summarize_feature(table, fb, feature_bins), part)
        features = profile.features[start : start + features_per_part]
        kept = _kept(features, (values for _, values in per_feature), exact_limit)
        yield [counts for counts, _ in per_feature], kept


def reduce_batch(
    table: pa.Table, profile: Profile, *, exact_limit: int = EXACT_VALUES, rows: bool = True
) -> ReducedBatch:
    """Counts on the baseline's bins and, per numerical feature, sorted values or a grid;
    with ``rows``, also the row sample the multivariate test reads."""
    counts: list[FeatureCounts] = []
    numeric: dict[str, CurrentValues] = {}
    for part_counts, kept in _reduced_parts(
        table, profile, exact_limit, max(1, len(profile.features))
    ):
        counts, numeric = part_counts, kept  # one part: every feature
    summary = summary_of(table, bins(profile), counts)
    return ReducedBatch(summary, numeric, _sample(table, profile, rows))


def exact_batch(table: pa.Table, profile: Profile, *, rows: bool = True) -> ReducedBatch:
    """Every value kept: what a raw batch stored whole gives the engine."""
    return reduce_batch(table, profile, exact_limit=table.num_rows, rows=rows)


def _values_part(numeric: dict[str, CurrentValues]) -> bytes:
    exact = pa.array([kept.exact for kept in numeric.values()], pa.bool_())
    return packed_values.pack(
        {name: kept.values for name, kept in numeric.items()}, {"exact": exact}
    )


def _last_part(summary: BatchSummary, sample: RowSample | None) -> bytes:
    metadata = {_SUMMARY_KEY: summary.model_dump_json().encode()}
    if sample is not None:
        metadata[_SAMPLE_KEY] = sample.model_dump_json().encode()
    return packed_values.pack({}, {"exact": pa.array([], pa.bool_())}, metadata)


def encode(batch: ReducedBatch) -> bytes:
    """The features' kept values packed (:mod:`.packed_values`) with whether each is exact,
    then a last part with the summary JSON (and the row sample) in its schema metadata."""
    return _values_part(batch.numeric) + _last_part(batch.summary, batch.sample)


def encoded_parts(table: pa.Table, profile: Profile, *, rows: bool = True) -> Iterator[bytes]:
    """``encode(reduce_batch(table, profile, rows=rows))`` in parts of ``PART_FEATURES``
    features, each made when asked for: the caller stores one part while the next is
    reduced, so a wide batch's reduction and its storage overlap (the database, another
    process, works while this one sorts)."""
    counts: list[FeatureCounts] = []
    for part_counts, kept in _reduced_parts(table, profile, EXACT_VALUES, PART_FEATURES):
        counts += part_counts
        yield _values_part(kept)
    yield _last_part(summary_of(table, bins(profile), counts), _sample(table, profile, rows))


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
