"""Baselines: upload (reference data or SageMaker files), list, get, bins, exports, delete."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response, status
from pydantic import BaseModel

from drift_backend.api.deps import CallerDep, ContextDep
from drift_backend.api.responses import SAGEMAKER_PARTS, data_upload, errors
from drift_backend.api.uploads import BatchRejected, read_table
from drift_backend.auth.caller import Caller
from drift_backend.auth.permissions import Level
from drift_backend.baselines import service
from drift_backend.baselines.ingest import BatchError, media_type_of
from drift_backend.baselines.model import Profile
from drift_backend.baselines.profile import build_profile
from drift_backend.baselines.sagemaker import (
    export_constraints,
    export_statistics,
    import_sagemaker,
)
from drift_backend.baselines.schemas import (
    Baseline,
    BaselineItem,
    Bins,
    ConstraintsExport,
    StatisticsExport,
)
from drift_backend.baselines.summary import bins
from drift_backend.context import AppContext
from drift_backend.experiments.service import forget_default_baseline, get_for
from drift_backend.performance import service as performance
from drift_backend.settings import Settings

router = APIRouter(tags=["baselines"])
Name = Annotated[str | None, Query(min_length=1, max_length=256)]
# A labelled performance reference from the same upload.
Column = Annotated[str | None, Query(min_length=1, max_length=256)]


def _reference_columns(
    target: str | None, prediction: str | None, proba_prefix: str | None, model: str | None
) -> performance.ReferenceColumns | None:
    """The opt-in ``target``/``prediction``/``proba_prefix`` query parameters; both of the
    first two, and the ``model`` the reference is for, or none of them."""
    if target is None and prediction is None and proba_prefix is None:
        return None
    if target is None or prediction is None or model is None:
        field = "target" if target is None else "prediction" if prediction is None else "model"
        reason = "required with target, prediction or proba_prefix (a performance reference)"
        raise BatchRejected(BatchError(field, reason, 422))
    return performance.ReferenceColumns(target, prediction, proba_prefix)


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


async def _readable_profile(
    context: AppContext, caller: Caller, experiment_id: str, baseline_id: str
) -> Profile:
    """The profile of a baseline in an experiment the caller may read."""
    await get_for(context.db, experiment_id, caller, Level.Read)
    return await service.get_profile(context.db, context.profiles, experiment_id, baseline_id)


async def _json(model: type[BaseModel], make: Callable[[], Any]) -> Response:
    """``make()`` checked against ``model`` and written as JSON, off the event loop: a wide
    profile's export is megabytes of work."""

    def encode() -> bytes:
        value = make()
        if isinstance(value, model):
            return value.model_dump_json().encode()
        # Only the keys the export wrote: SageMaker files leave absent sections out.
        return model.model_validate(value).model_dump_json(exclude_unset=True).encode()

    return Response(await asyncio.to_thread(encode), media_type="application/json")


@router.post(
    "/experiment/{experiment_id}/baseline",
    status_code=status.HTTP_201_CREATED,
    response_model=Baseline,
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
    target: Column = None,
    prediction: Column = None,
    proba_prefix: Column = None,
) -> Any:
    """Profile reference data (Arrow IPC stream, Parquet, CSV or ``{"columns": {...}}``)
    once; checks then cost O(current batch). Baselines are immutable.

    With ``target`` and ``prediction`` (column names; optional ``proba_prefix`` of the class
    probability columns) and ``model``, the same upload is also ``model``'s labelled
    performance reference; those columns are not profiled as features."""
    await get_for(context.db, experiment_id, caller, Level.Edit)
    columns = _reference_columns(target, prediction, proba_prefix, model)
    reference = None
    if media_type_of(request.headers.get("content-type", "")) == "multipart/form-data":
        if columns is not None:
            reason = "a performance reference needs a data upload, not SageMaker files"
            raise BatchRejected(BatchError("target", reason, 422))
        profile = await _read_sagemaker(request, context.settings)
    else:
        table = await read_table(request, context.settings)
        if columns is not None:
            try:
                table, reference = await performance.reference_from_upload(
                    table, columns, context.settings.performance_max_classes
                )
            except performance.BatchInvalid as invalid:
                raise BatchRejected(invalid.error) from None
        profile = await asyncio.to_thread(
            build_profile, table, exact_rows=context.settings.exact_reference_rows
        )
    doc = await service.store_baseline(
        context.db, experiment_id, profile, name=name, model=model, created_by=caller.user_id
    )
    # The first check against it is likely the next call.
    context.profiles.put(doc["_id"], profile, doc["stored_bytes"])
    answer = service.baseline_to_api(doc, profile)
    if reference is not None:
        assert model is not None  # _reference_columns requires it
        answer["performance_reference"] = await performance.record_reference_from_upload(
            context.db, experiment_id, model, reference, context.settings.performance_max_classes
        )
    return answer


@router.get(
    "/experiment/{experiment_id}/baseline",
    response_model=list[BaselineItem],
    responses=errors(404),
)
async def list_baselines(experiment_id: str, caller: CallerDep, context: ContextDep) -> Any:
    await get_for(context.db, experiment_id, caller, Level.Read)
    docs = await service.list_baselines(context.db, experiment_id)
    return [service.baseline_to_api(doc) for doc in docs]


@router.get(
    "/experiment/{experiment_id}/baseline/{baseline_id}",
    response_model=Baseline,
    responses=errors(404),
)
async def get_baseline(
    experiment_id: str, baseline_id: str, caller: CallerDep, context: ContextDep
) -> Any:
    await get_for(context.db, experiment_id, caller, Level.Read)
    doc, profile = await service.get_with_profile(
        context.db, context.profiles, experiment_id, baseline_id
    )
    return service.baseline_to_api(doc, profile)


@router.get(
    "/experiment/{experiment_id}/baseline/{baseline_id}/bins",
    response_model=Bins,
    responses=errors(404),
)
async def get_bins(
    experiment_id: str, baseline_id: str, caller: CallerDep, context: ContextDep
) -> Any:
    """The frozen edges and categories summary mode counts on (no reference rows)."""
    profile = await _readable_profile(context, caller, experiment_id, baseline_id)
    return await _json(Bins, lambda: bins(profile))


@router.get(
    "/experiment/{experiment_id}/baseline/{baseline_id}/statistics.json",
    response_model=StatisticsExport,
    responses=errors(404),
)
async def export_statistics_json(
    experiment_id: str, baseline_id: str, caller: CallerDep, context: ContextDep
) -> Any:
    """The baseline as a SageMaker Model Monitor ``statistics.json`` (KLL sketch included)."""
    profile = await _readable_profile(context, caller, experiment_id, baseline_id)
    return await _json(StatisticsExport, lambda: export_statistics(profile))


@router.get(
    "/experiment/{experiment_id}/baseline/{baseline_id}/constraints.json",
    response_model=ConstraintsExport,
    responses=errors(404),
)
async def export_constraints_json(
    experiment_id: str, baseline_id: str, caller: CallerDep, context: ContextDep
) -> Any:
    """The baseline's SageMaker ``constraints.json`` (completeness, domains, monitoring config)."""
    profile = await _readable_profile(context, caller, experiment_id, baseline_id)
    return await _json(ConstraintsExport, lambda: export_constraints(profile))


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
    await forget_default_baseline(context.db, experiment_id, baseline_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
