from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

from pydantic import AfterValidator, AwareDatetime, BaseModel, Field, StringConstraints

from drift_backend.schemas import LenientRequestModel, RequestModel, Timestamp

SCHEMA_VERSION = "1.0.0"
MAX_PARAMETER_DEPTH = 16
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


class JobStatus(StrEnum):
    Running = "Running"
    Completed = "Completed"
    Failed = "Failed"

    @property
    def terminal(self) -> bool:
        return self is not JobStatus.Running


def _safe_keys(value: Any, depth: int = 0) -> Any:
    """MongoDB cannot store keys starting with '$'; deep nesting is refused too."""
    if depth > MAX_PARAMETER_DEPTH:
        raise ValueError(f"nested deeper than {MAX_PARAMETER_DEPTH} levels")
    if isinstance(value, dict):
        for key, item in value.items():
            if key.startswith("$") or "\x00" in key:
                raise ValueError(f"key {key!r} may not start with '$' or contain NUL")
            _safe_keys(item, depth + 1)
    elif isinstance(value, list):
        for item in value:
            _safe_keys(item, depth + 1)
    elif isinstance(value, int) and not INT64_MIN <= value <= INT64_MAX:
        raise ValueError("integers must fit in 64 bits (MongoDB stores no larger ones)")
    return value


Parameters = Annotated[dict[str, Any], AfterValidator(_safe_keys)]
Tag = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
Model = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=256)]


class DriftResult(BaseModel):
    """What one detector found: drift-watch's ``{drift, parameters}``."""

    drift: bool
    parameters: Parameters = Field(default_factory=dict)


class RunError(BaseModel):
    type: Annotated[str, StringConstraints(min_length=1, max_length=256)]
    message: Annotated[str, StringConstraints(max_length=8192)] = ""


class _DriftBody(LenientRequestModel):
    job_status: JobStatus = JobStatus.Running
    model: Model
    tags: Annotated[list[Tag], Field(max_length=32)] = Field(default_factory=list)
    drift_detected: bool = False
    parameters: Parameters = Field(default_factory=dict)
    concept_drift: DriftResult | None = None
    data_drift: DriftResult | None = None
    error: RunError | None = None


class DriftCreate(_DriftBody):
    #: When the run really started, for runs reported late (a client spool); default: now.
    created_at: AwareDatetime | None = None


class DriftReplace(_DriftBody):
    """PUT: full replace of the client-owned fields (drift-watch semantics)."""

    job_status: JobStatus
    #: When a finishing run really finished (Completed or Failed only); default: now.
    finished_at: AwareDatetime | None = None


class Heartbeat(RequestModel):
    pass


class Drift(BaseModel):
    id: str
    experiment_id: str
    created_at: Timestamp
    updated_at: Timestamp
    finished_at: Timestamp | None
    schema_version: str
    job_status: JobStatus
    model: str
    tags: list[str]
    drift_detected: bool
    parameters: dict[str, Any]
    concept_drift: DriftResult | None
    data_drift: DriftResult | None
    error: RunError | None
    created_by: str | None
    has_predictions: bool = Field(
        default=False,
        description="Whether predictions were recorded with this run (`POST .../predictions"
        "?run=`): then `GET .../drift/{id}/performance` has its metrics.",
    )


class DriftPage(BaseModel):
    """A keyset page of runs, newest first, without a count of all that match."""

    items: list[Drift]
    next: str | None = Field(description="`after` for the next (older) page; null on the last.")
    previous: str | None = Field(
        description="`before` for the previous (newer) page; null on the newest."
    )


# The last run per experiment (GET /drift/latest; the dashboard's experiments list) --------
class LatestRun(BaseModel):
    experiment_id: str
    #: None when the experiment has no runs yet.
    run: Drift | None


class LatestRuns(BaseModel):
    """One item per experiment asked about that the caller may read, in the order asked;
    the others (unknown, or not readable) are left out."""

    items: list[LatestRun]
