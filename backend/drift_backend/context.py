"""What a running application holds: settings, the database and the token verifier."""

from __future__ import annotations

from dataclasses import dataclass, field

import httpx2
from pymongo import AsyncMongoClient

from drift_backend.auth.tokens import TokenVerifier
from drift_backend.baselines.service import ProfileCache
from drift_backend.settings import Settings
from drift_backend.store.database import Database, Document
from drift_backend.users.cache import UserCache


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
