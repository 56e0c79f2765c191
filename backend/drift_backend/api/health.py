from __future__ import annotations

from typing import Literal

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from drift_backend.api.deps import ContextDep
from drift_backend.api.responses import errors
from drift_backend.errors import RETRY_AFTER_SECONDS
from drift_backend.store.database import ping

router = APIRouter(tags=["health"])
_RETRY = {"Retry-After": str(RETRY_AFTER_SECONDS)}


class Health(BaseModel):
    status: Literal["ok"]


@router.get("/health/live", response_model=Health)
async def live() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@router.get("/health/ready", response_model=Health, responses=errors(503))
async def ready(context: ContextDep) -> JSONResponse | dict[str, str]:
    """The database answers and the start-up indexes exist; 503 otherwise."""
    if not context.indexes_ready:
        body = {"code": "service_unavailable", "status": 503, "message": "indexes not created yet"}
        return JSONResponse(body, status_code=503, headers=_RETRY)
    if not await ping(context.db):
        body = {"code": "service_unavailable", "status": 503, "message": "database unreachable"}
        return JSONResponse(body, status_code=503, headers=_RETRY)
    return {"status": "ok"}
