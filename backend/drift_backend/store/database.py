"""Connection to MongoDB through PyMongo's native async API, and the start-up indexes."""

from __future__ import annotations

from typing import Any

from pymongo import ASCENDING, DESCENDING, AsyncMongoClient, IndexModel
from pymongo.asynchronous.database import AsyncDatabase

Document = dict[str, Any]
Database = AsyncDatabase[Document]

#: Every query the API and the worker make, by collection (``tests/store/test_indexes.py``
#: lists them). Look-ups by ``_id`` alone (reports, meta) need none.
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
    "jobs": [
        IndexModel([("status", ASCENDING), ("created_at", ASCENDING)]),
        IndexModel([("status", ASCENDING), ("lease_until", ASCENDING)]),
        IndexModel([("drift_id", ASCENDING)]),
    ],
    # Kept answers of requests with an Idempotency-Key, for 24 hours (idempotency/).
    "idempotency_keys": [
        IndexModel([("created_at", ASCENDING)], expireAfterSeconds=24 * 3600),
    ],
    "baselines": [
        # Listing newest first; the newest for a model when a check names no baseline.
        IndexModel([("experiment_id", ASCENDING), ("created_at", DESCENDING)]),
        IndexModel(
            [("experiment_id", ASCENDING), ("model", ASCENDING), ("created_at", DESCENDING)]
        ),
    ],
    # GridFS bucket of queued check batches: an experiment's are dropped when it is deleted.
    "batches.files": [IndexModel([("metadata.experiment_id", ASCENDING)])],
    "batches.chunks": [IndexModel([("files_id", ASCENDING), ("n", ASCENDING)], unique=True)],
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
