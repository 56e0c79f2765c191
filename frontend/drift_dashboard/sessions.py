"""Server-side sessions in MongoDB (``dashboard_sessions``); the cookie holds an opaque id.

The cookie value is 32 random bytes; the document's ``_id`` is its SHA-256, so a copy of the
collection does not hand out live cookies. Tokens (access, refresh, id token) live only in
the document. ``request.session`` (what authlib uses for its login state) is the document's
``data`` dict, supplied by :class:`SessionMiddleware` in place of Starlette's cookie session.
A session is written only when something in it changed, or to slide its expiry forward.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.cookies import SimpleCookie
from typing import Any

from pymongo import ASCENDING, IndexModel
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import PyMongoError
from starlette.datastructures import MutableHeaders
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from drift_dashboard.settings import DashboardSettings

COLLECTION = "dashboard_sessions"
#: Slide the expiry forward at most this often (each slide is a write).
TOUCH_INTERVAL = timedelta(minutes=5)


def _now() -> datetime:
    return datetime.now(UTC)


def _key(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


def new_csrf_token() -> str:
    return secrets.token_urlsafe(32)


@dataclass
class Session:
    """One visitor's session. ``id`` is None until it is first stored (anonymous visitors
    who never log in cost no write)."""

    id: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    csrf_token: str = field(default_factory=new_csrf_token)
    user: dict[str, Any] | None = None
    tokens: dict[str, Any] | None = None
    expires_at: datetime | None = None
    #: Set by :meth:`regenerate`/:meth:`end`: the stored document to remove on commit.
    stale_key: str | None = None
    ended: bool = False
    _snapshot: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def key(self) -> str | None:
        return _key(self.id) if self.id else None

    @property
    def stored(self) -> bool:
        return self.id is not None

    def _state(self) -> dict[str, Any]:
        return {
            "data": self.data,
            "csrf": self.csrf_token,
            "user": self.user,
            "tokens": self.tokens,
        }

    def mark_clean(self) -> None:
        import copy

        self._snapshot = copy.deepcopy(self._state())

    @property
    def changed(self) -> bool:
        return self._state() != self._snapshot

    def regenerate(self) -> None:
        """A new id and CSRF token for the same visitor (at login: no session fixation)."""
        if self.key and self.stale_key is None:
            self.stale_key = self.key
        self.id = None
        self.data.clear()
        self.csrf_token = new_csrf_token()

    def end(self) -> None:
        """Log out: forget everything, here and in the database."""
        self.regenerate()
        self.user = None
        self.tokens = None
        self.ended = True


class SessionStore:
    def __init__(self, collection: AsyncCollection[dict[str, Any]], lifetime: timedelta) -> None:
        self.collection = collection
        self.lifetime = lifetime

    async def ensure_indexes(self) -> None:
        # MongoDB's TTL monitor removes expired sessions (within a minute or so); reads also
        # check the expiry, so a session is dead the moment it expires.
        await self.collection.create_indexes(
            [IndexModel([("expires_at", ASCENDING)], expireAfterSeconds=0)]
        )

    async def load(self, session_id: str) -> Session | None:
        if not session_id or len(session_id) > 128:
            return None
        doc = await self.collection.find_one({"_id": _key(session_id)})
        if doc is None:
            return None
        expires_at = _aware(doc["expires_at"])
        if expires_at <= _now():
            return None
        session = Session(
            id=session_id,
            data=dict(doc.get("data") or {}),
            csrf_token=doc["csrf"],
            user=doc.get("user"),
            tokens=doc.get("tokens"),
            expires_at=expires_at,
        )
        session.mark_clean()
        return session

    async def load_tokens(self, session: Session) -> dict[str, Any] | None:
        doc = await self.collection.find_one({"_id": session.key}, {"tokens": 1})
        return None if doc is None else doc.get("tokens")

    async def save_tokens(self, session: Session, tokens: dict[str, Any]) -> None:
        session.tokens = tokens
        await self.collection.update_one({"_id": session.key}, {"$set": {"tokens": tokens}})
        session.mark_clean()

    def _needs_touch(self, session: Session) -> bool:
        if session.expires_at is None:
            return True
        return session.expires_at - _now() < self.lifetime - TOUCH_INTERVAL

    async def commit(self, session: Session) -> bool:
        """Store what changed; True when the cookie must be (re)sent."""
        if session.stale_key is not None:
            await self.collection.delete_one({"_id": session.stale_key})
            session.stale_key = None
        if session.ended:
            return False
        if not session.changed and not (session.stored and self._needs_touch(session)):
            return False
        issued = session.id is None
        if issued:
            session.id = secrets.token_urlsafe(32)
        now = _now()
        session.expires_at = now + self.lifetime
        await self.collection.update_one(
            {"_id": session.key},
            {
                "$set": {**session._state(), "expires_at": session.expires_at},
                "$setOnInsert": {"created_at": now},
            },
            upsert=True,
        )
        session.mark_clean()
        # The cookie's Max-Age slides with the document's expiry.
        return True


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


class SessionMiddleware:
    """Loads the session for every HTTP request into ``scope["session"]`` (its ``data``,
    for authlib) and ``scope["drift_session"]``, and commits it when the response starts."""

    def __init__(
        self, app: ASGIApp, store: Callable[[], SessionStore], settings: DashboardSettings
    ) -> None:
        self.app = app
        # The store is built at start-up (its MongoDB client belongs to the running loop).
        self._store = store
        self.cookie_name = settings.cookie_name
        self.secure = not settings.is_development
        self.max_age = settings.session_lifetime_seconds

    @property
    def store(self) -> SessionStore:
        return self._store()

    def _cookie_value(self, scope: Scope) -> str | None:
        for name, value in scope.get("headers", []):
            if name == b"cookie":
                jar: SimpleCookie = SimpleCookie()
                try:
                    jar.load(value.decode("latin-1"))
                except Exception:  # noqa: S112 (a malformed cookie header is no session)
                    continue
                if self.cookie_name in jar:
                    return jar[self.cookie_name].value
        return None

    def _set_cookie(self, headers: MutableHeaders, value: str, max_age: int) -> None:
        parts = [
            f"{self.cookie_name}={value}",
            "Path=/",
            f"Max-Age={max_age}",
            "HttpOnly",
            "SameSite=Lax",
        ]
        if self.secure:
            parts.append("Secure")
        headers.append("set-cookie", "; ".join(parts))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        cookie = self._cookie_value(scope)
        try:
            session = await self.store.load(cookie) if cookie else None
        except PyMongoError:
            # Without the session store nobody's login can be read: say so, briefly.
            unavailable = PlainTextResponse(
                "The dashboard's session store is unavailable; try again shortly.",
                status_code=503,
                headers={"Retry-After": "5"},
            )
            await unavailable(scope, receive, send)
            return
        if session is None:
            session = Session()
            session.mark_clean()
        scope["session"] = session.data
        scope["drift_session"] = session

        async def send_with_cookie(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                if await self.store.commit(session):
                    assert session.id is not None
                    self._set_cookie(headers, session.id, self.max_age)
                elif cookie and not session.stored:
                    # Logged out, expired or unknown: drop the browser's stale cookie.
                    self._set_cookie(headers, "", 0)
            await send(message)

        await self.app(scope, receive, send_with_cookie)
