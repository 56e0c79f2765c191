from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, Response, status

from drift_backend.api.deps import CallerDep, DbDep, SettingsDep
from drift_backend.api.listing import PageDep, search_page
from drift_backend.api.responses import PAGINATED, errors
from drift_backend.auth.permissions import Level, visibility_filter
from drift_backend.baselines.service import baseline_exists
from drift_backend.errors import ValidationFailed
from drift_backend.experiments import service
from drift_backend.experiments.schemas import (
    Experiment,
    ExperimentCreate,
    ExperimentPatch,
    ExperimentReplace,
    Permission,
    PermissionGrant,
)
from drift_backend.users.service import find_by_verified_email

router = APIRouter(tags=["experiments"])
ExperimentId = Annotated[str, "experiment id (UUID)"]


@router.post("/experiment/search", response_model=list[Experiment], responses=PAGINATED)
async def search_experiments(
    caller: CallerDep,
    db: DbDep,
    settings: SettingsDep,
    page: PageDep,
    response: Response,
    query: Any = Body(default=None),
) -> list[dict[str, Any]]:
    """Experiments the caller may read that match the filter; pages in ``X-Pagination``."""
    scope = visibility_filter(caller.identity, caller.user_id)
    docs = await search_page(
        db.experiments,
        query,
        service.EXPERIMENT_FILTER,
        scope,
        page,
        settings,
        response,
        sort_fields=service.EXPERIMENT_SORT_FIELDS,
    )
    return [service.to_api(doc) for doc in docs]


@router.post(
    "/experiment",
    response_model=Experiment,
    status_code=status.HTTP_201_CREATED,
    responses=errors(409),
)
async def create_experiment(body: ExperimentCreate, caller: CallerDep, db: DbDep) -> dict[str, Any]:
    """Create an experiment; the caller gets Manage on it. Private unless ``public``."""
    return service.to_api(await service.create(db, caller, body.model_dump(mode="json")))


@router.get("/experiment/{experiment_id}", response_model=Experiment, responses=errors(404))
async def get_experiment(
    experiment_id: ExperimentId, caller: CallerDep, db: DbDep
) -> dict[str, Any]:
    return service.to_api(await service.get_for(db, experiment_id, caller, Level.Read))


@router.put("/experiment/{experiment_id}", response_model=Experiment, responses=errors(404, 409))
async def replace_experiment(
    experiment_id: ExperimentId, body: ExperimentReplace, caller: CallerDep, db: DbDep
) -> dict[str, Any]:
    """Replace the experiment's fields; it must keep at least one Manage entry."""
    doc = await service.get_for(db, experiment_id, caller, Level.Manage)
    return service.to_api(await service.update(db, doc, body.model_dump(mode="json")))


@router.patch("/experiment/{experiment_id}", response_model=Experiment, responses=errors(404, 409))
async def patch_experiment(
    experiment_id: ExperimentId, body: ExperimentPatch, caller: CallerDep, db: DbDep
) -> dict[str, Any]:
    """Change only the fields sent."""
    doc = await service.get_for(db, experiment_id, caller, Level.Manage)
    changes = body.model_dump(mode="json", exclude_unset=True)
    for entry in changes.get("default_baselines") or []:
        if not await baseline_exists(db, doc["_id"], entry["baseline_id"]):
            raise ValidationFailed(
                "default_baselines", f"no baseline {entry['baseline_id']} in this experiment"
            )
    for key in ("name", "public", "permissions", "drift_config", "default_baselines", "metrics"):
        if key in changes and changes[key] is None:
            changes.pop(key)
    if not changes:
        return service.to_api(doc)
    return service.to_api(await service.update(db, doc, changes))


@router.delete(
    "/experiment/{experiment_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=errors(404),
)
async def delete_experiment(experiment_id: ExperimentId, caller: CallerDep, db: DbDep) -> Response:
    """Delete the experiment and all of its drift runs."""
    await service.get_for(db, experiment_id, caller, Level.Manage)
    await service.delete(db, experiment_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(
    "/experiment/{experiment_id}/permissions",
    response_model=list[Permission],
    responses=errors(404),
)
async def list_permissions(
    experiment_id: ExperimentId, caller: CallerDep, db: DbDep
) -> list[dict[str, Any]]:
    doc = await service.get_for(db, experiment_id, caller, Level.Read)
    return list(service.to_api(doc)["permissions"])


@router.put(
    "/experiment/{experiment_id}/permissions",
    response_model=list[Permission],
    responses=errors(404, 409),
)
async def grant_permission(
    experiment_id: ExperimentId, body: PermissionGrant, caller: CallerDep, db: DbDep
) -> list[dict[str, Any]]:
    """Add or change one entry: a user (by id or email) or an entitlement, with a level."""
    doc = await service.get_for(db, experiment_id, caller, Level.Manage)
    entity = body.entity
    if body.email is not None:
        entity = str((await find_by_verified_email(db, body.email))["_id"])
    assert entity is not None
    updated = await service.grant(db, doc, entity, body.level)
    return list(service.to_api(updated)["permissions"])


@router.delete(
    "/experiment/{experiment_id}/permissions",
    response_model=list[Permission],
    responses=errors(404, 409),
)
async def revoke_permission(
    experiment_id: ExperimentId,
    caller: CallerDep,
    db: DbDep,
    entity: Annotated[str, Query(min_length=1, max_length=512)],
) -> list[dict[str, Any]]:
    """Remove one entry; the last Manage entry cannot be removed (409)."""
    doc = await service.get_for(db, experiment_id, caller, Level.Manage)
    updated = await service.revoke(db, doc, entity)
    return list(service.to_api(updated)["permissions"])
