"""The ``deliveries`` collection: one document per (notification, target), claimed by
workers with a lease, with the record of every attempt.

A delivery is due when ``due_at`` has passed: for a ``pending`` one that is its next
attempt, for a ``sending`` one the end of its lease (the worker that claimed it died, or
hangs), so one atomic claim covers both. Every write after the claim names the lease, so a
worker whose lease ran out cannot overwrite what the next one recorded.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from pymongo import ASCENDING, ReturnDocument

from drift_backend.store.bulk import insert_new
from drift_backend.store.database import Database, Document

PENDING = "pending"
SENDING = "sending"
DELIVERED = "delivered"
FAILED = "failed"
REFUSED = "refused"
FINAL = frozenset({DELIVERED, FAILED, REFUSED})
#: Attempts kept in a delivery's history (the count in ``attempts`` is of all of them).
HISTORY = 20


def delivery_id(notification_id: str, target_id: str) -> str:
    return f"{notification_id}:{target_id}"


async def insert_for(
    db: Database, notification: Document, targets: list[Document], now: datetime
) -> None:
    """One delivery per target; written again (a crash before the notification was marked
    expanded) they are the same documents, so nothing is sent twice."""
    docs = [
        {
            "_id": delivery_id(notification["_id"], target["_id"]),
            "notification_id": notification["_id"],
            "experiment_id": notification["experiment_id"],
            "target_id": target["_id"],
            "target_name": target["name"],
            "kind": target["kind"],
            "state": PENDING,
            "due_at": now,
            "created_at": notification["created_at"],
            "attempts": 0,
            "history": [],
        }
        for target in targets
    ]
    if not docs:
        return
    await insert_new(db.deliveries, docs)  # a repeat finds its deliveries there


async def claim(db: Database, now: datetime, lease_seconds: float) -> Document | None:
    """The longest-due delivery, now this caller's until its lease ends."""
    return await db.deliveries.find_one_and_update(
        {"state": {"$in": [PENDING, SENDING]}, "due_at": {"$lte": now}},
        {
            "$set": {
                "state": SENDING,
                "due_at": now + timedelta(seconds=lease_seconds),
                "lease": uuid.uuid4().hex,
            },
            "$inc": {"attempts": 1},
        },
        sort=[("due_at", ASCENDING)],
        return_document=ReturnDocument.AFTER,
    )


async def finish(
    db: Database,
    claimed: Document,
    state: str,
    record: dict[str, Any] | None,
    due_at: datetime | None = None,
) -> bool:
    """Record an attempt and the delivery's next state (False: the lease was lost)."""
    update: dict[str, Any] = {
        "$set": {"state": state, "due_at": due_at},
        "$unset": {"lease": ""},
    }
    if record is not None:
        update["$set"]["last"] = record
        update["$push"] = {"history": {"$each": [record], "$slice": -HISTORY}}
    result = await db.deliveries.update_one(
        {"_id": claimed["_id"], "lease": claimed["lease"]}, update
    )
    return result.modified_count == 1


async def postpone(db: Database, claimed: Document, due_at: datetime) -> None:
    """Give a claim back unsent (its target's send slot is taken): not an attempt."""
    await db.deliveries.update_one(
        {"_id": claimed["_id"], "lease": claimed["lease"]},
        {
            "$set": {"state": PENDING, "due_at": due_at},
            "$unset": {"lease": ""},
            "$inc": {"attempts": -1},
        },
    )


async def for_notifications(db: Database, notification_ids: list[str]) -> list[Document]:
    cursor = db.deliveries.find({"notification_id": {"$in": notification_ids}})
    return [doc async for doc in cursor]


async def counts(db: Database) -> dict[str, int]:
    pipeline: list[dict[str, Any]] = [{"$group": {"_id": "$state", "count": {"$sum": 1}}}]
    cursor = await db.deliveries.aggregate(pipeline)
    return {str(doc["_id"]): int(doc["count"]) async for doc in cursor}


async def delete_for_experiment(db: Database, experiment_id: str) -> None:
    await db.deliveries.delete_many({"experiment_id": experiment_id})


async def redeliver(db: Database, notification_id: str, now: datetime) -> int:
    """Send a notification's finished deliveries again (a manual redeliver): due now, with a
    fresh retry schedule and age; the history stays. How many were finished."""
    result = await db.deliveries.update_many(
        {"notification_id": notification_id, "state": {"$in": sorted(FINAL)}},
        {"$set": {"state": PENDING, "due_at": now, "attempts": 0, "created_at": now}},
    )
    return result.modified_count
