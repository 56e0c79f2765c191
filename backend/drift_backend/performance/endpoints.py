"""Performance monitoring routes: predictions, late ground truth, a labelled reference
(Edit), and the metrics per window (Read). See ``docs/performance.md``."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import AwareDatetime

from drift_backend.api.deps import CallerDep, ContextDep
from drift_backend.api.listing import KeysetDep
from drift_backend.api.responses import data_upload, errors
from drift_backend.api.uploads import BatchRejected, read_table
from drift_backend.auth.permissions import Level
from drift_backend.context import AppContext
from drift_backend.experiments.service import get_for
from drift_backend.performance import concept, repository, service
from drift_backend.performance.schemas import (
    LabelsRecorded,
    Performance,
    PerformanceModels,
    PerformanceRuns,
    PredictionsRecorded,
    Reference,
    RunPerformance,
)
from drift_backend.performance.windows import Window

router = APIRouter(tags=["performance"])
Model = Annotated[str, Query(min_length=1, max_length=256, description="the model's name")]
RunId = Annotated[
    str | None,
    Query(
        min_length=1,
        max_length=128,
        description="the drift run (of this model, in this experiment) these predictions "
        "belong to: they also count towards its metrics",
    ),
]
EXP = "/experiment/{experiment_id}"


def _limits(context: AppContext) -> service.Limits:
    settings = context.settings
    return service.Limits(
        max_rows=settings.performance_max_batch_rows,
        max_classes=settings.performance_max_classes,
        unlabelled_ttl_seconds=settings.performance_unlabelled_ttl_seconds,
        tracking=concept.tracking(settings),
    )


async def _upload(
    request: Request, context: ContextDep, caller: CallerDep, experiment_id: str
) -> Any:
    await get_for(context.db, experiment_id, caller, Level.Edit)
    return await read_table(request, context.settings)


async def _run(call: Any) -> Any:
    try:
        return await call
    except service.BatchInvalid as invalid:
        raise BatchRejected(invalid.error) from None


@router.post(
    EXP + "/predictions",
    response_model=PredictionsRecorded,
    responses=errors(404, 413, 415, 422),
    openapi_extra=data_upload(),
)
async def record_predictions(
    experiment_id: str,
    model: Model,
    request: Request,
    caller: CallerDep,
    context: ContextDep,
    run: RunId = None,
) -> Any:
    """Columns ``id``, ``y_pred``, optional ``proba_<class>`` and ``time``. The first
    prediction of an id is kept; a repeated id is counted in ``duplicates``. ``run``: a
    drift run of the model (404 naming ``run`` if the experiment has none of that id, 422
    if it is another model's)."""
    table = await _upload(request, context, caller, experiment_id)
    return await _run(
        service.record_predictions(context.db, _limits(context), experiment_id, model, table, run)
    )


@router.post(
    EXP + "/ground-truth",
    response_model=LabelsRecorded,
    responses=errors(404, 413, 415, 422),
    openapi_extra=data_upload(),
)
async def record_ground_truth(
    experiment_id: str, model: Model, request: Request, caller: CallerDep, context: ContextDep
) -> Any:
    """Columns ``id``, ``y_true``, optional ``time`` (when the label became known). Upserted
    by id; ids never predicted are counted in the answer, not an error."""
    table = await _upload(request, context, caller, experiment_id)
    return await _run(
        service.record_labels(context.db, _limits(context), experiment_id, model, table)
    )


@router.post(
    EXP + "/performance-reference",
    response_model=Reference,
    responses=errors(404, 413, 415, 422),
    openapi_extra=data_upload(),
)
async def record_reference(
    experiment_id: str, model: Model, request: Request, caller: CallerDep, context: ContextDep
) -> Any:
    """A labelled reference (``y_true``, ``y_pred``, optional ``proba_<class>``): the
    expected performance each window is shown beside. Replaces the model's earlier one."""
    table = await _upload(request, context, caller, experiment_id)
    return await _run(
        service.record_reference(context.db, _limits(context), experiment_id, model, table)
    )


@router.get(EXP + "/performance", response_model=Performance, responses=errors(404, 422))
async def get_performance(
    experiment_id: str,
    model: Model,
    caller: CallerDep,
    context: ContextDep,
    window: Window = Window.day,
    start: Annotated[AwareDatetime | None, Query(alias="from")] = None,
    end: Annotated[AwareDatetime | None, Query(alias="to")] = None,
) -> Any:
    """Realised metrics per window (UTC hours, days, weeks from Monday) with label coverage
    and lag; a window under ``DRIFT_PERFORMANCE_MIN_COVERAGE`` is ``complete: false``."""
    await get_for(context.db, experiment_id, caller, Level.Read)
    return await service.performance(
        context.db,
        experiment_id,
        model,
        window,
        start,
        end,
        _rules(context),
    )


def _rules(context: AppContext) -> service.Rules:
    return service.Rules(
        min_coverage=context.settings.performance_min_coverage,
        tolerance=context.settings.performance_tolerance,
        alpha=context.settings.performance_alpha,
        regression_tolerance=context.settings.performance_regression_tolerance,
    )


@router.get(EXP + "/performance/runs", response_model=PerformanceRuns, responses=errors(404, 422))
async def get_performance_runs(
    experiment_id: str,
    model: Model,
    caller: CallerDep,
    context: ContextDep,
    keyset: KeysetDep,
) -> Any:
    """Realised (and estimated) metrics per drift run — over the predictions recorded with
    ``run=`` — newest run first, with label coverage and ``complete`` as for windows; a
    page at a time by cursor (``after`` a page's ``next``, ``before`` its ``previous``),
    with no count, so a page costs the same however many runs the model has."""
    await get_for(context.db, experiment_id, caller, Level.Read)
    return await service.runs(
        context.db,
        experiment_id,
        model,
        after=keyset.after,
        before=keyset.before,
        limit=keyset.limit,
        rules=_rules(context),
    )


@router.get(
    EXP + "/drift/{drift_id}/performance",
    response_model=RunPerformance,
    responses=errors(404, 422),
)
async def get_run_performance(
    experiment_id: str,
    drift_id: str,
    caller: CallerDep,
    context: ContextDep,
    model: Annotated[
        str | None, Query(min_length=1, max_length=256, description="default: the run's model")
    ] = None,
) -> Any:
    """The metrics of the predictions recorded with this drift run (404 naming ``run``
    when it has none)."""
    await get_for(context.db, experiment_id, caller, Level.Read)
    return await service.run_performance(
        context.db, experiment_id, drift_id, model, _rules(context)
    )


@router.get(EXP + "/performance/models", response_model=PerformanceModels, responses=errors(404))
async def list_performance_models(
    experiment_id: str, caller: CallerDep, context: ContextDep
) -> Any:
    """The models that recorded predictions or a reference in this experiment (what
    ``GET .../performance?model=`` can be asked about)."""
    await get_for(context.db, experiment_id, caller, Level.Read)
    docs = await repository.list_models(context.db, experiment_id)
    return {
        "items": [
            {
                "model": doc["model"],
                "task": doc["task"],
                "classes": doc["classes"],
                "reference": doc.get("reference") is not None,
                "created_at": doc["created_at"],
            }
            for doc in docs
        ]
    }
