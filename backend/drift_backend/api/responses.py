"""What the OpenAPI document says beyond what FastAPI infers.

The one error shape as a model; ``errors(...)`` for the statuses a route answers because of
what it does (403, 404, 409, ...); ``install_openapi`` for those every operation answers
because of how it is built (401/403/503 when it reads a token, 422 when it takes input,
400/413 when it takes a body, 500); the bodies of the routes that parse uploads themselves."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel, Field
from pydantic.json_schema import SkipJsonSchema

from drift_backend.idempotency.keys import HEADER, MAX_KEY_LENGTH, applies_to

REF = "#/components/schemas/"


class FieldError(BaseModel):
    field: str = Field(description="The offending field, dotted (`body`, `page_size`, ...).")
    reason: str


class ErrorBody(BaseModel):
    """Every answer with a status of 400 or more has this shape."""

    code: str = Field(description="Stable machine-readable code, e.g. `not_found`.")
    status: int = Field(description="The HTTP status, repeated.")
    message: str
    # Absent rather than null when there is nothing to say (SkipJsonSchema keeps null out
    # of the documented schema, which then matches the answers).
    errors: list[FieldError] | SkipJsonSchema[None] = Field(
        default=None, description="One entry per offending field (always on 422)."
    )
    request_id: str | SkipJsonSchema[None] = Field(
        default=None, description="On 500: the `X-Request-ID` the server logged the failure under."
    )


DESCRIPTIONS: dict[int, str] = {
    400: "Malformed request: a body that is not JSON, or not as long as its Content-Length.",
    401: "No, a malformed, an expired or an untrusted bearer token.",
    403: "Authenticated, but without the permission, registration or entitlement this needs.",
    404: "Not found, or not readable by the caller (the two are not told apart).",
    409: "Conflicts with the current state (duplicate name, finished run, concurrent change).",
    413: "The request body exceeds the configured limit.",
    415: "Unsupported Content-Type for this body.",
    422: "Invalid input: `errors` names each field and the reason.",
    500: "Unexpected server error (logged with its `request_id`).",
    503: "A dependency (the database or the identity provider) is unavailable; retry later.",
}

_HEADERS: dict[int, dict[str, Any]] = {
    401: {
        "WWW-Authenticate": {
            "description": "`Bearer` with `error` and `error_description` (RFC 6750).",
            "schema": {"type": "string"},
        }
    },
    503: {
        "Retry-After": {
            "description": "Seconds after which a retry may succeed.",
            "schema": {"type": "integer"},
        }
    },
}


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` entries documenting ``statuses`` as answered in the error shape."""
    documented: dict[int | str, dict[str, Any]] = {}
    for status in statuses:
        entry: dict[str, Any] = {"model": ErrorBody, "description": DESCRIPTIONS[status]}
        if status in _HEADERS:
            entry["headers"] = _HEADERS[status]
        documented[status] = entry
    return documented


#: The ``X-Pagination`` header of the search routes (drift-watch's format).
PAGINATED: dict[int | str, dict[str, Any]] = {
    200: {
        "headers": {
            "X-Pagination": {
                "description": "JSON: total, total_pages, first_page, last_page, page, "
                "previous_page, next_page.",
                "schema": {"type": "string"},
            }
        }
    }
}


def _error_response(status: int) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": DESCRIPTIONS[status],
        "content": {"application/json": {"schema": {"$ref": f"{REF}ErrorBody"}}},
    }
    if status in _HEADERS:
        response["headers"] = _HEADERS[status]
    return response


def shared_statuses(operation: dict[str, Any]) -> set[int]:
    """The error statuses an operation can answer whatever its handler does."""
    statuses = {500}
    if operation.get("security"):
        # A bad token is 401; a token without the service's entitlement is 403; the
        # identity provider or the database behind the caller's record unreachable is 503.
        statuses |= {401, 403, 503}
    if operation.get("parameters") or operation.get("requestBody"):
        statuses.add(422)
    if operation.get("requestBody"):
        # A body that is not even JSON is 400; BodySizeLimit guards every body (413).
        statuses |= {400, 413}
    return statuses


def add_shared_errors(document: dict[str, Any]) -> None:
    """Document the shared error statuses on every operation of an OpenAPI ``document``
    (in place; a route's own entry for a status wins, except FastAPI's own 422 model,
    which is not what the API answers)."""
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    generated = ErrorBody.model_json_schema(ref_template=REF + "{model}")
    for name, schema in generated.pop("$defs", {}).items():
        schemas.setdefault(name, schema)
    schemas.setdefault("ErrorBody", generated)
    for path, operations in document.get("paths", {}).items():
        for method, operation in operations.items():
            if applies_to(method.upper(), path):
                _document_idempotency(operation)
            responses = operation.setdefault("responses", {})
            for status in sorted(shared_statuses(operation)):
                ours = _error_response(status)
                if status == 422 or str(status) not in responses:
                    responses[str(status)] = ours
            operation["responses"] = dict(sorted(responses.items()))
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)


def _document_idempotency(operation: dict[str, Any]) -> None:
    """The ``Idempotency-Key`` header (read by a middleware, so FastAPI cannot see it)."""
    parameters = operation.setdefault("parameters", [])
    if not any(p.get("name") == HEADER for p in parameters):
        parameters.append(
            {
                "name": HEADER,
                "in": "header",
                "required": False,
                "description": (
                    "Makes a retry safe: a repeat with the same key and request answers the "
                    "first answer (header `Idempotent-Replayed: true`) for 24 h; the same key "
                    "with another request is a 422, and while the first still runs a 409."
                ),
                "schema": {
                    "type": "string",
                    "minLength": 1,
                    "maxLength": MAX_KEY_LENGTH,
                    "pattern": "^[\\x20-\\x7e]+$",
                },
            }
        )
    operation.setdefault("responses", {}).setdefault("409", _error_response(409))


def install_openapi(app: FastAPI) -> None:
    """Every generated OpenAPI document of ``app`` gets the shared error statuses (done on
    the document, not the routes, so routers included in any way are covered)."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        document = generate()
        add_shared_errors(document)  # idempotent on FastAPI's cached document
        return document

    app.openapi = openapi  # type: ignore[method-assign]


_BINARY = {"schema": {"type": "string", "format": "binary"}}
_DATA_MEDIA_TYPES: dict[str, Any] = {
    "application/vnd.apache.arrow.stream": _BINARY,
    "application/vnd.apache.parquet": _BINARY,
    "text/csv": {"schema": {"type": "string"}, "example": "x,c\n1.5,a\n2.5,b\n3.5,a\n"},
    "application/json": {
        "schema": {
            "type": "object",
            "required": ["columns"],
            "properties": {
                "columns": {
                    "type": "object",
                    "description": "Column name to its list of values.",
                    "additionalProperties": {"type": "array", "items": {}},
                }
            },
        },
        "example": {"columns": {"x": [1.5, 2.5, 3.5], "c": ["a", "b", "a"]}},
    },
}


#: SageMaker Model Monitor / Flare baseline files, as ``multipart/form-data`` parts.
SAGEMAKER_PARTS: dict[str, Any] = {
    "multipart/form-data": {
        "schema": {
            "type": "object",
            "required": ["statistics"],
            "properties": {
                "statistics": {"type": "string", "format": "binary"},
                "constraints": {"type": "string", "format": "binary"},
            },
        }
    }
}


def data_upload(extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """``openapi_extra=`` for routes that read a table body themselves (baselines, checks):
    the handler parses the raw request, so FastAPI cannot infer the body."""
    return {"requestBody": {"required": True, "content": {**_DATA_MEDIA_TYPES, **(extra or {})}}}
