"""What a running application holds: settings, the database and the token verifier."""

from __future__ import annotations

from dataclasses import dataclass

import httpx2
from pymongo import AsyncMongoClient

from drift_backend.auth.tokens import TokenVerifier
from drift_backend.settings import Settings
from drift_backend.store.database import Database, Document


@dataclass
class AppContext:
    settings: Settings
    mongo: AsyncMongoClient[Document]
    db: Database
    http: httpx2.AsyncClient
    verifier: TokenVerifier
    indexes_ready: bool = False
