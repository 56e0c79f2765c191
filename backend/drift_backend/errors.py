"""One error base class, rendered everywhere as ``{code, status, message}`` (+ ``errors``).

Services raise these; the web layer renders them (:mod:`drift_backend.api.errors`), so this
module knows nothing of FastAPI."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError as PydanticValidationError

#: What every 503 tells clients to wait before trying again, in seconds.
RETRY_AFTER_SECONDS = 5


class APIError(Exception):
    status: int = 500
    code: str = "internal_error"

    def __init__(
        self,
        message: str,
        *,
        errors: list[dict[str, str]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.errors = errors
        self.headers = headers

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"code": self.code, "status": self.status, "message": self.message}
        if self.errors is not None:
            body["errors"] = self.errors
        return body


class BadRequest(APIError):
    status = 400
    code = "bad_request"


class Unauthorized(APIError):
    status = 401
    code = "unauthorized"

    def __init__(self, message: str, *, error: str = "invalid_token") -> None:
        description = message.replace('"', "'")
        super().__init__(
            message,
            headers={
                "WWW-Authenticate": f'Bearer error="{error}", error_description="{description}"'
            },
        )


class Forbidden(APIError):
    status = 403
    code = "forbidden"


class NotFound(APIError):
    status = 404
    code = "not_found"

    @classmethod
    def naming(cls, field: str, reason: str) -> NotFound:
        """A 404 about what one request field names (``?run=`` a run the experiment does
        not have): the field in ``errors`` as a 422 gives it, so clients match on the field,
        never on the message's wording."""
        return cls(f"{field}: {reason}", errors=[{"field": field, "reason": reason}])


class Conflict(APIError):
    status = 409
    code = "conflict"


class PayloadTooLarge(APIError):
    status = 413
    code = "payload_too_large"


class ValidationFailed(APIError):
    status = 422
    code = "validation_error"

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}", errors=[{"field": field, "reason": reason}])


def first_problem(error: PydanticValidationError, prefix: str = "") -> tuple[str, str]:
    """``(field, reason)`` of a pydantic error's first problem, the field dotted under
    ``prefix`` (the name of what was validated), for one-field error answers."""
    first = error.errors()[0]
    where = ".".join(str(part) for part in first["loc"])
    field = ".".join(part for part in (prefix, where) if part) or "body"
    return field, str(first["msg"])


class ServiceUnavailable(APIError):
    """Something we depend on (the database, an identity provider) cannot answer now."""

    status = 503
    code = "service_unavailable"

    def __init__(self, message: str, *, retry_after: int = RETRY_AFTER_SECONDS) -> None:
        super().__init__(message, headers={"Retry-After": str(retry_after)})
