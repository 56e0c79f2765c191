"""Request body size limit as a pure ASGI middleware (checked before any handler parses)."""

from __future__ import annotations

import json
import re

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class BodyTooLarge(HTTPException):
    """Raised from ``receive`` when a body without (or with a false) Content-Length grows
    past the limit. An HTTPException, so FastAPI's body parser re-raises it as a 413
    instead of turning it into "400: error parsing the body"."""

    def __init__(self, max_bytes: int, field: str) -> None:
        super().__init__(413, f"{field}: request body exceeds the limit of {max_bytes} bytes")
        self.errors = [{"field": field, "reason": f"larger than {max_bytes} bytes"}]


UPLOAD_PATH = re.compile(
    r"^/api/v1/experiment/[^/]+/"
    # Prediction, ground-truth and reference batches are data uploads too.
    r"(baseline|check|predictions|ground-truth|performance-reference)$"
)


class BodySizeLimit:
    """``max_bytes`` for every request; data uploads (baselines, checks) get ``upload_bytes``."""

    def __init__(self, app: ASGIApp, max_bytes: int, upload_bytes: int | None = None) -> None:
        self.app = app
        self.default_bytes = max_bytes
        self.upload_bytes = upload_bytes or max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        upload = UPLOAD_PATH.match(scope.get("path", "")) is not None
        limit = self.upload_bytes if upload else self.default_bytes
        # Named after the setting behind the limit: data uploads have their own.
        field = "max_bytes" if upload else "max_body_bytes"
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = 0
                if declared > limit:
                    await self._reject(send, limit, field)
                    return
        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit, field)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyTooLarge:
            if not started:
                await self._reject(send, limit, field)

    async def _reject(self, send: Send, limit: int, field: str) -> None:
        body = json.dumps(
            {
                "code": "payload_too_large",
                "status": 413,
                "message": f"{field}: request body exceeds the limit of {limit} bytes",
                "errors": [{"field": field, "reason": f"larger than {limit} bytes"}],
            }
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
