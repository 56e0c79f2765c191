"""Chart data of an experiment (Read permission): run timeline, per-feature history, the
features x runs heatmap and constraint violations over time; JSON, or CSV with
``?format=csv``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Response

from drift_backend.api.deps import CallerDep, DbDep
from drift_backend.api.responses import errors
from drift_backend.auth.permissions import Level
from drift_backend.charts import buckets, csv_export, service
from drift_backend.charts.schemas import FeatureHistory, Heatmap, Timeline, Violations
from drift_backend.errors import ValidationFailed
from drift_backend.experiments.service import get_for
from drift_backend.schemas import utcnow

router = APIRouter(tags=["charts"])
CHARTS = "/experiment/{experiment_id}/charts"

Model = Annotated[
    str | None, Query(min_length=1, max_length=256, description="Only this model's runs.")
]
From = Annotated[
    datetime | None,
    Query(alias="from", description="Window start (ISO 8601; default: 30 days before `to`)."),
]
To = Annotated[
    datetime | None, Query(alias="to", description="Window end, exclusive (default: now).")
]
Buckets = Annotated[
    int,
    Query(
        ge=2,
        le=buckets.MAX_BUCKETS,
        description="At most this many buckets (the chart's width in points).",
    ),
]
Format = Annotated[
    Literal["json", "csv"], Query(description="`csv`: the same numbers as text/csv.")
]
CSV_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/csv": {"schema": {"type": "string"}}}}
}


#: Chartable times: runs exist in no other years, and the bucket arithmetic stays in range.
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(2200, 1, 1, tzinfo=UTC)


def _aware(field: str, value: datetime | None) -> datetime | None:
    if value is None:
        return None
    if value.tzinfo is None:
        raise ValidationFailed(field, "must carry a UTC offset (e.g. 2026-01-01T00:00:00Z)")
    value = value.astimezone(UTC)
    if not EARLIEST <= value < LATEST:
        raise ValidationFailed(field, "must be between 1970-01-01 and 2200-01-01")
    return value


FormatQuery = Annotated[Format, Query(alias="format")]


@dataclass(frozen=True)
class ChartQuery:
    """What a windowed chart (timeline, feature history, violations) is asked for."""

    model: str | None
    window: buckets.Window
    fmt: str


async def get_chart_query(
    model: Model = None,
    start: From = None,
    end: To = None,
    count: Annotated[Buckets, Query(alias="buckets")] = buckets.DEFAULT_BUCKETS,
    fmt: FormatQuery = "json",
) -> ChartQuery:
    """``model``, the window from ``from``/``to``/``buckets`` (422 when unusable), ``format``."""
    window = buckets.window(_aware("from", start), _aware("to", end), count, utcnow())
    return ChartQuery(model, window, fmt)


WindowDep = Annotated[ChartQuery, Depends(get_chart_query)]


def _answer(
    data: dict[str, Any], fmt: str, to_csv: Callable[[dict[str, Any]], str], name: str
) -> Any:
    if fmt == "csv":
        return Response(
            to_csv(data),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
        )
    return data


@router.get(
    CHARTS + "/timeline", response_model=Timeline, responses={**CSV_RESPONSE, **errors(404)}
)
async def timeline(
    experiment_id: str,
    caller: CallerDep,
    db: DbDep,
    query: WindowDep,
) -> Any:
    """Runs per time bucket: drifted, not drifted, failed, running."""
    await get_for(db, experiment_id, caller, Level.Read)
    data = await service.timeline(db, experiment_id, query.model, query.window)
    return _answer(data, query.fmt, csv_export.timeline, "timeline")


@router.get(
    CHARTS + "/features/{feature:path}",
    response_model=FeatureHistory,
    responses={**CSV_RESPONSE, **errors(404)},
)
async def feature_history(
    experiment_id: str,
    feature: str,
    caller: CallerDep,
    db: DbDep,
    query: WindowDep,
) -> Any:
    """One feature's check results per time bucket: smallest p-value (or largest distance)
    against its threshold, and how many checks found it drifted."""
    await get_for(db, experiment_id, caller, Level.Read)
    data = await service.feature_history(db, experiment_id, feature, query.model, query.window)
    return _answer(data, query.fmt, csv_export.feature_history, "feature")


@router.get(CHARTS + "/heatmap", response_model=Heatmap, responses={**CSV_RESPONSE, **errors(404)})
async def heatmap(
    experiment_id: str,
    caller: CallerDep,
    db: DbDep,
    model: Model = None,
    runs: Annotated[int, Query(ge=1, le=200, description="The last N check runs.")] = 50,
    features: Annotated[
        int, Query(ge=1, le=100, description="The M features drifted in most of them.")
    ] = 30,
    fmt: FormatQuery = "json",
) -> Any:
    """The last check runs x the features that drifted most in them: one cell per run and
    feature with its p-value or distance and whether it drifted."""
    await get_for(db, experiment_id, caller, Level.Read)
    data = await service.heatmap(db, experiment_id, model, runs, features, utcnow())
    return _answer(data, fmt, csv_export.heatmap, "heatmap")


@router.get(
    CHARTS + "/violations", response_model=Violations, responses={**CSV_RESPONSE, **errors(404)}
)
async def violations(
    experiment_id: str,
    caller: CallerDep,
    db: DbDep,
    query: WindowDep,
) -> Any:
    """Constraint violations found by check runs per time bucket, by kind."""
    await get_for(db, experiment_id, caller, Level.Read)
    data = await service.violations(db, experiment_id, query.model, query.window)
    return _answer(data, query.fmt, csv_export.violations, "violations")
