"""Checks: queue a current batch against a stored baseline, read the report."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

import pyarrow as pa
from fastapi import APIRouter, Query, Request, status
from fastapi.responses import JSONResponse
from pydantic import AwareDatetime
from pydantic import ValidationError as PydanticValidationError

from drift_backend.api.deps import CallerDep, ContextDep
from drift_backend.api.responses import data_upload, errors
from drift_backend.api.uploads import BatchRejected, read_table
from drift_backend.auth.permissions import Level
from drift_backend.baselines import service as baselines
from drift_backend.baselines.ingest import BatchError, media_type_of
from drift_backend.baselines.model import BatchSummary, Profile
from drift_backend.baselines.summary import bins
from drift_backend.checks import service
from drift_backend.checks.engine import Report
from drift_backend.drifts import service as drifts
from drift_backend.drifts.schemas import Drift, DriftCreate, JobStatus
from drift_backend.drifts.timestamps import reported_time
from drift_backend.errors import NotFound, ValidationFailed, first_problem
from drift_backend.experiments.service import get_for
from drift_backend.settings import Settings

router = APIRouter(tags=["checks"])
#: Summary mode: counts on the baseline's bins instead of rows (``BatchSummary`` JSON).
SUMMARY_MEDIA_TYPE = "application/vnd.drift-monitor.summary+json"
#: A summary-mode body (counts on every bin of every feature) may be this many times
#: ``DRIFT_MAX_BODY_BYTES``.
SUMMARY_BODY_FACTOR = 16
Name = Annotated[str | None, Query(min_length=1, max_length=256)]


async def _read_summary(request: Request, profile: Profile, settings: Settings) -> BatchSummary:
    """A summary-mode body: counts on the baseline's bins, checked against those bins."""
    data = await request.body()
    limit = settings.max_body_bytes * SUMMARY_BODY_FACTOR
    if len(data) > limit:
        raise BatchRejected(BatchError("max_bytes", f"summary body exceeds {limit} bytes", 413))
    try:
        # Up to 16x the body limit of JSON: parsed off the event loop.
        return await asyncio.to_thread(_parse_summary, data, profile)
    except BatchError as error:
        raise BatchRejected(error) from None


def _parse_summary(data: bytes, profile: Profile) -> BatchSummary:
    try:
        summary = BatchSummary.model_validate_json(data)
    except PydanticValidationError as error:
        raise BatchError(*first_problem(error), 422) from None
    expected = {f.name: f for f in bins(profile).features}
    for feature in summary.features:
        reference = expected.get(feature.name)
        if reference is None:
            raise BatchError(f"features.{feature.name}", "not in the baseline", 422)
        if feature.counts is not None and (
            reference.edges is None or len(feature.counts) != len(reference.edges) + 1
        ):
            raise BatchError(
                f"features.{feature.name}.counts",
                "must have len(edges) + 1 counts on the baseline's bins (GET .../bins)",
                422,
            )
        if feature.category_counts is not None and (
            reference.categories is None
            or len(feature.category_counts) != len(reference.categories)
        ):
            raise BatchError(
                f"features.{feature.name}.category_counts",
                "must count the baseline's categories in their order (GET .../bins)",
                422,
            )
        if any(c < 0 for c in (feature.counts or []) + (feature.category_counts or [])):
            raise BatchError(f"features.{feature.name}", "negative count", 422)
    return summary


@router.post(
    "/experiment/{experiment_id}/check",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=Drift,
    responses={
        200: {"model": Drift, "description": "finished within `wait`"},
        **errors(400, 404, 413, 415),
    },
    openapi_extra=data_upload({SUMMARY_MEDIA_TYPE: {"schema": {"type": "object"}}}),
)
async def check(
    experiment_id: str,
    request: Request,
    caller: CallerDep,
    context: ContextDep,
    model: Annotated[str, Query(min_length=1, max_length=256)],
    baseline: Name = None,
    tags: Annotated[list[str] | None, Query(max_length=32)] = None,
    wait: Annotated[float, Query(ge=0)] = 0.0,
    # Percent-encoded (up to 12 bytes a character), 4,096 characters stay under the ~64 KB
    # request line uvicorn parses; a longer one gets a plain-text 400 before the app sees it.
    config: Annotated[str | None, Query(max_length=4_096)] = None,
    created_at: Annotated[
        AwareDatetime | None,
        Query(description="when the check really ran (a client spool replaying it later)"),
    ] = None,
) -> Any:
    """Queue a drift check of the current batch against a stored baseline.

    Answers 202 with the Running drift run; with ``wait`` (seconds, capped by the server),
    answers 200 with the finished run when it finishes in time. ``config`` (JSON) overrides
    the experiment's ``drift_config`` for this check only. ``created_at`` backdates the run
    (within ``DRIFT_MAX_BACKDATE_DAYS``), as ``POST .../drift`` does.
    """
    settings = context.settings
    try:  # the same rules as a run created with POST .../drift
        run_fields = DriftCreate(job_status=JobStatus.Running, model=model, tags=tags or [])
    except PydanticValidationError as error:
        first = error.errors()[0]
        raise ValidationFailed(str(first["loc"][0]), first["msg"]) from None
    reported = None
    if created_at is not None:
        reported = reported_time("created_at", created_at, settings.max_backdate_days)
    experiment = await get_for(context.db, experiment_id, caller, Level.Edit)
    baseline_doc = await baselines.resolve_baseline(
        context.db, experiment, baseline, model, projection={"_id": 1}
    )
    profile = await context.profiles.load(context.db, baseline_doc["_id"])
    if profile is None:
        raise NotFound(f"baseline {baseline_doc['_id']} was deleted")
    check_config = service.check_config(experiment.get("drift_config") or {}, config)
    current: pa.Table | BatchSummary
    if media_type_of(request.headers.get("content-type", "")) == SUMMARY_MEDIA_TYPE:
        current = await _read_summary(request, profile, settings)
    else:
        current = await read_table(request, settings)
    run = await service.submit_check(
        context.db,
        settings,
        experiment_id,
        baseline_id=baseline_doc["_id"],
        profile=profile,
        current=current,
        config=check_config,
        run_fields=run_fields.model_dump(mode="json"),
        created_by=caller.user_id,
        created_at=reported,
    )
    deadline = min(wait, settings.max_check_wait_seconds)
    if deadline > 0:
        current = await drifts.wait_finished(
            context.db, run["_id"], deadline, streams=settings.change_streams
        )
        if current is not None:  # finished: wait_finished returns only then
            return _run_response(current, status.HTTP_200_OK)
    return _run_response(run, status.HTTP_202_ACCEPTED)


def _run_response(run: dict[str, Any], status_code: int) -> JSONResponse:
    return JSONResponse(
        Drift.model_validate(drifts.to_api(run)).model_dump(mode="json"), status_code=status_code
    )


@router.get(
    "/experiment/{experiment_id}/drift/{drift_id}/report",
    response_model=Report,
    responses=errors(404),
)
async def get_report(
    experiment_id: str, drift_id: str, caller: CallerDep, context: ContextDep
) -> dict[str, Any]:
    """The whole report of a finished check (404 while it runs or for runs without one)."""
    await get_for(context.db, experiment_id, caller, Level.Read)
    run = await drifts.get(context.db, experiment_id, drift_id)
    report = await service.get_report(context.db, drift_id)
    if report is None:
        state = "still running" if run["job_status"] == JobStatus.Running else "not a server check"
        raise NotFound(f"no report for drift run {drift_id} ({state})")
    return report
