from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from drift_backend.auth.permissions import Level
from drift_backend.checks.config import DriftConfig
from drift_backend.schemas import LenientRequestModel, RequestModel, Timestamp

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=128)]
Description = Annotated[str, StringConstraints(max_length=4096)]
Entity = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=512)]


class Permission(BaseModel):
    """Exactly ``{entity, level}``: drift-monitor 1.1.1 rejects any other key here."""

    model_config = ConfigDict(extra="forbid")
    entity: Entity
    level: Level


Permissions = Annotated[list[Permission], Field(max_length=256)]


class ExperimentCreate(LenientRequestModel):
    name: Name
    description: Description | None = None
    public: bool = False
    permissions: Permissions = Field(default_factory=list)


class ExperimentReplace(LenientRequestModel):
    """PUT: full replace, as in drift-watch (server fields echoed back are ignored)."""

    name: Name
    description: Description | None = None
    public: bool = False
    permissions: Permissions = Field(default_factory=list)


class DefaultBaseline(BaseModel):
    model_config = ConfigDict(extra="forbid")
    model: Annotated[str, StringConstraints(min_length=1, max_length=256)]
    baseline_id: Annotated[str, StringConstraints(min_length=1, max_length=64)]


class MetricsSettings(BaseModel):
    """What ``/metrics`` shows of the experiment (docs/metrics.md)."""

    model_config = ConfigDict(extra="forbid")
    #: Per-feature series (p-value, distance, drifted per feature and model); off bounds
    #: the series of a wide experiment to its per-model ones.
    features: bool = True


class ExperimentPatch(RequestModel):
    name: Name | None = None
    description: Description | None = None
    public: bool | None = None
    permissions: Permissions | None = None
    #: How server-side checks decide (tests, thresholds, correction); see docs/statistics.md.
    drift_config: DriftConfig | None = None
    #: The baseline each model's checks use when a check names none.
    default_baselines: Annotated[list[DefaultBaseline], Field(max_length=1000)] | None = None
    #: What /metrics shows of this experiment (``{"features": false}`` drops its per-feature
    #: series).
    metrics: MetricsSettings | None = None


class Experiment(BaseModel):
    id: str
    created_at: Timestamp
    updated_at: Timestamp
    name: str
    description: str | None
    public: bool
    permissions: list[Permission]
    drift_config: DriftConfig
    default_baselines: list[DefaultBaseline]
    metrics: MetricsSettings = Field(default_factory=MetricsSettings)


class PermissionGrant(RequestModel):
    """Grant or change a level: name a user id or entitlement (``entity``) or a user's email."""

    entity: Entity | None = None
    email: Annotated[str, StringConstraints(min_length=3, max_length=320)] | None = None
    level: Level

    @model_validator(mode="after")
    def _one_target(self) -> PermissionGrant:
        if (self.entity is None) == (self.email is None):
            raise ValueError("give exactly one of 'entity' and 'email'")
        return self
