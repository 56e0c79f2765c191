"""Typed views of the API's JSON objects (plain dataclasses, built with ``from_json``)."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, Literal, TypeVar

__all__ = [
    "Drift",
    "DriftResult",
    "Experiment",
    "JobStatus",
    "Level",
    "Page",
    "Pagination",
    "Permission",
    "RunError",
    "User",
]

JobStatus = Literal["Running", "Completed", "Failed"]
Level = Literal["Read", "Edit", "Manage"]
T = TypeVar("T")


def _time(value: Any) -> datetime:
    return datetime.fromisoformat(str(value))


def _opt_time(value: Any) -> datetime | None:
    return None if value is None else _time(value)


@dataclass(frozen=True)
class User:
    id: str
    created_at: datetime
    updated_at: datetime
    subject: str
    issuer: str
    email: str | None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> User:
        return cls(
            id=str(data["id"]),
            created_at=_time(data["created_at"]),
            updated_at=_time(data["updated_at"]),
            subject=str(data["subject"]),
            issuer=str(data["issuer"]),
            email=data.get("email"),
        )


@dataclass(frozen=True)
class Permission:
    """``entity`` is a user id or an entitlement; ``level`` is Read < Edit < Manage."""

    entity: str
    level: Level

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Permission:
        return cls(entity=str(data["entity"]), level=data["level"])

    def to_json(self) -> dict[str, Any]:
        return {"entity": self.entity, "level": self.level}


@dataclass(frozen=True)
class Experiment:
    id: str
    created_at: datetime
    updated_at: datetime
    name: str
    description: str | None
    public: bool
    permissions: list[Permission]

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Experiment:
        return cls(
            id=str(data["id"]),
            created_at=_time(data["created_at"]),
            updated_at=_time(data["updated_at"]),
            name=str(data["name"]),
            description=data.get("description"),
            public=bool(data.get("public", False)),
            permissions=[Permission.from_json(p) for p in data.get("permissions") or []],
        )


@dataclass(frozen=True)
class DriftResult:
    """What one detector found: ``{drift, parameters}``."""

    drift: bool
    parameters: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> DriftResult:
        return cls(drift=bool(data["drift"]), parameters=dict(data.get("parameters") or {}))

    def to_json(self) -> dict[str, Any]:
        return {"drift": self.drift, "parameters": self.parameters}


@dataclass(frozen=True)
class RunError:
    """Why a run failed: the exception's class name and message."""

    type: str
    message: str = ""

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RunError:
        return cls(type=str(data["type"]), message=str(data.get("message", "")))

    def to_json(self) -> dict[str, Any]:
        return {"type": self.type, "message": self.message}


@dataclass(frozen=True)
class Drift:
    """One drift run of a model within an experiment."""

    id: str
    experiment_id: str
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None
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

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Drift:
        concept, data_drift, error = (
            data.get("concept_drift"),
            data.get("data_drift"),
            data.get("error"),
        )
        return cls(
            id=str(data["id"]),
            experiment_id=str(data["experiment_id"]),
            created_at=_time(data["created_at"]),
            updated_at=_time(data["updated_at"]),
            finished_at=_opt_time(data.get("finished_at")),
            schema_version=str(data.get("schema_version", "")),
            job_status=data["job_status"],
            model=str(data["model"]),
            tags=[str(t) for t in data.get("tags") or []],
            drift_detected=bool(data.get("drift_detected", False)),
            parameters=dict(data.get("parameters") or {}),
            concept_drift=DriftResult.from_json(concept) if concept else None,
            data_drift=DriftResult.from_json(data_drift) if data_drift else None,
            error=RunError.from_json(error) if error else None,
            created_by=data.get("created_by"),
        )


@dataclass(frozen=True)
class Pagination:
    """The ``X-Pagination`` header; page fields are absent when nothing matched."""

    total: int
    total_pages: int
    first_page: int | None = None
    last_page: int | None = None
    page: int | None = None
    previous_page: int | None = None
    next_page: int | None = None

    @classmethod
    def from_header(cls, header: str | None) -> Pagination:
        data: dict[str, Any] = json.loads(header) if header else {}
        return cls(
            total=int(data.get("total", 0)),
            total_pages=int(data.get("total_pages", 0)),
            first_page=data.get("first_page"),
            last_page=data.get("last_page"),
            page=data.get("page"),
            previous_page=data.get("previous_page"),
            next_page=data.get("next_page"),
        )


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of search results."""

    items: list[T]
    pagination: Pagination

    def __iter__(self) -> Iterator[T]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)
