"""Registered users by (subject, issuer) for a few seconds."""

from __future__ import annotations

from typing import Any

from cachetools import TTLCache

from drift_backend.store.database import Database

#: Users kept per process; beyond it the least recently used go first.
CACHED_USERS = 10_000


class UserCache:
    """Every authenticated request needs its user record; a short cache of found records saves
    a database round trip per request. Only hits are cached, so a new registration is seen at
    once; an email change shows after at most ``ttl`` seconds (at once on this replica, which
    ``forget``s the record it updates).
    """

    def __init__(self, ttl: float, maxsize: int = CACHED_USERS) -> None:
        self.ttl = ttl
        self._entries: TTLCache[tuple[str, str], dict[str, Any]] | None = (
            TTLCache(maxsize, ttl) if ttl > 0 else None
        )

    async def get(self, db: Database, subject: str, issuer: str) -> dict[str, Any] | None:
        key = (subject, issuer)
        if self._entries is not None:
            hit = self._entries.get(key)
            if hit is not None:
                return hit
        user = await db.users.find_one({"subject": subject, "issuer": issuer})
        if user is not None and self._entries is not None:
            self._entries[key] = user
        return user

    def forget(self, subject: str, issuer: str) -> None:
        if self._entries is not None:
            self._entries.pop((subject, issuer), None)

    def __len__(self) -> int:
        return 0 if self._entries is None else len(self._entries)
