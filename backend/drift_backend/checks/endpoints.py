"""Baselines (upload, list, export) and checks (queue a batch, read the report)."""

from __future__ import annotations

import asyncio
import json
from typing import Annotated, Any

import pyarrow as pa
from fastapi import APIRouter, Query, Request, Response, status
from fastapi.responses import JSONResponse
from pydantic import ValidationError as PydanticValidationError

from drift_backend.api.deps import Caller, CallerDep, ContextDep
from drift_backend.api.responses import SAGEMAKER_PARTS, data_upload, errors
from drift_backend.auth.permissions import Level
from drift_backend.baselines.ingest import (
    BatchError,
    Limits,
    arrow_stream,
    media_type_of,
    parse_batch,
)
from drift_backend.baselines.model import BatchSummary, Profile
from drift_backend.baselines.profile import build_profile
from drift_backend.baselines.sagemaker import (
    export_constraints,
    export_statistics,
    import_sagemaker,
)
from drift_backend.baselines.summary import bins
from drift_backend.checks import jobs, reduce, service
from drift_backend.checks.config import DriftConfig
from drift_backend.context import AppContext
from drift_backend.drifts import service as drifts
from drift_backend.drifts.schemas import Drift, DriftCreate, JobStatus
from drift_backend.errors import APIError, NotFound, ValidationFailed, first_problem
from drift_backend.experiments.service import get_for
from drift_backend.settings import Settings
from drift_backend.store.changes import wait_for_document
from drift_backend.worker.queue import JobQueue

router = APIRouter(tags=["checks"])
#: Summary mode: counts on the baseline's bins instead of rows (``BatchSummary`` JSON).
SUMMARY_MEDIA_TYPE = "application/vnd.drift-monitor.summary+json"
#: A summary-mode body (counts on every bin of every feature) may be this many times
#: ``DRIFT_MAX_BODY_BYTES``.
SUMMARY_BODY_FACTOR = 16
Name = Annotated[str | None, Query(min_length=1, max_length=256)]


def _limits(settings: Settings) -> Limits:
    return Limits(
        max_rows=settings.max_batch_rows,
        max_columns=settings.max_batch_columns,
        max_bytes=settings.max_upload_bytes,
    )


class BatchRejected(APIError):
    def __init__(self, error: BatchError) -> None:
        super().__init__(
            f"{error.field}: {error.reason}",
            errors=[{"field": error.field, "reason": error.reason}],
        )
        self.status = error.status
        self.code = {413: "payload_too_large", 415: "unsupported_media_type"}.get(
            error.status, "validation_error"
        )


async def _body(request: Request) -> bytes | bytearray:
    """The request body. With a Content-Length it is read straight into one buffer of that
    size: one copy of a large upload fewer than ``Request.body`` makes (a third less time
    for 44 MB here)."""
    try:
        length = int(request.headers.get("content-length", ""))
    except ValueError:
        length = 0
    if length <= 0:
        return await request.body()
    buffer = bytearray(length)
    view = memoryview(buffer)
    end = 0
    async for chunk in request.stream():
        start, end = end, end + len(chunk)
        if end > length:  # the server frames the body by its length: cannot happen
            raise BatchRejected(BatchError("content-length", "body longer than declared", 400))
        view[start:end] = chunk
    view.release()
    del buffer[end:]  # a shorter body ends in ClientDisconnect first; kept exact anyway
    return buffer


async def _read_table(request: Request, settings: Settings) -> pa.Table:
    data = await _body(request)
    content_type = request.headers.get("content-type", "")
    try:
        return await asyncio.to_thread(parse_batch, data, content_type, _limits(settings))
    except BatchError as error:
        raise BatchRejected(error) from None


async def _read_summary(request: Request, profile: Profile, settings: Settings) -> BatchSummary:
    """A summary-mode body: counts on the baseline's bins, checked against those bins."""
    data = await request.body()
    limit = settings.max_body_bytes * SUMMARY_BODY_FACTOR
    if len(data) > limit:
        raise BatchRejected(BatchError("max_bytes", f"summary body exceeds {limit} bytes", 413))
    try:
        summary = BatchSummary.model_validate_json(data)
    except PydanticValidationError as error:
        raise BatchRejected(BatchError(*first_problem(error), 422)) from None
    expected = {f.name: f for f in bins(profile).features}
    for feature in summary.features:
        reference = expected.get(feature.name)
        if reference is None:
            raise BatchRejected(BatchError(f"features.{feature.name}", "not in the baseline", 422))
        if feature.counts is not None and (
            reference.edges is None or len(feature.counts) != len(reference.edges) + 1
        ):
            raise BatchRejected(
                BatchError(
                    f"features.{feature.name}.counts",
                    "must have len(edges) + 1 counts on the baseline's bins (GET .../bins)",
                    422,
                )
            )
        if feature.category_counts is not None and (
            reference.categories is None
            or len(feature.category_counts) != len(reference.categories)
        ):
            raise BatchRejected(
                BatchError(
                    f"features.{feature.name}.category_counts",
                    "must count the baseline's categories in their order (GET .../bins)",
                    422,
                )
            )
        if any(c < 0 for c in (feature.counts or []) + (feature.category_counts or [])):
            raise BatchRejected(BatchError(f"features.{feature.name}", "negative count", 422))
    return summary


async def _read_sagemaker(request: Request, settings: Settings) -> Profile:
    """``multipart/form-data`` with SageMaker Model Monitor / Flare ``statistics`` and
    (optionally) ``constraints`` JSON parts."""
    async with request.form(
        max_files=2, max_fields=4, max_part_size=settings.max_upload_bytes
    ) as form:
        parts: dict[str, bytes] = {}
        for key in ("statistics", "constraints"):
            part = form.get(key)
            if part is None:
                continue
            parts[key] = part.encode() if isinstance(part, str) else await part.read()
        unknown = sorted(set(form.keys()) - {"statistics", "constraints"})
    if unknown:
        raise BatchRejected(
            BatchError(unknown[0], "unknown part; send statistics and constraints", 422)
        )
    if "statistics" not in parts:
        raise BatchRejected(BatchError("statistics", "the statistics.json part is required", 422))
    try:
        return await asyncio.to_thread(
            import_sagemaker, parts["statistics"], parts.get("constraints")
        )
    except BatchError as error:
        raise BatchRejected(error) from None


@router.post(
    "/experiment/{experiment_id}/baseline",
    status_code=status.HTTP_201_CREATED,
    responses=errors(400, 404, 413, 415),
    openapi_extra=data_upload(SAGEMAKER_PARTS),
)
async def create_baseline(
    experiment_id: str,
    request: Request,
    caller: CallerDep,
    context: ContextDep,
    name: Name = None,
    model: Name = None,
) -> dict[str, Any]:
    """Profile reference data (Arrow IPC stream, Parquet, CSV or ``{"columns": {...}}``)
    once; checks then cost O(current batch). Baselines are immutable."""
    await get_for(context.db, experiment_id, caller, Level.Edit)
    if media_type_of(request.headers.get("content-type", "")) == "multipart/form-data":
        profile = await _read_sagemaker(request, context.settings)
    else:
        table = await _read_table(request, context.settings)
        profile = await asyncio.to_thread(build_profile, table)
    doc = await service.store_baseline(
        context.db, experiment_id, profile, name=name, model=model, created_by=caller.user_id
    )
    context.profiles.put(doc["_id"], profile)  # the first check against it is the next call
    return service.baseline_to_api(doc)


@router.get("/experiment/{experiment_id}/baseline", responses=errors(404))
async def list_baselines(
    experiment_id: str, caller: CallerDep, context: ContextDep
) -> list[dict[str, Any]]:
    await get_for(context.db, experiment_id, caller, Level.Read)
    docs = await service.list_baselines(context.db, experiment_id)
    return [service.baseline_to_api(doc, with_features=False) for doc in docs]


@router.get("/experiment/{experiment_id}/baseline/{baseline_id}", responses=errors(404))
async def get_baseline(
    experiment_id: str, baseline_id: str, caller: CallerDep, context: ContextDep
) -> dict[str, Any]:
    await get_for(context.db, experiment_id, caller, Level.Read)
    return service.baseline_to_api(
        await service.get_baseline(context.db, experiment_id, baseline_id)
    )


async def _stored_profile(
    context: AppContext, caller: Caller, experiment_id: str, baseline_id: str
) -> Profile:
    """A readable baseline's profile, through the profile cache."""
    await get_for(context.db, experiment_id, caller, Level.Read)
    await service.get_baseline(context.db, experiment_id, baseline_id, {"_id": 1})
    profile = await context.profiles.load(context.db, baseline_id)
    if profile is None:
        raise NotFound(f"baseline {baseline_id} not found in experiment {experiment_id}")
    return profile


@router.get("/experiment/{experiment_id}/baseline/{baseline_id}/bins", responses=errors(404))
async def get_bins(
    experiment_id: str, baseline_id: str, caller: CallerDep, context: ContextDep
) -> dict[str, Any]:
    """The frozen edges and categories summary mode counts on (no reference rows)."""
    profile = await _stored_profile(context, caller, experiment_id, baseline_id)
    return bins(profile).model_dump(mode="json")


@router.get(
    "/experiment/{experiment_id}/baseline/{baseline_id}/statistics.json",
    responses=errors(404),
)
async def export_statistics_json(
    experiment_id: str, baseline_id: str, caller: CallerDep, context: ContextDep
) -> dict[str, Any]:
    """The baseline as a SageMaker Model Monitor ``statistics.json`` (KLL sketch included)."""
    return export_statistics(await _stored_profile(context, caller, experiment_id, baseline_id))


@router.get(
    "/experiment/{experiment_id}/baseline/{baseline_id}/constraints.json",
    responses=errors(404),
)
async def export_constraints_json(
    experiment_id: str, baseline_id: str, caller: CallerDep, context: ContextDep
) -> dict[str, Any]:
    """The baseline's SageMaker ``constraints.json`` (completeness, domains, monitoring config)."""
    return export_constraints(await _stored_profile(context, caller, experiment_id, baseline_id))


@router.delete(
    "/experiment/{experiment_id}/baseline/{baseline_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=errors(404),
)
async def delete_baseline(
    experiment_id: str, baseline_id: str, caller: CallerDep, context: ContextDep
) -> Response:
    await get_for(context.db, experiment_id, caller, Level.Edit)
    await service.delete_baseline(context.db, experiment_id, baseline_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


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
) -> Any:
    """Queue a drift check of the current batch against a stored baseline.

    Answers 202 with the Running drift run; with ``wait`` (seconds, capped by the server),
    answers 200 with the finished run when it finishes in time. ``config`` (JSON) overrides
    the experiment's ``drift_config`` for this check only.
    """
    settings = context.settings
    try:  # the same rules as a run created with POST .../drift
        run_fields = DriftCreate(job_status=JobStatus.Running, model=model, tags=tags or [])
    except PydanticValidationError as error:
        first = error.errors()[0]
        raise ValidationFailed(str(first["loc"][0]), first["msg"]) from None
    experiment = await get_for(context.db, experiment_id, caller, Level.Edit)
    baseline_doc = await service.resolve_baseline(
        context.db, experiment, baseline, model, projection={"_id": 1}
    )
    profile = await context.profiles.load(context.db, baseline_doc["_id"])
    if profile is None:
        raise NotFound(f"baseline {baseline_doc['_id']} was deleted")
    check_config = _check_config(experiment.get("drift_config") or {}, config)
    if media_type_of(request.headers.get("content-type", "")) == SUMMARY_MEDIA_TYPE:
        summary = await _read_summary(request, profile, settings)
        mode, rows, batch = "summary", summary.row_count, summary.model_dump_json().encode()
    else:
        table = await _read_table(request, settings)
        rows = table.num_rows
        if reduce.needs_raw(check_config):
            mode, batch = "raw", await asyncio.to_thread(arrow_stream, table)
        else:
            # Reduced at upload: the rows themselves are never stored.
            reduced = await asyncio.to_thread(
                reduce.reduce_batch, table, profile, rows=check_config.multivariate
            )
            mode, batch = "reduced", await asyncio.to_thread(reduce.encode, reduced)
    file_id = await service.store_batch(
        context.db, batch, {"experiment_id": experiment_id, "rows": rows, "mode": mode}
    )
    run = await drifts.create(
        context.db,
        experiment_id,
        {
            **run_fields.model_dump(mode="json"),
            "parameters": {
                "check": {"baseline_id": baseline_doc["_id"], "rows": rows, "mode": mode}
            },
        },
        caller.user_id,
    )
    queue = JobQueue(
        context.db,
        lease_seconds=settings.job_lease_seconds,
        max_attempts=settings.job_max_attempts,
    )
    await queue.enqueue(
        jobs.KIND,
        {
            "baseline_id": baseline_doc["_id"],
            "batch_file": file_id,
            "mode": mode,
            "config": check_config.model_dump(mode="json"),
        },
        drift_id=run["_id"],
    )
    deadline = min(wait, settings.max_check_wait_seconds)
    if deadline > 0:
        current = await wait_for_document(
            context.db.drifts,
            run["_id"],
            lambda doc: doc["job_status"] != JobStatus.Running,
            deadline,
            streams=settings.change_streams,
        )
        if current is not None:  # finished: wait_for_document returns only then
            return _run_response(current, status.HTTP_200_OK)
    return _run_response(run, status.HTTP_202_ACCEPTED)


def _check_config(stored: dict[str, Any], override: str | None) -> DriftConfig:
    """The experiment's configuration with this check's overrides (features merged)."""
    merged = dict(stored)
    if override:
        try:
            changes = json.loads(override)
        except json.JSONDecodeError:
            raise ValidationFailed("config", "must be a JSON object") from None
        if not isinstance(changes, dict):
            raise ValidationFailed("config", "must be a JSON object")
        overrides = changes.pop("features", {})
        if not isinstance(overrides, dict):
            raise ValidationFailed("config.features", "must be an object of feature settings")
        merged = {**merged, **changes, "features": {**merged.get("features", {}), **overrides}}
    try:
        return DriftConfig.model_validate(merged)
    except PydanticValidationError as error:
        raise ValidationFailed(*first_problem(error, "config")) from None


def _run_response(run: dict[str, Any], status_code: int) -> JSONResponse:
    return JSONResponse(
        Drift.model_validate(drifts.to_api(run)).model_dump(mode="json"), status_code=status_code
    )


@router.get("/experiment/{experiment_id}/drift/{drift_id}/report", responses=errors(404))
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
