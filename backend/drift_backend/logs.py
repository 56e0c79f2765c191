"""Log lines that carry the request id: a filter reading the id the ``RequestIds``
middleware set for the request being handled, and the logging configuration that puts it on
every line of the server (uvicorn's access and error logs, ours) and of the worker."""

from __future__ import annotations

import logging
from contextvars import ContextVar
from typing import Any

FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"
ACCESS_FORMAT = (
    '%(asctime)s %(levelname)s [%(request_id)s] %(client_addr)s - "%(request_line)s" '
    "%(status_code)s"
)

#: Set by ``api.request_id.RequestIds`` for the request being handled.
request_id_context: ContextVar[str | None] = ContextVar("request_id", default=None)


def current_request_id() -> str | None:
    """The id of the request being handled, for log lines (None outside a request)."""
    return request_id_context.get()


class RequestIdFilter(logging.Filter):
    """Gives every record a ``request_id`` ("-" outside a request); never drops one."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = current_request_id() or "-"
        return True


def config(level: str = "INFO") -> dict[str, Any]:
    """A ``logging.config.dictConfig`` for uvicorn's ``log_config`` and the worker."""
    request_id = {"()": f"{__name__}.RequestIdFilter"}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"request_id": request_id},
        "formatters": {
            "default": {"format": FORMAT},
            "access": {"()": "uvicorn.logging.AccessFormatter", "fmt": ACCESS_FORMAT},
        },
        "handlers": {
            "default": {
                "class": "logging.StreamHandler",
                "formatter": "default",
                "filters": ["request_id"],
                "stream": "ext://sys.stderr",
            },
            "access": {
                "class": "logging.StreamHandler",
                "formatter": "access",
                "filters": ["request_id"],
                "stream": "ext://sys.stdout",
            },
        },
        "root": {"handlers": ["default"], "level": level.upper()},
        "loggers": {
            "uvicorn": {"level": level.upper()},
            "uvicorn.error": {"level": level.upper()},
            "uvicorn.access": {"handlers": ["access"], "level": level.upper(), "propagate": False},
        },
    }
