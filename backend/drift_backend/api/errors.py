"""The web layer's rendering of errors: every failure answers the one JSON error shape."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pymongo.errors import PyMongoError
from starlette.exceptions import HTTPException as StarletteHTTPException

from drift_backend.errors import APIError, ServiceUnavailable
from drift_backend.logs import current_request_id
from drift_backend.store.database import database_unavailable

log = logging.getLogger(__name__)


def _render(error: APIError) -> JSONResponse:
    return JSONResponse(error.body(), status_code=error.status, headers=error.headers)


_STATUS_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
}


def _field_path(loc: tuple[int | str, ...] | list[int | str]) -> str:
    parts = [str(part) for part in loc]
    if parts and parts[0] in {"body", "query", "path", "header"}:
        parts = parts[1:] or parts
    return ".".join(parts) or "body"


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(APIError)
    async def _api_error(_: Request, exc: APIError) -> JSONResponse:
        return _render(exc)

    @app.exception_handler(PyMongoError)
    async def _database_error(_: Request, exc: PyMongoError) -> JSONResponse:
        if not database_unavailable(exc):
            # A bug, not an outage: the request-id middleware answers 500 and logs it.
            raise exc
        # The driver's message names hosts and the topology: for the log, not the caller.
        log.warning("database unavailable (request id %s): %s", current_request_id(), exc)
        return _render(ServiceUnavailable("the database is unavailable; try again later"))

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"field": _field_path(err.get("loc", ())), "reason": str(err.get("msg", "invalid"))}
            for err in exc.errors()
        ]
        first = errors[0] if errors else {"field": "body", "reason": "invalid"}
        error = APIError(f"{first['field']}: {first['reason']}", errors=errors)
        error.status, error.code = 422, "validation_error"
        return _render(error)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        error = APIError(
            str(exc.detail),
            headers=dict(exc.headers) if exc.headers else None,
            errors=getattr(exc, "errors", None),
        )
        error.status = exc.status_code
        error.code = _STATUS_CODES.get(exc.status_code, "error")
        return _render(error)
