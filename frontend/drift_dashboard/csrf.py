"""CSRF protection for every state-changing request (anything but GET, HEAD, OPTIONS).

Two checks, both required: the request comes from our own origin (``Origin``, else
``Referer``, equals ``public_url``'s origin), and it carries the session's CSRF token, in the
``X-CSRF-Token`` header (htmx, set by app.js) or a ``csrf_token`` form field. A request without
a stored session has no token to match and is refused as well. Failures answer 403.
"""

from __future__ import annotations

import hmac
from urllib.parse import parse_qs, urlsplit

from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from drift_dashboard.sessions import Session

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
FIELD = "csrf_token"
HEADER = b"x-csrf-token"
#: Form bodies larger than this are not parsed for the token (our forms are small).
MAX_FORM_BYTES = 64 * 1024


def _origin_of(url: str) -> str | None:
    parts = urlsplit(url)
    if not parts.scheme or not parts.netloc:
        return None
    return f"{parts.scheme}://{parts.netloc}"


def same_origin(headers: dict[bytes, bytes], expected: str) -> bool:
    origin = headers.get(b"origin")
    if origin is not None:
        return origin.decode("latin-1") == expected
    referer = headers.get(b"referer")
    if referer is not None:
        return _origin_of(referer.decode("latin-1")) == expected
    # Browsers send Origin on every cross-origin POST (and on same-origin ones too): a
    # request with neither header is not from a browser page and is refused.
    return False


def token_matches(session: Session | None, token: str | None) -> bool:
    if session is None or not session.stored or not token:
        return False
    return hmac.compare_digest(token.encode(), session.csrf_token.encode())


class CSRFMiddleware:
    def __init__(self, app: ASGIApp, public_origin: str) -> None:
        self.app = app
        self.public_origin = public_origin

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in SAFE_METHODS:
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers", []))
        if not same_origin(headers, self.public_origin):
            await _refuse("cross-origin request refused")(scope, receive, send)
            return
        session: Session | None = scope.get("drift_session")
        header_token = headers.get(HEADER)
        if header_token is not None:
            ok = token_matches(session, header_token.decode("latin-1"))
            if not ok:
                await _refuse("missing or wrong CSRF token")(scope, receive, send)
                return
            await self.app(scope, receive, send)
            return
        # No header: the token must be in an urlencoded form body, which we read here and
        # replay to the application unchanged.
        content_type = headers.get(b"content-type", b"").split(b";")[0].strip()
        if content_type != b"application/x-www-form-urlencoded":
            await _refuse("missing CSRF token")(scope, receive, send)
            return
        body = b""
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > MAX_FORM_BYTES:
                await _refuse("form too large")(scope, receive, send)
                return
        values = parse_qs(body.decode("utf-8", errors="replace")).get(FIELD, [])
        if len(values) != 1 or not token_matches(session, values[0]):
            await _refuse("missing or wrong CSRF token")(scope, receive, send)
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)


def _refuse(reason: str) -> PlainTextResponse:
    return PlainTextResponse(f"Forbidden: {reason}.", status_code=403)
