"""The exception tree. Everything the SDK raises derives from :class:`DriftMonitorError`.

::

    DriftMonitorError
    ├── ConfigurationError        missing URL, bad settings, no token where one is needed,
    │                             pyarrow/numpy missing for DataFrames or summary mode
    ├── DataError                 the data given cannot be sent (also a ValueError)
    ├── TransportError            the server could not be reached (after retries);
    │                             ``maybe_processed`` says whether an attempt may have arrived
    ├── CheckFailed               a server-side check finished as Failed
    ├── CheckTimeout              a server-side check still ran at the deadline (a TimeoutError)
    └── APIError                  the server answered with an error body; ``errors`` the
                                  fields at fault (``fields`` their names) where it names any
        ├── AuthenticationError   401
        ├── PermissionDeniedError 403
        ├── NotFoundError         404
        │   └── ExperimentNotFound  (also a ValueError, as in drift-monitor 1.1.1)
        ├── ConflictError         409
        │   └── ExperimentExists    (also a ValueError, as in drift-monitor 1.1.1)
        ├── PayloadTooLargeError  413 (a request limit: errors[].field names it)
        ├── UnsupportedMediaTypeError 415
        ├── ValidationError       422
        └── ServerError           5xx
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx2

__all__ = [
    "APIError",
    "AuthenticationError",
    "CheckFailed",
    "CheckTimeout",
    "ConfigurationError",
    "ConflictError",
    "DataError",
    "DriftMonitorError",
    "ExperimentExists",
    "ExperimentNotFound",
    "FieldError",
    "NotFoundError",
    "PayloadTooLargeError",
    "PermissionDeniedError",
    "ServerError",
    "TransportError",
    "UnsupportedMediaTypeError",
    "ValidationError",
]


class DriftMonitorError(Exception):
    """Base class of every error raised by the SDK."""


class ConfigurationError(DriftMonitorError):
    """The client is not configured well enough to make this request."""


class TransportError(DriftMonitorError):
    """The request never got an answer (connection refused, timeout, TLS failure, ...).

    :attr:`maybe_processed` is ``False`` when no attempt can have reached the server (every
    one failed to connect), so sending the request again under a new key is safe.
    """

    maybe_processed: bool = True


class DataError(DriftMonitorError, ValueError):
    """The data given to upload or check cannot be sent (unknown type or file, bad column)."""


class CheckFailed(DriftMonitorError):
    """A server-side check finished as Failed; :attr:`drift` holds the run and its error."""

    def __init__(self, message: str, drift: Any = None) -> None:
        super().__init__(message)
        self.drift = drift


class CheckTimeout(DriftMonitorError, TimeoutError):
    """A server-side check was still Running at the deadline; :attr:`drift_id` names it.

    The check goes on on the server: read its report later with ``Client.get_report``.
    """

    def __init__(self, message: str, drift_id: str) -> None:
        super().__init__(message)
        self.drift_id = drift_id


@dataclass(frozen=True)
class FieldError:
    """One entry of an error body's ``errors`` list: always there on a 422, on a 413 (the
    limit) and on a 404 about what a request field names (``run``, ``model``)."""

    field: str
    reason: str


class APIError(DriftMonitorError):
    """The server answered with an error status and (usually) a JSON error body."""

    def __init__(
        self,
        message: str,
        *,
        status: int,
        code: str = "error",
        errors: list[FieldError] | None = None,
        response: httpx2.Response | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.errors: list[FieldError] = errors or []
        self.response = response

    @property
    def fields(self) -> tuple[str, ...]:
        """The names of the fields the answer is about (``errors``), in order; empty when it
        names none. Match on these, not on the message, whose wording may change."""
        return tuple(error.field for error in self.errors)

    def __str__(self) -> str:
        return f"{self.status} {self.code}: {self.message}"


class AuthenticationError(APIError):
    """401: the token is missing, invalid or expired."""


class PermissionDeniedError(APIError):
    """403: the token's user may not do this."""


class NotFoundError(APIError):
    """404: no such resource (or not visible to the caller)."""


class ConflictError(APIError):
    """409: duplicate name, finished run, already registered, ..."""


class PayloadTooLargeError(APIError):
    """413: a request limit (``max_bytes``, ``max_rows``, ``max_columns``) was exceeded."""


class UnsupportedMediaTypeError(APIError):
    """415: the server does not read this body format."""


class ValidationError(APIError):
    """422: the request was refused; see :attr:`errors` for the fields."""


class ServerError(APIError):
    """5xx: the server failed (after retries, where the request was safe to retry).

    :attr:`maybe_processed`: whether an attempt may have been carried out before the answer
    was lost (a read timeout, or a 502/504 from a proxy in front of the server).
    """

    maybe_processed: bool = True


class ExperimentNotFound(NotFoundError, ValueError):
    """No experiment with this name is visible to the caller."""

    def __init__(self, name: str) -> None:
        super().__init__(
            f"experiment {name!r} not found (or not readable with this token)",
            status=404,
            code="not_found",
        )
        self.name = name


class ExperimentExists(ConflictError, ValueError):
    """An experiment with this name already exists."""


_BY_STATUS: dict[int, type[APIError]] = {
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    413: PayloadTooLargeError,
    415: UnsupportedMediaTypeError,
    422: ValidationError,
}


#: Answers that mean the server (or its database) cannot be reached right now.
UNAVAILABLE = frozenset({502, 503, 504})


def unreachable(exc: BaseException) -> bool:
    """Whether ``exc`` says the server cannot be reached now (rather than refused): what
    sends a record to the spool."""
    if isinstance(exc, TransportError):
        return True
    return isinstance(exc, ServerError) and exc.status in UNAVAILABLE


def error_from_response(response: httpx2.Response) -> APIError:
    """Build the matching :class:`APIError` from a failed response."""
    status = response.status_code
    code = "error"
    message = response.reason_phrase or f"HTTP {status}"
    errors: list[FieldError] = []
    body: Any = None
    try:
        body = response.json()
    except ValueError:
        # Proxies answer 502/503 with HTML; keep a short excerpt for the message.
        text = response.text.strip()
        if text:
            message = text[:200]
    if isinstance(body, dict):
        code = str(body.get("code", code))
        message = str(body.get("message", body.get("detail", message)))
        for item in body.get("errors") or []:
            if isinstance(item, dict):
                errors.append(FieldError(str(item.get("field", "")), str(item.get("reason", ""))))
    cls = _BY_STATUS.get(status, ServerError if status >= 500 else APIError)
    return cls(message, status=status, code=code, errors=errors, response=response)
