"""The ``notifications`` collection: the outbox of alert notifications and their delivery log."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Any

from pymongo import DESCENDING
from pymongo.errors import DuplicateKeyError

from drift_backend.notify.message import AlertMessage
from drift_backend.store.database import Database, Document

PENDING = "pending"


async def insert(db: Database, message: AlertMessage, now: datetime) -> bool:
    """Queue ``message`` under its ``dedup_key``; False when it was queued already."""
    doc: dict[str, Any] = asdict(message)
    doc.pop("dedup_key")
    doc["features"] = [dict(f) for f in doc["features"]]
    doc["target_ids"] = list(message.target_ids) if message.target_ids is not None else None
    doc |= {
        "_id": message.dedup_key,
        "group_key": message.group_key,
        "state": PENDING,
        "created_at": now,
        "next_attempt_at": now,
        "attempts": 0,
    }
    try:
        await db.notifications.insert_one(doc)
    except DuplicateKeyError:
        return False
    return True


async def for_experiment(db: Database, experiment_id: str, limit: int) -> list[Document]:
    cursor = (
        db.notifications.find({"experiment_id": experiment_id})
        .sort([("created_at", DESCENDING), ("_id", DESCENDING)])
        .limit(limit)
    )
    return [doc async for doc in cursor]
