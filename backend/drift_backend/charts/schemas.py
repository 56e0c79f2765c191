"""Response models of the chart routes."""

from __future__ import annotations

from pydantic import BaseModel, Field

from drift_backend.charts.buckets import Unit
from drift_backend.schemas import Timestamp


class Window(BaseModel):
    """The time window charted, ``[start, end)``, and its bucket size."""

    start: Timestamp
    end: Timestamp
    unit: Unit = Field(description="`$dateTrunc` unit of a bucket.")
    bin_size: int = Field(description="Units per bucket; buckets align to 2000-01-01T00:00Z.")


class TimelineBucket(BaseModel):
    start: Timestamp = Field(description="The bucket's start; it ends where the next begins.")
    drifted: int = Field(description="Completed runs that detected drift.")
    not_drifted: int = Field(description="Completed runs that did not.")
    failed: int
    running: int


class Timeline(BaseModel):
    """Runs per bucket by outcome; buckets without runs are left out."""

    window: Window
    buckets: list[TimelineBucket]


class FeatureBucket(BaseModel):
    start: Timestamp
    runs: int = Field(description="Checks that tested the feature in the bucket.")
    drifted: int = Field(description="... of which found it drifted.")
    p_value_min: float | None = Field(description="Smallest p-value (p-value tests).")
    p_value_adjusted_min: float | None = Field(description="Smallest corrected p-value.")
    distance_max: float | None = Field(description="Largest distance (distance tests).")
    threshold: float | None = Field(description="Largest threshold the feature was held to.")


class FeatureHistory(BaseModel):
    """One feature's check results per bucket; buckets without checks are left out."""

    feature: str
    window: Window
    buckets: list[FeatureBucket]


class HeatmapRun(BaseModel):
    run_id: str
    created_at: Timestamp
    model: str
    dataset_drift: bool


class HeatmapFeature(BaseModel):
    feature: str
    drifted_runs: int = Field(description="Runs of the heatmap that found the feature drifted.")


class HeatmapCell(BaseModel):
    run_id: str
    feature: str
    test: str | None
    p_value: float | None
    p_value_adjusted: float | None
    distance: float | None
    drifted: bool


class Heatmap(BaseModel):
    """The last check runs (newest first) x the features drifted in most of them (most
    first, ties by name). A run that did not test a feature has no cell for it."""

    runs: list[HeatmapRun]
    features: list[HeatmapFeature]
    cells: list[HeatmapCell]


class ViolationBucket(BaseModel):
    start: Timestamp
    checks: int = Field(description="Check runs in the bucket.")
    total: int = Field(description="Constraint violations they found.")
    kinds: dict[str, int] = Field(description="Violations by `constraint_check_type`.")


class Violations(BaseModel):
    """Constraint violations of check runs per bucket; buckets without checks are left out."""

    window: Window
    kinds: list[str] = Field(description="Every kind that occurs in the window, sorted.")
    buckets: list[ViolationBucket]
