"""Alert rules, silences and alert states as the API reads and writes them."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, Field, StringConstraints, model_validator

from drift_backend.drifts.schemas import Model, Tag
from drift_backend.schemas import RequestModel, Timestamp

#: Flare's alert kinds (``flare.runtime``) and the SageMaker Model Monitor check types a
#: ``violations`` condition may name (``baselines/violations.py`` finds them).
ViolationKind = Literal[
    "Bound",
    "Outlier",
    "Type",
    "Null",
    "Negative",
    "Categorical",
    "data_type_check",
    "completeness_check",
    "categorical_values_check",
    "missing_column_check",
    "extra_column_check",
]

DAY = 24 * 3600.0
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Feature = Annotated[str, StringConstraints(min_length=1, max_length=256)]
Id = Annotated[str, StringConstraints(min_length=1, max_length=64)]


class DatasetDrift(RequestModel):
    """The run found dataset drift (a check's report, else the run's ``data_drift``)."""

    type: Literal["dataset_drift"]


class FeatureDrift(RequestModel):
    """A check found ``feature`` drifted, and (with ``min_effect``) its effect size (else its
    distance) at least that large."""

    type: Literal["feature_drift"]
    feature: Feature
    min_effect: float | None = Field(default=None, ge=0, le=1e6)


class Violations(RequestModel):
    """A check found constraint violations of one of ``kinds`` (empty: of any kind)."""

    type: Literal["violations"]
    kinds: Annotated[list[ViolationKind], Field(max_length=16)] = Field(default_factory=list)


class RunFailed(RequestModel):
    """The run ended Failed (an error reported, a check that failed, or timed out)."""

    type: Literal["run_failed"]


class NoRun(RequestModel):
    """A dead man's switch: no run of the model finished within ``within_seconds``."""

    type: Literal["no_run"]
    within_seconds: float = Field(ge=1, le=90 * DAY)


class PerformanceDegraded(RequestModel):
    """The model's newest decided performance window is degraded on ``metric``
    (null: the model's main one, accuracy or MAE; docs/performance.md)."""

    type: Literal["performance_degraded"]
    metric: Literal["accuracy", "precision", "recall", "mae", "rmse"] | None = None


Condition = Annotated[
    DatasetDrift | FeatureDrift | Violations | RunFailed | NoRun | PerformanceDegraded,
    Field(discriminator="type"),
]
DRIFT_CONDITIONS = frozenset({"dataset_drift", "feature_drift"})


class _RuleFields(RequestModel):
    name: Name
    condition: Condition
    #: Models the rule watches; empty: every model of the experiment.
    models: Annotated[list[Model], Field(max_length=100)] = Field(default_factory=list)
    #: A run is in scope when it carries every one of these tags.
    tags: Annotated[list[Tag], Field(max_length=32)] = Field(default_factory=list)
    for_runs: int = Field(default=1, ge=1, le=100)
    keep_firing_for: float = Field(default=0.0, ge=0, le=7 * DAY)
    group_wait: float = Field(default=30.0, ge=0, le=DAY)
    group_interval: float = Field(default=300.0, ge=0, le=DAY)
    repeat_interval: float = Field(default=4 * 3600.0, ge=1, le=30 * DAY)
    send_resolved: bool = True
    #: The experiment's notification targets to send to; null: all of them.
    targets: Annotated[list[Id], Field(max_length=50)] | None = None

    @model_validator(mode="after")
    def _consistent(self) -> _RuleFields:
        if self.condition.type == "no_run" and self.for_runs != 1:
            raise ValueError("for_runs: a no_run condition has no runs to count; leave it at 1")
        self.models = list(dict.fromkeys(self.models))
        self.tags = list(dict.fromkeys(self.tags))
        return self


class RuleCreate(_RuleFields):
    """POST and PUT: the whole rule."""


class RulePatch(RequestModel):
    """PATCH: the fields given replace the rule's (``condition`` as a whole)."""

    name: Name | None = None
    condition: Condition | None = None
    models: Annotated[list[Model], Field(max_length=100)] | None = None
    tags: Annotated[list[Tag], Field(max_length=32)] | None = None
    for_runs: int | None = Field(default=None, ge=1, le=100)
    keep_firing_for: float | None = Field(default=None, ge=0, le=7 * DAY)
    group_wait: float | None = Field(default=None, ge=0, le=DAY)
    group_interval: float | None = Field(default=None, ge=0, le=DAY)
    repeat_interval: float | None = Field(default=None, ge=1, le=30 * DAY)
    send_resolved: bool | None = None
    targets: Annotated[list[Id], Field(max_length=50)] | None = None


class Rule(BaseModel):
    id: str
    experiment_id: str
    name: str
    condition: Condition
    models: list[str]
    tags: list[str]
    for_runs: int
    keep_firing_for: float
    group_wait: float
    group_interval: float
    repeat_interval: float
    send_resolved: bool
    targets: list[str] | None
    created_at: Timestamp
    updated_at: Timestamp
    created_by: str | None = None


class SilenceCreate(RequestModel):
    """Matches the groups of ``rule_id`` and/or ``model`` (at least one) until ``ends_at``."""

    rule_id: Id | None = None
    model: Model | None = None
    ends_at: AwareDatetime
    comment: Annotated[str, StringConstraints(max_length=1000)] | None = None

    @model_validator(mode="after")
    def _has_matcher(self) -> SilenceCreate:
        if self.rule_id is None and self.model is None:
            raise ValueError("give rule_id, model or both: a silence matches on them")
        return self


class Silence(BaseModel):
    id: str
    experiment_id: str
    rule_id: str | None
    model: str | None
    starts_at: Timestamp
    ends_at: Timestamp
    comment: str | None
    state: Literal["active", "expired"]
    created_by: str | None = None


class AlertFeature(BaseModel):
    name: str
    kind: str


class Alert(BaseModel):
    """One (rule, model) group that is not inactive."""

    rule_id: str
    rule_name: str
    condition: str
    model: str
    state: Literal["pending", "firing", "resolved"]
    #: Runs in a row on which the condition held (pending: of ``for_runs``).
    streak: int
    active_at: Timestamp | None
    resolved_at: Timestamp | None
    last_notified_at: Timestamp | None
    #: ``silenced`` or ``inhibited`` when a notification is being held back.
    muted: str | None
    summary: str | None
    run_id: str | None
    features: list[AlertFeature]
    values: dict[str, float]


def rule_out(doc: dict[str, Any]) -> dict[str, Any]:
    return {"id": doc["_id"], **{k: v for k, v in doc.items() if k != "_id"}}
