"""What a running application holds: settings, the database and the token verifier."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import httpx2
from pymongo import AsyncMongoClient

from drift_backend.auth.tokens import TokenVerifier
from drift_backend.baselines.service import ProfileCache
from drift_backend.settings import Settings
from drift_backend.store.database import Database, Document


@dataclass
class UserCache:
    """Registered users by (subject, issuer) for a few seconds.

    Every authenticated request needs its user record; a short cache of found records saves a
    database round trip per request. Only hits are cached, so a new registration is seen at
    once; an email change shows after at most ``ttl`` seconds.
    """

    ttl: float
    entries: dict[tuple[str, str], tuple[float, dict[str, Any]]] = field(default_factory=dict)

    async def get(self, db: Database, subject: str, issuer: str) -> dict[str, Any] | None:
        key = (subject, issuer)
        now = time.monotonic()
        hit = self.entries.get(key)
        if hit is not None and hit[0] > now:
            return hit[1]
        user = await db.users.find_one({"subject": subject, "issuer": issuer})
        if user is None or self.ttl <= 0:
            self.entries.pop(key, None)
            return user
        if len(self.entries) >= 10_000:
            self.entries = {k: v for k, v in self.entries.items() if v[0] > now}
        self.entries[key] = (now + self.ttl, user)
        return user

    def forget(self, subject: str, issuer: str) -> None:
        self.entries.pop((subject, issuer), None)


@dataclass
class AppContext:
    settings: Settings
    mongo: AsyncMongoClient[Document]
    db: Database
    http: httpx2.AsyncClient
    verifier: TokenVerifier
    users: UserCache
    profiles: ProfileCache = field(default_factory=ProfileCache)
    indexes_ready: bool = False
