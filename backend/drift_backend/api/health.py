from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from drift_backend.api.deps import ContextDep
from drift_backend.errors import RETRY_AFTER_SECONDS
from drift_backend.store.database import ping

router = APIRouter(tags=["health"])
_RETRY = {"Retry-After": str(RETRY_AFTER_SECONDS)}


@router.get("/health/live")
async def live() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@router.get("/health/ready", response_model=None)
async def ready(context: ContextDep) -> JSONResponse | dict[str, str]:
    """The database answers and the start-up indexes exist; 503 otherwise."""
    if not context.indexes_ready:
        body = {"code": "service_unavailable", "status": 503, "message": "indexes not created yet"}
        return JSONResponse(body, status_code=503, headers=_RETRY)
    if not await ping(context.db):
        body = {"code": "service_unavailable", "status": 503, "message": "database unreachable"}
        return JSONResponse(body, status_code=503, headers=_RETRY)
    return {"status": "ok"}
