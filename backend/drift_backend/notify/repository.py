"""The ``notifications`` collection: the outbox of alert notifications and their delivery log."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING
from pymongo.errors import DuplicateKeyError

from drift_backend.notify.message import AlertMessage, FeatureAlert
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


#: A queued notification whose deliveries (one per target) are written.
EXPANDED = "expanded"


def message_from(doc: Document) -> AlertMessage:
    """The :class:`AlertMessage` a stored notification was queued from."""
    fields = {name: doc[name] for name in AlertMessage.__dataclass_fields__ if name in doc}
    fields["dedup_key"] = doc["_id"]
    fields["features"] = tuple(FeatureAlert(**f) for f in doc.get("features", []))
    if doc.get("target_ids") is not None:
        fields["target_ids"] = tuple(doc["target_ids"])
    return AlertMessage(**fields)


async def get(db: Database, notification_id: str) -> Document | None:
    return await db.notifications.find_one({"_id": notification_id})


async def waiting_for_expansion(db: Database, limit: int) -> list[Document]:
    cursor = db.notifications.find({"state": PENDING}).sort("created_at", ASCENDING).limit(limit)
    return [doc async for doc in cursor]


async def mark_expanded(db: Database, notification_id: str, target_ids: list[str]) -> None:
    await db.notifications.update_one(
        {"_id": notification_id, "state": PENDING},
        {"$set": {"state": EXPANDED, "delivered_to": target_ids}},
    )


async def page(
    db: Database, experiment_id: str, before: tuple[datetime, str] | None, limit: int
) -> list[Document]:
    """Newest first, strictly older than ``before`` (``created_at``, ``_id``) when given."""
    query: dict[str, Any] = {"experiment_id": experiment_id}
    if before is not None:
        at, key = before
        query["$or"] = [{"created_at": {"$lt": at}}, {"created_at": at, "_id": {"$lt": key}}]
    cursor = (
        db.notifications.find(query)
        .sort([("created_at", DESCENDING), ("_id", DESCENDING)])
        .limit(limit)
    )
    return [doc async for doc in cursor]


async def delete_for_experiment(db: Database, experiment_id: str) -> None:
    await db.notifications.delete_many({"experiment_id": experiment_id})
