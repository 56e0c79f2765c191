"""The stored baseline profile and the summary-mode bins and counts (pydantic, JSON/BSON-friendly).

Every number is a plain ``int``/``float`` (never a numpy scalar), a missing statistic is
``None`` (never NaN), and lists replace mappings so that feature or category names never
become MongoDB keys. See ``docs/baselines.md`` for the field-by-field description.

Histogram convention (the same as :func:`drift_backend.stats.histogram.bin_counts`):
``edges`` are finite and non-decreasing and define ``len(edges) + 1`` cells: cell 0 is the
open underflow ``x < edges[0]``, cells ``1..len(edges)-1`` are ``[edges[i-1], edges[i])``
(the last inner cell closed on the right) and the final cell is the open overflow
``x > edges[-1]``. The open ends stand for the ``-inf``/``+inf`` edges JSON cannot hold, so
any current value falls in a cell.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cached_property
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

FeatureKind = Literal["numerical", "categorical", "boolean", "datetime", "unknown"]
#: SageMaker Model Monitor / Deequ ``inferred_type`` values.
InferredType = Literal["Integral", "Fractional", "String", "Unknown"]
ComparisonMethod = Literal["Simple", "Robust"]
CategoricalDriftMethod = Literal["LInfinity", "ChiSquared"]

#: Name of the bucket that sums the categories beyond the stored cap.
OTHER = "__other__"


FloatArray = npt.NDArray[np.float64]


class _Values(dict[str, FloatArray]):
    """Arrays by name, equal when their contents are (a plain dict of arrays cannot be
    compared, and profiles are)."""

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, dict) or self.keys() != other.keys():
            return False
        return all(np.array_equal(v, other[k]) for k, v in self.items())


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class NumericSummary(_Model):
    """Moments, exact min/max, a quantile grid and a histogram of the finite values."""

    min: float | None = None
    max: float | None = None
    mean: float | None = None
    #: Sample standard deviation (ddof=1, as pandas and Flare); 0.0 for one value.
    std: float | None = None
    sum: float | None = None
    #: ``quantiles[k]`` is the quantile at level ``k / (len - 1)`` (linear interpolation,
    #: min and max included); ``None`` when the distribution is unknown (Flare files).
    quantiles: list[float] | None = None
    edges: list[float] | None = None
    #: ``len(edges) + 1`` counts (underflow, inner cells, overflow); see the module doc.
    counts: list[float] | None = None
    #: The sorted finite values themselves are stored beside the profile (at most
    #: ``DRIFT_EXACT_REFERENCE_ROWS`` of them): tests on whole samples are then exact.
    exact_values: bool = False


class CategoricalSummary(_Model):
    """Exact category frequencies, most frequent first, capped with an ``__other__`` bucket."""

    values: list[str]
    counts: list[int]
    #: Sum of the counts of the categories beyond the cap (the ``__other__`` bucket).
    other_count: int = 0
    capped: bool = False


class FeatureConstraints(_Model):
    """SageMaker ``constraints.json`` per-feature entries."""

    completeness: float | None = None
    is_non_negative: bool | None = None
    domains: list[str] | None = None
    #: ``monitoringConfigOverrides`` as given (thresholds keyed like ``monitoring_config``).
    overrides: dict[str, Any] | None = None


class DistributionConstraints(_Model):
    """``monitoring_config.distribution_constraints`` (baseline_drift_check settings)."""

    perform_comparison: bool = True
    comparison_threshold: float = 0.1
    comparison_method: ComparisonMethod = "Simple"
    categorical_comparison_threshold: float = 0.1
    categorical_drift_method: CategoricalDriftMethod = "LInfinity"


class MonitoringConfig(_Model):
    """SageMaker ``constraints.json`` ``monitoring_config`` ("Enabled"/"Disabled" as booleans)."""

    evaluate_constraints: bool = True
    emit_metrics: bool = True
    datatype_check_threshold: float = 0.1
    domain_content_threshold: float = 0.1
    distribution_constraints: DistributionConstraints = Field(
        default_factory=DistributionConstraints
    )


class FeatureProfile(_Model):
    name: str
    kind: FeatureKind
    inferred_type: InferredType
    #: Arrow type of the source column (``"sagemaker"`` for imported features).
    dtype: str
    count: int
    missing: int
    completeness: float
    distinct_count: int | None = None
    #: False when no quantiles/categories are known: drift tests cannot run on it
    #: (completeness, type, domain and bound checks still do).
    has_distribution: bool
    numeric: NumericSummary | None = None
    categorical: CategoricalSummary | None = None
    constraints: FeatureConstraints = Field(default_factory=FeatureConstraints)


class RowSample(_Model):
    """A seeded random sample of complete rows over the numerical features: the one place a
    profile keeps rows, for the multivariate MMD test (everything else reads summaries)."""

    features: list[str]
    rows: list[list[float]]


class Profile(_Model):
    version: Literal[1] = 1
    source: Literal["data", "sagemaker"] = "data"
    row_count: int
    features: list[FeatureProfile]
    monitoring_config: MonitoringConfig = Field(default_factory=MonitoringConfig)
    sample: RowSample | None = None
    #: Sorted finite reference values by feature name, for the features whose
    #: ``numeric.exact_values`` is set; kept outside the model's fields because they are
    #: stored apart (Arrow, not JSON) and only the statistics read them.
    _values: _Values = PrivateAttr(default_factory=_Values)

    def feature(self, name: str) -> FeatureProfile | None:
        return self._by_name.get(name)

    def values(self, name: str) -> FloatArray | None:
        """The feature's sorted finite reference values, when they are kept."""
        return self._values.get(name)

    @property
    def all_values(self) -> Mapping[str, FloatArray]:
        return self._values

    def with_values(self, values: Mapping[str, FloatArray]) -> Profile:
        """This profile carrying ``values`` (an empty mapping: carrying none)."""
        copy = self.model_copy()
        copy._values = _Values(values)
        return copy

    @cached_property
    def _by_name(self) -> dict[str, FeatureProfile]:  # per-feature look-ups on wide tables
        return {f.name: f for f in self.features}

    def to_document(self) -> dict[str, Any]:
        """A JSON/BSON-ready dict (store it as a MongoDB document)."""
        return self.model_dump(mode="json")

    @classmethod
    def from_document(cls, document: dict[str, Any]) -> Profile:
        """Inverse of :meth:`to_document`; extra keys such as ``_id`` are ignored."""
        return cls.model_validate({k: v for k, v in document.items() if k != "_id"})


class FeatureBins(_Model):
    """What the client needs to summarize one column (summary mode) without any raw row."""

    name: str
    kind: FeatureKind
    inferred_type: InferredType
    edges: list[float] | None = None
    categories: list[str] | None = None
    domains: list[str] | None = None
    min: float | None = None
    max: float | None = None
    mean: float | None = None
    std: float | None = None


class Bins(_Model):
    version: Literal[1] = 1
    features: list[FeatureBins]
    #: ``|x - mean| / std`` above this counts as an outlier (Flare's default 4).
    outlier_cutoff: float = 4.0
    #: At most this many unseen categories are listed per feature; the rest are summed.
    max_unseen: int = 1000


class FeatureCounts(_Model):
    """A current column summarized on the reference's bins (what summary mode sends)."""

    name: str
    present: bool = True
    count: int = 0
    missing: int = 0
    #: Non-missing values that do not fit the reference's type (e.g. text in a number).
    type_mismatch: int = 0
    #: Histogram counts on ``edges`` (``len(edges) + 1`` cells).
    counts: list[float] | None = None
    #: Counts of the reference ``categories``, in their order.
    category_counts: list[float] | None = None
    unseen_values: list[str] | None = None
    unseen_counts: list[int] | None = None
    unseen_other: int = 0
    out_of_domain: int = 0
    below_min: int = 0
    above_max: int = 0
    negative: int = 0
    outliers: int = 0
    min: float | None = None
    max: float | None = None
    mean: float | None = None
    std: float | None = None


class BatchSummary(_Model):
    row_count: int
    features: list[FeatureCounts]
    #: Columns of the batch the reference does not know.
    extra_columns: list[str] = Field(default_factory=list)

    def feature(self, name: str) -> FeatureCounts | None:
        return self._by_name.get(name)

    @cached_property
    def _by_name(self) -> dict[str, FeatureCounts]:  # per-feature look-ups on wide tables
        return {f.name: f for f in self.features}
