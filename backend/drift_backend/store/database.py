"""Connection to MongoDB through PyMongo's native async API, and the start-up indexes."""

from __future__ import annotations

from typing import Any

from pymongo import ASCENDING, DESCENDING, AsyncMongoClient, IndexModel
from pymongo.asynchronous.database import AsyncDatabase

Document = dict[str, Any]
Database = AsyncDatabase[Document]

INDEXES: dict[str, list[IndexModel]] = {
    "users": [
        IndexModel([("subject", ASCENDING), ("issuer", ASCENDING)], unique=True),
        IndexModel([("email", ASCENDING)]),
    ],
    "experiments": [
        IndexModel([("name", ASCENDING)], unique=True),
        IndexModel([("permissions.entity", ASCENDING)]),
        IndexModel([("public", ASCENDING)]),
    ],
    "drifts": [
        IndexModel([("experiment_id", ASCENDING), ("created_at", DESCENDING)]),
        IndexModel(
            [("experiment_id", ASCENDING), ("model", ASCENDING), ("created_at", DESCENDING)]
        ),
        IndexModel([("tags", ASCENDING)]),
        IndexModel([("job_status", ASCENDING), ("updated_at", ASCENDING)]),
    ],
    # Listings and the newest baseline (for a model) a check falls back to.
    "baselines": [
        IndexModel([("experiment_id", ASCENDING), ("created_at", DESCENDING)]),
        IndexModel(
            [("experiment_id", ASCENDING), ("model", ASCENDING), ("created_at", DESCENDING)]
        ),
    ],
    # GridFS bucket of baseline profiles: a deleted experiment's files; chunks read in order.
    "baseline_profiles.files": [IndexModel([("metadata.experiment_id", ASCENDING)])],
    "baseline_profiles.chunks": [
        IndexModel([("files_id", ASCENDING), ("n", ASCENDING)], unique=True)
    ],
    "jobs": [
        IndexModel([("status", ASCENDING), ("created_at", ASCENDING)]),
        IndexModel([("status", ASCENDING), ("lease_until", ASCENDING)]),
        IndexModel([("drift_id", ASCENDING)]),
    ],
}


def connect(url: str, *, timeout_ms: int = 5000) -> AsyncMongoClient[Document]:
    """A client that stores and returns timezone-aware UTC datetimes."""
    return AsyncMongoClient(
        url,
        tz_aware=True,
        uuidRepresentation="standard",
        serverSelectionTimeoutMS=timeout_ms,
        connect=False,
    )


async def ensure_indexes(db: Database) -> None:
    for collection, indexes in INDEXES.items():
        await db[collection].create_indexes(indexes)


async def ping(db: Database) -> bool:
    try:
        await db.command("ping")
    except Exception:  # any driver failure means "not ready"
        return False
    return True
