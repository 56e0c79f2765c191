"""The ``Idempotency-Key`` middleware (pure ASGI, so a 256 MB upload streams through once).

It sits inside ``BodySizeLimit``: bodies it reads (to fingerprint a repeat) are limited too.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging

from pymongo.errors import PyMongoError
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from drift_backend.api.deps import identity_of
from drift_backend.auth.identity import Identity
from drift_backend.context import AppContext
from drift_backend.errors import APIError, Conflict, ServiceUnavailable, ValidationFailed
from drift_backend.idempotency.keys import (
    HEADER,
    REPLAYED_HEADER,
    InvalidKey,
    applies_to,
    fingerprint_start,
    parse_key,
    record_id,
)
from drift_backend.idempotency.repository import (
    LEASE,
    Acquired,
    Completed,
    InProgress,
    Records,
)
from drift_backend.store.database import database_unavailable

log = logging.getLogger(__name__)

#: Headers a replay repeats; per-request ones (request ids, dates) are the replay's own.
KEPT_HEADERS = frozenset({b"content-type", b"location", b"x-pagination"})
#: Answers larger than this are not kept (a record must stay far below MongoDB's 16 MB);
#: the creating routes answer a few hundred kilobytes at most.
MAX_KEPT_BODY = 8 * 1024 * 1024
_HEADER_NAME = HEADER.lower().encode()


class Idempotency:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not applies_to(scope["method"], scope["path"]):
            await self.app(scope, receive, send)
            return
        values = [value for name, value in scope["headers"] if name == _HEADER_NAME]
        if not values:
            await self.app(scope, receive, send)
            return
        context: AppContext = scope["app"].state.context
        identity = await _identity(scope, context)
        if identity is None:  # the route answers its own 401 or 403
            await self.app(scope, receive, send)
            return
        try:
            key = parse_key(values)
        except InvalidKey as invalid:
            await _send_error(send, ValidationFailed(HEADER, str(invalid)))
            return
        records = Records(context.db)
        rid = record_id(identity.issuer, identity.subject, key)
        content_type = next((v for n, v in scope["headers"] if n == b"content-type"), b"")
        digest = fingerprint_start(
            scope["method"],
            scope["path"],
            scope.get("query_string", b""),
            content_type.decode("latin-1"),
        )
        try:
            outcome = await records.acquire(rid, identity.issuer, identity.subject, key)
        except PyMongoError as error:
            if not database_unavailable(error):
                raise  # a bug, not an outage: a JSON 500 with a request id, as elsewhere
            log.warning("idempotency record unavailable", exc_info=True)
            await _send_error(
                send,
                ServiceUnavailable("the database cannot be reached"),
            )
            return
        if isinstance(outcome, InProgress):
            busy = Conflict(
                f"{HEADER}: a request with this key is still in progress; retry later",
                errors=[{"field": HEADER, "reason": "a request with this key is in progress"}],
                headers={"Retry-After": "1"},
            )
            await _send_error(send, busy)
        elif isinstance(outcome, Completed):
            await _replay(outcome, digest, receive, send)
        else:
            await _run_once(self.app, scope, receive, send, records, rid, outcome, digest)


async def _identity(scope: Scope, context: AppContext) -> Identity | None:
    """The verified caller, or None for anonymous requests and refused tokens."""
    try:
        return await identity_of(Request(scope), context)
    except APIError:
        return None


async def _run_once(
    app: ASGIApp,
    scope: Scope,
    receive: Receive,
    send: Send,
    records: Records,
    rid: str,
    acquired: Acquired,
    digest: hashlib._Hash,
) -> None:
    """Run the request while fingerprinting its body; keep a 2xx answer, release otherwise.

    The answer's last body message is held until the record is written, so a client that
    has the answer never finds its key still pending.
    """
    body_done = False
    status = 0
    kept_headers: list[tuple[str, str]] = []
    body = bytearray()
    keep = True
    too_large = False
    held: Message | None = None

    async def hashing_receive() -> Message:
        nonlocal body_done
        message = await receive()
        if message["type"] == "http.request":
            digest.update(message.get("body", b""))
            body_done = body_done or not message.get("more_body", False)
        return message

    async def capturing_send(message: Message) -> None:
        nonlocal status, keep, too_large, held
        if message["type"] == "http.response.start":
            status = int(message["status"])
            keep = 200 <= status < 300
            kept_headers.extend(
                (name.decode("latin-1"), value.decode("latin-1"))
                for name, value in message.get("headers", [])
                if name.lower() in KEPT_HEADERS
            )
        elif message["type"] == "http.response.body":
            if keep:
                body.extend(message.get("body", b""))
                too_large = len(body) > MAX_KEPT_BODY
                keep = not too_large
            if not message.get("more_body", False):
                held = message
                return
        await send(message)

    async def keep_lease() -> None:
        while True:
            await asyncio.sleep(LEASE.total_seconds() / 3)
            with contextlib.suppress(PyMongoError):
                await records.extend(rid, acquired.owner)

    lease = asyncio.create_task(keep_lease())
    stored = False
    try:
        try:
            await app(scope, hashing_receive, capturing_send)
        finally:
            lease.cancel()
        if held is not None and keep:
            # A route that ignores its body (POST /user) still has it fingerprinted whole.
            while not body_done:
                message = await receive()
                if message["type"] != "http.request":
                    break
                digest.update(message.get("body", b""))
                body_done = not message.get("more_body", False)
            if body_done:
                try:
                    await records.complete(
                        rid, acquired.owner, digest.hexdigest(), status, kept_headers, bytes(body)
                    )
                    stored = True
                except PyMongoError:
                    log.warning("could not keep an idempotent answer", exc_info=True)
        elif too_large:
            log.warning("answer of %s too large to keep for its idempotency key", scope["path"])
    finally:
        if not stored:
            with contextlib.suppress(PyMongoError):
                await records.release(rid, acquired.owner)
    if held is not None:
        await send(held)


async def _replay(outcome: Completed, digest: hashlib._Hash, receive: Receive, send: Send) -> None:
    """Answer the kept response when this request is the first one again, else a 422."""
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return  # the client left before sending its whole body
        digest.update(message.get("body", b""))
        if not message.get("more_body", False):
            break
    if digest.hexdigest() != outcome.fingerprint:
        reason = (
            "already used for another request (method, path, query or body) in the last "
            "24 hours; send a new key"
        )
        await _send_error(send, ValidationFailed(HEADER, reason))
        return
    headers = [(name.encode("latin-1"), value.encode("latin-1")) for name, value in outcome.headers]
    headers += [
        (b"content-length", str(len(outcome.body)).encode()),
        (REPLAYED_HEADER.lower().encode(), b"true"),
    ]
    await send({"type": "http.response.start", "status": outcome.status, "headers": headers})
    await send({"type": "http.response.body", "body": outcome.body})


async def _send_error(send: Send, error: APIError) -> None:
    body = json.dumps(error.body()).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
    ]
    headers += [(k.lower().encode(), v.encode()) for k, v in (error.headers or {}).items()]
    await send({"type": "http.response.start", "status": error.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
