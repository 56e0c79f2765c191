"""Build a baseline :class:`Profile` from reference data, vectorised (numpy / pyarrow.compute).

Kind inference, per column (documented in ``docs/baselines.md``):

- ``bool`` -> ``boolean`` (category counts of ``"true"``/``"false"``);
- integers with at most :data:`CATEGORICAL_MAX_DISTINCT` distinct values -> ``categorical``
  (their numeric summary is kept too), other integers -> ``numerical``;
- floats and decimals -> ``numerical`` (a column with few distinct values also keeps its
  category counts, so count-based tests can run on it);
- strings and dictionaries -> ``categorical``;
- timestamps and dates -> ``datetime``, summarized as numerical epoch seconds;
- all-null columns -> ``unknown``.

Numerical summaries follow what SageMaker Model Monitor keeps (Deequ's ``mean``, ``sum``,
``std_dev``, ``min``, ``max`` and a KLL quantile sketch), but with an exact, fixed quantile
grid instead of a sketch, and a histogram on frozen quantile edges for binned tests.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
from drift_monitor.counting import number_strings, sorted_unique

from drift_backend.baselines.columns import (
    FloatArray,
    arrow_kind,
    as_float,
    as_strings,
    value_counts,
)
from drift_backend.baselines.model import (
    CategoricalSummary,
    FeatureConstraints,
    FeatureKind,
    FeatureProfile,
    MonitoringConfig,
    NumericSummary,
    Profile,
)
from drift_backend.baselines.parallel import map_columns
from drift_backend.baselines.sample import row_sample
from drift_backend.stats.histogram import bin_counts_sorted

#: Integer columns with at most this many distinct values are categorical.
CATEGORICAL_MAX_DISTINCT = 20
#: Categorical features with at most this many categories get a ``domains`` constraint.
DOMAIN_MAX = 100
#: Categories stored per feature; the rest are summed into ``__other__``.
MAX_CATEGORIES = 10_000
DEFAULT_QUANTILES = 1001
DEFAULT_BINS = 20
#: Numerical features with at most this many finite values keep them all (sorted), so the
#: tests on whole samples run exactly; ``DRIFT_EXACT_REFERENCE_ROWS`` sets it in the service.
DEFAULT_EXACT_ROWS = 10_000


def sorted_quantiles(xs: FloatArray, levels: FloatArray) -> FloatArray:
    """``numpy.quantile(xs, levels)`` (linear) of an already sorted, non-empty sample."""
    pos = levels * (xs.size - 1)
    lo = np.floor(pos).astype(np.int64)
    hi = np.minimum(lo + 1, xs.size - 1)
    frac = pos - lo
    out: FloatArray = xs[lo] + frac * (xs[hi] - xs[lo])
    return out


def frozen_edges(xs: FloatArray, n_bins: int) -> FloatArray:
    """Quantile edges at ``0, 1/n_bins, ..., 1`` of a sorted sample, ties merged."""
    edges = np.unique(sorted_quantiles(xs, np.linspace(0.0, 1.0, n_bins + 1)))
    if edges.size == 1:
        edges = np.repeat(edges, 2)
    return edges


def numeric_summary(xs: FloatArray, n_quantiles: int, n_bins: int) -> NumericSummary:
    """Moments, quantile grid and frozen-edge histogram of sorted finite values."""
    if xs.size == 0:
        return NumericSummary()
    edges = frozen_edges(xs, n_bins)
    return NumericSummary(
        min=float(xs[0]),
        max=float(xs[-1]),
        mean=float(xs.mean()),
        std=float(xs.std(ddof=1)) if xs.size > 1 else 0.0,
        sum=float(xs.sum()),
        quantiles=sorted_quantiles(xs, np.linspace(0.0, 1.0, n_quantiles)).tolist(),
        edges=edges.tolist(),
        counts=bin_counts_sorted(xs, edges).tolist(),
    )


def distinct_count(xs: FloatArray) -> int:
    """How many distinct values an already sorted sample holds."""
    return int(np.count_nonzero(xs[1:] != xs[:-1])) + 1 if xs.size else 0


def categorical_summary(values: list[str], counts: list[int], cap: int) -> CategoricalSummary:
    return CategoricalSummary(
        values=values[:cap],
        counts=counts[:cap],
        other_count=int(sum(counts[cap:])),
        capped=len(values) > cap,
    )


def _feature(
    name: str, column: pa.ChunkedArray, n_quantiles: int, n_bins: int, cap: int, exact_rows: int
) -> tuple[FeatureProfile, FloatArray | None]:
    """The feature's profile and, when it keeps them, its sorted finite values."""
    family = arrow_kind(column.type)
    n = len(column)
    dtype = str(column.type)
    if family == "null":
        profiled = FeatureProfile(
            name=name,
            dtype=dtype,
            count=n,
            kind="unknown",
            inferred_type="Unknown",
            missing=n,
            completeness=0.0,
            has_distribution=False,
            constraints=FeatureConstraints(completeness=0.0),
        )
        return profiled, None
    if family in ("string", "boolean"):
        names, counts = value_counts(as_strings(column))
        missing = column.null_count
        completeness = (n - missing) / n if n else 0.0
        domains = names if len(names) <= DOMAIN_MAX else None
        profiled = FeatureProfile(
            name=name,
            dtype=dtype,
            count=n,
            kind="boolean" if family == "boolean" else "categorical",
            inferred_type="String",
            missing=missing,
            completeness=completeness,
            distinct_count=len(names),
            has_distribution=bool(names),
            categorical=categorical_summary(names, counts.tolist(), cap),
            constraints=FeatureConstraints(completeness=completeness, domains=domains),
        )
        return profiled, None
    values, _ = as_float(column, datetime=family == "datetime")
    finite = np.sort(values[np.isfinite(values)])
    numeric = numeric_summary(finite, n_quantiles, n_bins)
    distinct = distinct_count(finite)
    integral = family == "integer"
    categorical_kind = integral and distinct <= CATEGORICAL_MAX_DISTINCT
    categorical: CategoricalSummary | None = None
    if family != "datetime" and 0 < distinct <= CATEGORICAL_MAX_DISTINCT:
        uniq, uniq_counts = sorted_unique(finite)
        order = np.argsort(-uniq_counts, kind="stable")
        labels = number_strings(uniq[order], integral)
        categorical = categorical_summary(labels, uniq_counts[order].tolist(), cap)
    completeness = finite.size / n if n else 0.0
    kind: FeatureKind = (
        "datetime" if family == "datetime" else "categorical" if categorical_kind else "numerical"
    )
    exact = kind != "categorical" and 0 < finite.size <= exact_rows
    if exact:
        numeric = numeric.model_copy(update={"exact_values": True})
    profiled = FeatureProfile(
        name=name,
        dtype=dtype,
        count=n,
        kind=kind,
        inferred_type="Integral" if integral else "Fractional",
        missing=n - int(finite.size),
        completeness=completeness,
        distinct_count=distinct,
        has_distribution=finite.size > 0,
        numeric=numeric,
        categorical=categorical,
        constraints=FeatureConstraints(
            completeness=completeness,
            is_non_negative=None if numeric.min is None else numeric.min >= 0,
            domains=categorical.values if categorical_kind and categorical else None,
        ),
    )
    return profiled, finite if exact else None


def build_profile(
    table: pa.Table,
    *,
    quantiles: int = DEFAULT_QUANTILES,
    bins: int = DEFAULT_BINS,
    max_categories: int = MAX_CATEGORIES,
    monitoring_config: MonitoringConfig | None = None,
    exact_rows: int = DEFAULT_EXACT_ROWS,
) -> Profile:
    """Profile every column of ``table`` (see the module docstring for the rules); numerical
    features with at most ``exact_rows`` finite values carry them (:meth:`Profile.values`)."""
    if quantiles < 2 or bins < 1 or max_categories < 1:
        raise ValueError("quantiles >= 2, bins >= 1 and max_categories >= 1 are required")
    names = table.column_names  # a new list on every access
    profiled = map_columns(
        lambda i: _feature(names[i], table.column(i), quantiles, bins, max_categories, exact_rows),
        range(table.num_columns),
    )
    features = [feature for feature, _ in profiled]
    values = {f.name: kept for f, kept in profiled if kept is not None}
    numerical = [f.name for f in features if f.kind in ("numerical", "datetime")]
    return Profile(
        row_count=table.num_rows,
        features=features,
        monitoring_config=monitoring_config or MonitoringConfig(),
        sample=row_sample(table, numerical),
    ).with_values(values)
