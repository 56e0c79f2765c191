"""API answers of the performance routes."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field, SerializerFunctionWrapHandler, model_serializer

from drift_backend.performance.batches import Task
from drift_backend.performance.windows import Window
from drift_backend.schemas import Timestamp


class MetricValue(BaseModel):
    value: float | None = Field(description="null when it cannot be computed (see reason)")
    reason: str | None = None
    bound: float | None = Field(
        default=None, description="an approximation's largest distance from the exact value"
    )


class PredictionsRecorded(BaseModel):
    received: int
    recorded: int
    duplicates: int = Field(
        description="ids recorded by an earlier batch: the first prediction of an id is kept"
    )
    task: Task
    classes: list[str]


class LabelsRecorded(BaseModel):
    received: int
    labelled: int = Field(description="predictions labelled for the first time")
    changed: int = Field(description="labels replaced by a different one")
    unchanged: int = Field(description="labels sent again with the same value")
    unknown: int = Field(description="ids never predicted (or expired): counted, not stored")
    unknown_ids: list[str] = Field(description="the first few unknown ids")


class ConfusionMatrix(BaseModel):
    labels: list[str]
    matrix: list[list[int]] = Field(description="rows: true class, columns: predicted class")


class LabelLag(BaseModel):
    mean_seconds: float | None
    max_seconds: float | None


class Reference(BaseModel):
    n: int
    created_at: Timestamp
    metrics: dict[str, MetricValue]
    confusion_matrix: ConfusionMatrix | None = None


class Decision(BaseModel):
    degraded: bool | None = Field(
        description="below the reference by more than the tolerance, with statistical support"
    )
    metric: str
    p_value: float | None = None
    reason: str | None = Field(default=None, description="why there is no decision")
    value: float | None = Field(default=None, description="the window's metric")
    reference: float | None = Field(default=None, description="the reference's metric")
    threshold: float | None = Field(
        default=None, description="the tolerated level the window is tested against"
    )


class Estimate(BaseModel):
    value: float | None
    low: float | None = Field(description="95 % band")
    high: float | None
    reason: str | None = None


class Estimated(BaseModel):
    """Estimated before labels (CBPE), for classification models with probabilities: binary
    ones get ``precision``, ``recall``, ``f1`` (of the positive class), multiclass ones the
    ``*_macro`` averages; both ``accuracy`` and ``roc_auc``. A metric that does not apply
    to the model is left out of the answer (not null), so a client can list the keys."""

    accuracy: Estimate
    precision: Estimate | None = None
    recall: Estimate | None = None
    f1: Estimate | None = None
    precision_macro: Estimate | None = None
    recall_macro: Estimate | None = None
    f1_macro: Estimate | None = None
    roc_auc: Estimate | None = None
    calibrated: bool = Field(description="the reference's isotonic calibration was applied")

    @model_serializer(mode="wrap")
    def _without_absent(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        dumped: dict[str, Any] = handler(self)
        return {key: value for key, value in dumped.items() if value is not None}


class Measured(BaseModel):
    """What the sums of a window's (or a drift run's) predictions say."""

    n_predicted: int
    n_labelled: int
    coverage: float | None = Field(description="labelled / predicted")
    complete: bool = Field(description="coverage reaches DRIFT_PERFORMANCE_MIN_COVERAGE")
    label_lag: LabelLag
    metrics: dict[str, MetricValue]
    confusion_matrix: ConfusionMatrix | None = None
    decision: Decision = Field(description="the main decision: accuracy, or MAE (regression)")
    decisions: dict[str, Decision] = Field(
        default_factory=dict,
        description="every metric decided on: accuracy, precision, recall (binary); mae, rmse",
    )
    estimated: Estimated | None = None


class PerformanceWindow(Measured):
    start: Timestamp
    end: Timestamp


class PerformanceRun(Measured):
    """The predictions recorded with one drift run (``POST .../predictions?run=``)."""

    run_id: str
    run_created_at: Timestamp


class PerformanceOfModel(BaseModel):
    experiment_id: str
    model: str
    task: Task
    classes: list[str]
    min_coverage: float
    reference: Reference | None


class PerformanceRuns(PerformanceOfModel):
    """A keyset page of the model's runs with predictions, without a count of them all."""

    runs: list[PerformanceRun] = Field(description="newest run first")
    next: str | None = Field(description="`after` for the next (older) page; null on the last.")
    previous: str | None = Field(
        description="`before` for the previous (newer) page; null on the newest."
    )


class RunPerformance(PerformanceOfModel):
    run: PerformanceRun


class Performance(BaseModel):
    experiment_id: str
    model: str
    task: Task
    classes: list[str]
    window: Window
    start: Timestamp
    end: Timestamp
    min_coverage: float
    reference: Reference | None
    windows: list[PerformanceWindow] = Field(description="windows with predictions, in order")


class PerformanceModel(BaseModel):
    model: str
    task: Task
    classes: list[str] = Field(description="probability classes, in the model's order")
    reference: bool = Field(description="a labelled reference was uploaded")
    created_at: Timestamp


class PerformanceModels(BaseModel):
    items: list[PerformanceModel] = Field(description="by model name")
