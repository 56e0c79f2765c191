"""API shapes of baselines: what the baseline routes answer (the OpenAPI document shows them)."""

from __future__ import annotations

from pydantic import BaseModel

from drift_backend.baselines.model import Bins, FeatureKind, InferredType
from drift_backend.baselines.sagemaker_schema import Constraints, Statistics
from drift_backend.performance.schemas import Reference
from drift_backend.schemas import Timestamp

#: ``GET .../statistics.json``: the SageMaker Model Monitor file, as the importer reads it.
StatisticsExport = Statistics
#: ``GET .../constraints.json``.
ConstraintsExport = Constraints

__all__ = [
    "Baseline",
    "BaselineItem",
    "Bins",
    "ConstraintsExport",
    "FeatureSummary",
    "StatisticsExport",
]


class FeatureSummary(BaseModel):
    """One profiled column, in brief (the bulk of its profile stays server-side)."""

    name: str
    kind: FeatureKind
    inferred_type: InferredType
    completeness: float
    count: int
    missing: int
    distinct_count: int | None = None
    min: float | None = None
    max: float | None = None
    mean: float | None = None
    std: float | None = None
    #: How many categories are stored (None for features without category counts).
    categories: int | None = None
    #: Its sorted values are kept whole: tests on whole samples are exact against it.
    exact_values: bool = False


class BaselineItem(BaseModel):
    """A baseline as listed: its metadata, without the per-feature summaries."""

    id: str
    experiment_id: str
    name: str | None = None
    model: str | None = None
    source: str
    row_count: int
    feature_count: int | None = None
    #: Bytes the stored profile takes (JSON profile plus any kept values).
    stored_bytes: int | None = None
    created_at: Timestamp
    created_by: str | None = None


class Baseline(BaselineItem):
    features: list[FeatureSummary]
    #: The model's labelled performance reference, when the
    #: upload named its target and prediction columns (``docs/performance.md``).
    performance_reference: Reference | None = None
