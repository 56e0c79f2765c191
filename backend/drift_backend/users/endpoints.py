from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Response, status

from drift_backend.api.deps import CallerDep, ContextDep, CurrentIdentity, DbDep, SettingsDep
from drift_backend.api.listing import PageDep, search_page
from drift_backend.api.responses import PAGINATED, errors
from drift_backend.errors import Forbidden, NotFound
from drift_backend.users import service
from drift_backend.users.schemas import Entitlements, User

router = APIRouter(tags=["users"])


@router.get("/entitlement", response_model=Entitlements)
@router.get("/entitlements", response_model=Entitlements, include_in_schema=False)
async def entitlements(identity: CurrentIdentity) -> dict[str, Any]:
    """The entitlements of the token's user, from the configured claim."""
    return {"items": list(identity.entitlements)}


@router.post(
    "/user", response_model=User, status_code=status.HTTP_201_CREATED, responses=errors(409)
)
async def register(identity: CurrentIdentity, db: DbDep) -> dict[str, Any]:
    """Register the token's user (409 when already registered)."""
    return service.to_api(await service.register(db, identity))


@router.get("/user/self", response_model=User, responses=errors(404))
async def get_self(caller: CallerDep) -> dict[str, Any]:
    if caller.identity is not None and caller.user is None:
        raise NotFound("user not registered: POST /api/v1/user first")
    return service.to_api(caller.registered())


@router.put("/user/self", response_model=User, responses=errors(404))
async def update_self(identity: CurrentIdentity, context: ContextDep) -> dict[str, Any]:
    """Refresh the stored email from the token."""
    user = await service.refresh(context.db, identity)
    context.users.forget(identity.subject, identity.issuer)
    return service.to_api(user)


@router.post("/user/search", response_model=list[User], responses=PAGINATED)
async def search_users(
    caller: CallerDep,
    db: DbDep,
    settings: SettingsDep,
    page: PageDep,
    response: Response,
    query: Any = Body(default=None),
) -> list[dict[str, Any]]:
    """Search registered users (administrators only)."""
    if caller.identity is None:
        caller.registered()
    if not caller.is_admin:
        raise Forbidden("only administrators may search users")
    docs = await search_page(
        db.users,
        query,
        service.USER_FILTER,
        {},
        page,
        settings,
        response,
        sort_fields=service.USER_SORT_FIELDS,
    )
    return [service.to_api(doc) for doc in docs]
