"""Typed views of the API's JSON objects (plain dataclasses, built with ``from_json``)."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, Literal, TypeVar

__all__ = [
    "Baseline",
    "BaselineFeature",
    "Bins",
    "DefaultBaseline",
    "Drift",
    "DriftResult",
    "Experiment",
    "FeatureBins",
    "FeatureResult",
    "Histogram",
    "JobStatus",
    "Level",
    "Page",
    "Pagination",
    "Permission",
    "Report",
    "RunError",
    "User",
    "Violation",
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
class DefaultBaseline:
    """The baseline a model's checks use when a check names none."""

    model: str
    baseline_id: str

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> DefaultBaseline:
        return cls(model=str(data["model"]), baseline_id=str(data["baseline_id"]))

    def to_json(self) -> dict[str, Any]:
        return {"model": self.model, "baseline_id": self.baseline_id}


@dataclass(frozen=True)
class Experiment:
    id: str
    created_at: datetime
    updated_at: datetime
    name: str
    description: str | None
    public: bool
    permissions: list[Permission]
    #: How server-side checks decide (``numerical_test``, ``alpha``, ...); ``{}`` on v1 servers.
    drift_config: dict[str, Any] = field(default_factory=dict)
    default_baselines: list[DefaultBaseline] = field(default_factory=list)

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
            drift_config=dict(data.get("drift_config") or {}),
            default_baselines=[
                DefaultBaseline.from_json(d) for d in data.get("default_baselines") or []
            ],
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
    #: Whether predictions were recorded with this run (``Client.run_performance`` has
    #: its metrics); False from servers that do not say.
    has_predictions: bool = False

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
            has_predictions=bool(data.get("has_predictions", False)),
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


# Server-side checks ---------------------------------------------------------------------------
def _opt_float(value: Any) -> float | None:
    return None if value is None else float(value)


def _opt_int(value: Any) -> int | None:
    return None if value is None else int(value)


def _opt_floats(value: Any) -> list[float] | None:
    return None if value is None else [float(v) for v in value]


def _opt_strs(value: Any) -> list[str] | None:
    return None if value is None else [str(v) for v in value]


@dataclass(frozen=True)
class BaselineFeature:
    """One column of a stored baseline, as profiled by the server."""

    name: str
    kind: str
    inferred_type: str
    completeness: float
    count: int
    missing: int
    distinct_count: int | None = None
    min: float | None = None
    max: float | None = None
    mean: float | None = None
    std: float | None = None
    #: How many categories are stored (None for features without categories).
    categories: int | None = None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> BaselineFeature:
        return cls(
            name=str(data["name"]),
            kind=str(data["kind"]),
            inferred_type=str(data["inferred_type"]),
            completeness=float(data["completeness"]),
            count=int(data["count"]),
            missing=int(data["missing"]),
            distinct_count=_opt_int(data.get("distinct_count")),
            min=_opt_float(data.get("min")),
            max=_opt_float(data.get("max")),
            mean=_opt_float(data.get("mean")),
            std=_opt_float(data.get("std")),
            categories=_opt_int(data.get("categories")),
        )


@dataclass(frozen=True)
class Baseline:
    """Reference data profiled and stored by the server (immutable)."""

    id: str
    experiment_id: str
    name: str | None
    model: str | None
    source: str
    row_count: int
    created_at: datetime
    created_by: str | None
    #: Per-feature summary; empty in listings.
    features: list[BaselineFeature] = field(default_factory=list)
    #: The labelled performance reference stored from the same upload (``target=`` and
    #: ``prediction=`` given): ``{n, created_at, metrics, confusion_matrix}``; else None.
    performance_reference: dict[str, Any] | None = None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Baseline:
        return cls(
            id=str(data["id"]),
            experiment_id=str(data["experiment_id"]),
            name=data.get("name"),
            model=data.get("model"),
            source=str(data.get("source", "data")),
            row_count=int(data["row_count"]),
            created_at=_time(data["created_at"]),
            created_by=data.get("created_by"),
            features=[BaselineFeature.from_json(f) for f in data.get("features") or []],
            performance_reference=data.get("performance_reference"),
        )


@dataclass(frozen=True)
class FeatureBins:
    """What summary mode needs to count one column on the reference's frozen bins."""

    name: str
    kind: str
    inferred_type: str
    edges: list[float] | None = None
    categories: list[str] | None = None
    domains: list[str] | None = None
    min: float | None = None
    max: float | None = None
    mean: float | None = None
    std: float | None = None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> FeatureBins:
        return cls(
            name=str(data["name"]),
            kind=str(data["kind"]),
            inferred_type=str(data["inferred_type"]),
            edges=_opt_floats(data.get("edges")),
            categories=_opt_strs(data.get("categories")),
            domains=_opt_strs(data.get("domains")),
            min=_opt_float(data.get("min")),
            max=_opt_float(data.get("max")),
            mean=_opt_float(data.get("mean")),
            std=_opt_float(data.get("std")),
        )


@dataclass(frozen=True)
class Bins:
    """A baseline's frozen histogram edges and categories (``GET .../bins``)."""

    features: list[FeatureBins]
    outlier_cutoff: float = 4.0
    max_unseen: int = 1000
    version: int = 1

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Bins:
        return cls(
            features=[FeatureBins.from_json(f) for f in data.get("features") or []],
            outlier_cutoff=float(data.get("outlier_cutoff", 4.0)),
            max_unseen=int(data.get("max_unseen", 1000)),
            version=int(data.get("version", 1)),
        )


@dataclass(frozen=True)
class Histogram:
    """Reference and current counts on the same cells (``edges`` or ``categories``)."""

    reference: list[float]
    current: list[float]
    edges: list[float] | None = None
    categories: list[str] | None = None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Histogram:
        return cls(
            reference=[float(v) for v in data.get("reference") or []],
            current=[float(v) for v in data.get("current") or []],
            edges=_opt_floats(data.get("edges")),
            categories=_opt_strs(data.get("categories")),
        )


@dataclass(frozen=True)
class FeatureResult:
    """One feature of a check report: the test, its outcome and the histograms."""

    feature: str
    kind: str
    test: str | None
    drifted: bool
    n_reference: int
    n_current: int
    missing_share: float
    statistic: float | None = None
    p_value: float | None = None
    p_value_adjusted: float | None = None
    distance: float | None = None
    threshold: float | None = None
    effect_size: float | None = None
    histogram: Histogram | None = None
    #: Why the feature could not be tested (then ``test`` is None and ``drifted`` False).
    untestable: str | None = None
    #: The result is exactly what the test gives on the two samples (no quantile grid
    #: stood in); None from servers that do not say.
    exact: bool | None = None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> FeatureResult:
        histogram = data.get("histogram")
        return cls(
            feature=str(data["feature"]),
            kind=str(data["kind"]),
            test=data.get("test"),
            drifted=bool(data.get("drifted", False)),
            n_reference=int(data.get("n_reference", 0)),
            n_current=int(data.get("n_current", 0)),
            missing_share=float(data.get("missing_share", 0.0)),
            statistic=_opt_float(data.get("statistic")),
            p_value=_opt_float(data.get("p_value")),
            p_value_adjusted=_opt_float(data.get("p_value_adjusted")),
            distance=_opt_float(data.get("distance")),
            threshold=_opt_float(data.get("threshold")),
            effect_size=_opt_float(data.get("effect_size")),
            histogram=Histogram.from_json(histogram) if histogram else None,
            untestable=data.get("untestable"),
            exact=None if data.get("exact") is None else bool(data["exact"]),
        )


@dataclass(frozen=True)
class Violation:
    """A broken constraint (SageMaker ``constraint_check_type`` or a Flare bound/outlier kind)."""

    feature_name: str
    constraint_check_type: str
    description: str
    kind: str | None = None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Violation:
        return cls(
            feature_name=str(data.get("feature_name", "")),
            constraint_check_type=str(data.get("constraint_check_type", "")),
            description=str(data.get("description", "")),
            kind=data.get("kind"),
        )


@dataclass(frozen=True)
class Report:
    """The whole result of a server-side check (``GET .../drift/{id}/report``)."""

    dataset_drift: bool
    drift_share: float
    drifted_features: list[str]
    n_tested: int
    correction: str
    alpha: float
    features: list[FeatureResult]
    violations: list[Violation] = field(default_factory=list)
    #: The check's drift run, when the report was fetched through it.
    drift: Drift | None = None
    #: ``raw`` (rows were sent) or ``summary`` (only counts were).
    mode: str = "raw"
    #: The multivariate MMD result when the experiment's ``drift_config`` turns it on:
    #: ``test``, ``features``, ``statistic``, ``p_value``, ``drifted``, ... or ``untestable``.
    multivariate: dict[str, Any] | None = None
    #: Prediction drift, when ``drift_config.prediction`` names the prediction column: that
    #: column's result, tested on its own (not among ``features``).
    prediction: FeatureResult | None = None

    @classmethod
    def from_json(cls, data: Mapping[str, Any], drift: Drift | None = None) -> Report:
        multivariate = data.get("multivariate")
        prediction = data.get("prediction")
        return cls(
            mode=str(data.get("mode", "raw")),
            multivariate=dict(multivariate) if isinstance(multivariate, Mapping) else None,
            prediction=(
                FeatureResult.from_json(prediction) if isinstance(prediction, Mapping) else None
            ),
            dataset_drift=bool(data["dataset_drift"]),
            drift_share=float(data.get("drift_share", 0.0)),
            drifted_features=[str(f) for f in data.get("drifted_features") or []],
            n_tested=int(data.get("n_tested", 0)),
            correction=str(data.get("correction", "")),
            alpha=float(data.get("alpha", 0.0)),
            features=[FeatureResult.from_json(f) for f in data.get("features") or []],
            violations=[Violation.from_json(v) for v in data.get("violations") or []],
            drift=drift,
        )

    def feature(self, name: str) -> FeatureResult:
        """The result for feature ``name`` (``KeyError`` if the report has none)."""
        for result in self.features:
            if result.feature == name:
                return result
        raise KeyError(name)
