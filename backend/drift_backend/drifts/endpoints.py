from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, Response, status

from drift_backend.api.deps import CallerDep, DbDep, SettingsDep
from drift_backend.api.listing import KeysetDep, PageDep, search_keyset, search_page
from drift_backend.api.responses import PAGINATED, errors
from drift_backend.auth.permissions import Level
from drift_backend.charts import service as charts
from drift_backend.checks import service as checks
from drift_backend.drifts import latest, service
from drift_backend.drifts.schemas import Drift, DriftCreate, DriftPage, DriftReplace, LatestRuns
from drift_backend.drifts.timestamps import reported_time
from drift_backend.errors import ValidationFailed
from drift_backend.experiments.service import get_for, readable_ids
from drift_backend.performance import service as performance

router = APIRouter(tags=["drifts"])
ExperimentId = Annotated[str, "experiment id"]
DriftId = Annotated[str, "drift run id"]


@router.post(
    "/experiment/{experiment_id}/drift/search",
    response_model=list[Drift],
    responses={**PAGINATED, **errors(404)},
)
async def search_drifts(
    experiment_id: ExperimentId,
    caller: CallerDep,
    db: DbDep,
    settings: SettingsDep,
    page: PageDep,
    response: Response,
    query: Any = Body(default=None),
) -> list[dict[str, Any]]:
    """drift-watch's search: a page by number and ``X-Pagination`` with the total. The
    total of the whole experiment, or of one model, is kept as runs change state (the
    charts' per-model totals): read, not counted. Newest-first pages by ``created_at``
    (the default) down to ``listing.KEYSET_DEPTH`` rows read about their depth; deeper
    pages and other orders sort the match in the database."""
    await get_for(db, experiment_id, caller, Level.Read)

    async def kept_total(client_filter: dict[str, Any]) -> int | None:
        model = client_filter.get("model")
        if isinstance(model, dict) and model.keys() == {"$eq"}:
            model = model["$eq"]
        if not client_filter:
            return await charts.run_count(db, experiment_id)
        if client_filter.keys() == {"model"} and isinstance(model, str):
            return await charts.run_count(db, experiment_id, model)
        return None

    docs = await search_page(
        db.drifts,
        query,
        service.DRIFT_FILTER,
        {"experiment_id": experiment_id},
        page,
        settings,
        response,
        sort_fields=service.DRIFT_SORT_FIELDS,
        known_total=kept_total,
        newest_by_windows=True,
    )
    return [service.to_api(doc) for doc in docs]


@router.post(
    "/experiment/{experiment_id}/drift/page", response_model=DriftPage, responses=errors(404)
)
async def page_drifts(
    experiment_id: ExperimentId,
    caller: CallerDep,
    db: DbDep,
    settings: SettingsDep,
    keyset: KeysetDep,
    query: Any = Body(default=None),
) -> dict[str, Any]:
    """Runs newest first, a page at a time by cursor (``after`` a page's ``next``, ``before``
    its ``previous``), filtered like ``drift/search``. No total is counted, so a page costs
    the same in an experiment of any size (the dashboard's runs table reads this)."""
    await get_for(db, experiment_id, caller, Level.Read)
    page = await search_keyset(
        db.drifts, query, service.DRIFT_FILTER, {"experiment_id": experiment_id}, keyset, settings
    )
    return {
        "items": [service.to_api(doc) for doc in page.items],
        "next": page.next,
        "previous": page.previous,
    }


@router.post(
    "/experiment/{experiment_id}/drift",
    response_model=Drift,
    status_code=status.HTTP_201_CREATED,
    responses=errors(404),
)
async def create_drift(
    experiment_id: ExperimentId,
    body: DriftCreate,
    caller: CallerDep,
    db: DbDep,
    settings: SettingsDep,
) -> dict[str, Any]:
    """Start a drift run (usually ``Running``); needs Edit on the experiment. A run reported
    late (a client spool) may carry the ``created_at`` it really started at."""
    await get_for(db, experiment_id, caller, Level.Edit)
    created_at = None
    if body.created_at is not None:
        created_at = reported_time("created_at", body.created_at, settings.max_backdate_days)
    data = body.model_dump(mode="json", exclude={"created_at"})
    doc = await service.create(db, experiment_id, data, caller.user_id, created_at=created_at)
    return service.to_api(doc)


@router.get(
    "/experiment/{experiment_id}/drift/{drift_id}", response_model=Drift, responses=errors(404)
)
async def get_drift(
    experiment_id: ExperimentId, drift_id: DriftId, caller: CallerDep, db: DbDep
) -> dict[str, Any]:
    await get_for(db, experiment_id, caller, Level.Read)
    return service.to_api(await service.get(db, experiment_id, drift_id))


@router.put(
    "/experiment/{experiment_id}/drift/{drift_id}",
    response_model=Drift,
    responses=errors(404, 409),
)
async def replace_drift(
    experiment_id: ExperimentId,
    drift_id: DriftId,
    body: DriftReplace,
    caller: CallerDep,
    db: DbDep,
    settings: SettingsDep,
) -> dict[str, Any]:
    """Update a Running run, or finish it as Completed or Failed (never back: 409). A finish
    reported late may carry the ``finished_at`` it really happened at."""
    await get_for(db, experiment_id, caller, Level.Edit)
    finished_at = None
    if body.finished_at is not None:
        if not body.job_status.terminal:
            raise ValidationFailed("finished_at", "only with job_status Completed or Failed")
        run = await service.get(db, experiment_id, drift_id)
        finished_at = reported_time(
            "finished_at",
            body.finished_at,
            settings.max_backdate_days,
            not_before=run["created_at"],
        )
    data = body.model_dump(mode="json", exclude={"finished_at"})
    doc = await service.replace(db, experiment_id, drift_id, data, finished_at=finished_at)
    return service.to_api(doc)


@router.post(
    "/experiment/{experiment_id}/drift/{drift_id}/heartbeat",
    response_model=Drift,
    responses=errors(404, 409),
)
async def heartbeat(
    experiment_id: ExperimentId, drift_id: DriftId, caller: CallerDep, db: DbDep
) -> dict[str, Any]:
    """Keep a long Running job from being failed by the timeout sweeper."""
    await get_for(db, experiment_id, caller, Level.Edit)
    return service.to_api(await service.heartbeat(db, experiment_id, drift_id))


@router.delete(
    "/experiment/{experiment_id}/drift/{drift_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=errors(404),
)
async def delete_drift(
    experiment_id: ExperimentId, drift_id: DriftId, caller: CallerDep, db: DbDep
) -> Response:
    await get_for(db, experiment_id, caller, Level.Edit)
    await service.delete(db, experiment_id, drift_id)
    await checks.delete_report(db, drift_id)  # a server check's report goes with its run
    await performance.delete_run(db, experiment_id, drift_id)  # and its metrics per run
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# The last run per experiment (the dashboard's experiments list) ----------------------------
#: Longer than any experiment id (UUIDs); longer ones are refused, not looked up.
MAX_ID_LENGTH = 128


def _latest_ids(values: list[str]) -> list[str]:
    """``experiment`` may repeat and each may list ids separated by commas."""
    ids = list(dict.fromkeys(part.strip() for value in values for part in value.split(",")))
    ids = [item for item in ids if item]
    if not ids:
        raise ValidationFailed("experiment", "name at least one experiment id")
    if len(ids) > latest.MAX_EXPERIMENTS:
        raise ValidationFailed("experiment", f"at most {latest.MAX_EXPERIMENTS} experiments")
    if any(len(item) > MAX_ID_LENGTH for item in ids):
        raise ValidationFailed("experiment", f"an id is at most {MAX_ID_LENGTH} characters")
    return ids


@router.get("/drift/latest", response_model=LatestRuns)
async def latest_runs(
    caller: CallerDep,
    db: DbDep,
    experiment: Annotated[
        list[str],
        Query(
            description=(
                "Experiment ids (repeat it, or separate by commas; at most "
                f"{latest.MAX_EXPERIMENTS})."
            )
        ),
    ],
) -> dict[str, Any]:
    """The last run (newest ``created_at``) of each experiment named, in the order named;
    `run` is null for an experiment without runs. Experiments the caller may not read, and
    unknown ids, are left out (as a search leaves them out)."""
    ids = await readable_ids(db, _latest_ids(experiment), caller)
    return {"items": await latest.last_runs(db, ids)}
