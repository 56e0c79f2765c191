"""Who may use an experiment (Manage only): list the entries, add a user by email or an
entitlement with a level, change a level, remove one, make the experiment public or private.

Plain POST forms with the CSRF token; success redirects back (303, so a reload does not
repeat it) with a short confirmation; a refusal from the backend (409 for the last Manage
entry, 422 for an unknown email, 403) shows the page again with its message.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, HTTPException, Query, Request
from starlette.responses import RedirectResponse, Response

from drift_dashboard.api import Api, ApiError
from drift_dashboard.deps import ApiDep, LoggedInDep, SessionDep
from drift_dashboard.pages.scope import (
    LEVELS,
    ExperimentId,
    ExperimentScope,
    backend_allows_manage,
    backend_user_id,
    load_scope,
    render_in,
)

router = APIRouter()
DONE = {
    "added": "Access granted.",
    "changed": "Level changed.",
    "removed": "Access removed.",
    "public": "The experiment is now public: anyone can read it.",
    "private": "The experiment is now private: only the entries below can read it.",
}
#: Backend refusals shown on the form (anything else is the app's error page).
SHOWN = (400, 404, 409, 422)
Entity = Annotated[str, Form(max_length=512)]
LevelField = Annotated[str, Form(max_length=16)]


async def manager_scope(api: Api, session: Any, experiment_id: str) -> ExperimentScope:
    scope = await load_scope(api, session, experiment_id)
    if not scope.can_manage:
        if not await backend_allows_manage(api, experiment_id):
            raise HTTPException(403, "Managing permissions needs Manage on the experiment.")
        scope.level = "Manage"  # an administrator: no entry of their own
    return scope


def page(
    request: Request,
    scope: ExperimentScope,
    *,
    done: str | None = None,
    error: str | None = None,
    form: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    return render_in(
        request,
        scope,
        "permissions/index.html",
        section="permissions",
        status_code=status_code,
        title=f"Permissions · {scope.experiment['name']}",
        permissions=scope.experiment.get("permissions", []),
        levels=LEVELS,
        done=DONE.get(done or ""),
        error=error,
        form=form or {"kind": "email", "value": "", "level": "Read"},
    )


def back(experiment_id: str, done: str) -> Response:
    return RedirectResponse(
        f"/experiments/{experiment_id}/permissions?done={done}", status_code=303
    )


@router.get("/experiments/{experiment_id}/permissions")
async def show_permissions(
    request: Request,
    api: ApiDep,
    session: SessionDep,
    user: LoggedInDep,
    experiment_id: ExperimentId,
    done: Annotated[str, Query(max_length=16)] = "",
) -> Response:
    scope = await manager_scope(api, session, experiment_id)
    return page(request, scope, done=done)


async def _refused(
    request: Request,
    api: Api,
    session: Any,
    experiment_id: str,
    exc: ApiError,
    form: dict[str, str] | None = None,
) -> Response:
    if exc.status not in SHOWN:
        raise exc
    scope = await manager_scope(api, session, experiment_id)
    return page(
        request,
        scope,
        error=exc.detail,
        form=form,
        status_code=exc.status if exc.status != 404 else 422,
    )


@router.post("/experiments/{experiment_id}/permissions")
async def add_permission(
    request: Request,
    api: ApiDep,
    session: SessionDep,
    user: LoggedInDep,
    experiment_id: ExperimentId,
    kind: Annotated[str, Form(max_length=16)] = "email",
    value: Entity = "",
    level: LevelField = "Read",
) -> Response:
    form = {"kind": kind, "value": value, "level": level}
    value = value.strip()
    body: dict[str, Any] = {"level": level}
    if kind == "email":
        body["email"] = value
    elif kind in ("entitlement", "user"):
        body["entity"] = value
    error = None
    if not value:
        error = "Name a user's email, a user id or an entitlement."
    elif kind not in ("email", "entitlement", "user"):
        error = "Choose what to add: a user's email, a user id or an entitlement."
    elif level not in LEVELS:
        error = "Choose a level: Read, Edit or Manage."
    if error is not None:
        scope = await manager_scope(api, session, experiment_id)
        return page(request, scope, error=error, form=form, status_code=422)
    try:
        await api.request("PUT", f"/experiment/{experiment_id}/permissions", json=body)
    except ApiError as exc:
        return await _refused(request, api, session, experiment_id, exc, form)
    return back(experiment_id, "added")


@router.post("/experiments/{experiment_id}/permissions/level")
async def change_level(
    request: Request,
    api: ApiDep,
    session: SessionDep,
    user: LoggedInDep,
    experiment_id: ExperimentId,
    entity: Entity,
    level: LevelField,
) -> Response:
    if level not in LEVELS:
        scope = await manager_scope(api, session, experiment_id)
        return page(request, scope, error="Choose a level: Read, Edit or Manage.", status_code=422)
    try:
        await api.request(
            "PUT",
            f"/experiment/{experiment_id}/permissions",
            json={"entity": entity, "level": level},
        )
    except ApiError as exc:
        return await _refused(request, api, session, experiment_id, exc)
    return back(experiment_id, "changed")


@router.post("/experiments/{experiment_id}/permissions/remove")
async def remove_permission(
    request: Request,
    api: ApiDep,
    session: SessionDep,
    user: LoggedInDep,
    experiment_id: ExperimentId,
    entity: Entity,
) -> Response:
    try:
        await api.request(
            "DELETE", f"/experiment/{experiment_id}/permissions", params={"entity": entity}
        )
    except ApiError as exc:
        return await _refused(request, api, session, experiment_id, exc)
    if entity == await backend_user_id(api, session):
        # Their own entry: they may no longer manage (or even read) it.
        return RedirectResponse("/experiments", status_code=303)
    return back(experiment_id, "removed")


@router.post("/experiments/{experiment_id}/visibility")
async def set_visibility(
    request: Request,
    api: ApiDep,
    session: SessionDep,
    user: LoggedInDep,
    experiment_id: ExperimentId,
    public: Annotated[str, Form(max_length=8)] = "",
) -> Response:
    make_public = public in ("1", "true", "on")
    try:
        await api.request("PATCH", f"/experiment/{experiment_id}", json={"public": make_public})
    except ApiError as exc:
        return await _refused(request, api, session, experiment_id, exc)
    return back(experiment_id, "public" if make_public else "private")
