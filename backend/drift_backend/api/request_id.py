"""Request ids, and the JSON 500 of last resort, as a pure ASGI middleware.

Every response carries ``X-Request-ID``: the caller's own, when it sent a sane one (so a
request can be followed through a proxy and our log), else a fresh one. An exception no
handler turned into an answer becomes a JSON 500 with that id, and its traceback is logged
with it.

The 500 is answered here, and the exception not re-raised, on purpose: Starlette's
``ServerErrorMiddleware`` would answer it in plain text and then re-raise, and uvicorn closes
the connection of an application that raised, so the caller's next request on that
keep-alive connection was reset. Pure ASGI rather than ``BaseHTTPMiddleware``, so request
bodies keep streaming through it.
"""

from __future__ import annotations

import json
import logging
import re
import uuid

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from drift_backend.logs import request_id_context

log = logging.getLogger(__name__)

HEADER = b"x-request-id"
#: Ids taken from callers: bounded, and only characters that are harmless in a header, a log
#: line or a URL (UUIDs, ULIDs, base64 and the ids proxies generate all fit).
SANE_ID = re.compile(r"[A-Za-z0-9._:@+/=-]{1,128}")


def _incoming(scope: Scope) -> str | None:
    for name, value in scope.get("headers", []):
        if name == HEADER:
            text = value.decode("latin-1")
            return text if SANE_ID.fullmatch(text) else None
    return None


class RequestIds:
    """Outermost middleware: add it last."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _incoming(scope) or uuid.uuid4().hex
        token = request_id_context.set(request_id)
        started = finished = False

        async def send_with_id(message: Message) -> None:
            nonlocal started, finished
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                finished = True
            elif message["type"] == "http.response.start":
                started = True
                headers = [
                    (name, value)
                    for name, value in message.get("headers", [])
                    if name.lower() != HEADER
                ]
                headers.append((HEADER, request_id.encode("latin-1")))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            log.exception(
                "unexpected error answering %s %s (request id %s)",
                scope.get("method", "?"),
                scope.get("path", "?"),
                request_id,
            )
            if finished:  # after the answer (a background task): the connection is fine
                return
            if started:  # half an answer is out: only closing the connection can say so
                raise
            await _internal_error(send_with_id, request_id)
        finally:
            request_id_context.reset(token)


async def _internal_error(send: Send, request_id: str) -> None:
    body = json.dumps(
        {
            "code": "internal_error",
            "status": 500,
            "message": f"unexpected error; quote request id {request_id} when reporting it",
            "request_id": request_id,
        }
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 500,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
