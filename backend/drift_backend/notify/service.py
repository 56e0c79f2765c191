"""What other domains call: queue a notification, read the delivery log, count deliveries,
drop an experiment's targets and notifications."""

from __future__ import annotations

import base64
import binascii
from datetime import datetime
from typing import Any

from drift_backend.errors import NotFound, ValidationFailed
from drift_backend.notify import deliveries, repository, targets
from drift_backend.notify.message import AlertMessage
from drift_backend.notify.schemas import attempt_to_api
from drift_backend.schemas import utcnow
from drift_backend.store.database import Database, Document


async def enqueue(db: Database, message: AlertMessage) -> bool:
    """Queue ``message`` for delivery to its experiment's targets; idempotent on its
    ``dedup_key`` (True when queued now, False when it was queued before). The workers'
    delivery loops hand it to the targets (``message.target_ids``, or all enabled)."""
    return await repository.insert(db, message, utcnow())


async def notifications(db: Database, experiment_id: str, limit: int = 100) -> list[Document]:
    """The experiment's notifications, newest first."""
    return await repository.for_experiment(db, experiment_id, limit)


async def delivery_counts(db: Database) -> dict[str, int]:
    """Deliveries by state: ``pending``, ``sending``, ``delivered``, ``failed``, ``refused``
    (every state present, zero when none), for ``/metrics``."""
    found = await deliveries.counts(db)
    states = (deliveries.PENDING, deliveries.SENDING, *sorted(deliveries.FINAL))
    return {state: found.get(state, 0) for state in states}


async def delete_for_experiment(db: Database, experiment_id: str) -> None:
    """An experiment's targets, notifications and deliveries (the experiment is deleted).
    Deliveries last: a delivery loop handing out a notification meanwhile may still add some."""
    await repository.delete_for_experiment(db, experiment_id)
    await targets.delete_for_experiment(db, experiment_id)
    await deliveries.delete_for_experiment(db, experiment_id)


async def redeliver(db: Database, experiment_id: str, notification_id: str) -> dict[str, Any]:
    """Send a notification again to the targets whose delivery has finished (delivered,
    failed or refused), with the same ``webhook-id``; its log entry."""
    doc = await repository.get(db, notification_id)
    if doc is None or doc["experiment_id"] != experiment_id:
        raise NotFound(f"no notification {notification_id!r} in this experiment")
    await deliveries.redeliver(db, notification_id, utcnow())
    return (await _items(db, [doc]))[0]


def encode_cursor(doc: Document) -> str:
    raw = f"{doc['created_at'].isoformat()}|{doc['_id']}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        at, _, key = raw.partition("|")
        when = datetime.fromisoformat(at)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise ValidationFailed("before", "not a cursor this API gave out") from None
    if not key or when.tzinfo is None:
        raise ValidationFailed("before", "not a cursor this API gave out")
    return when, key


def _overall(notification: Document, own: list[Document]) -> str:
    if notification.get("state") == repository.PENDING:
        return "queued"
    if not own:
        return "no_targets"
    states = {doc["state"] for doc in own}
    if states & {deliveries.PENDING, deliveries.SENDING}:
        return "sending"
    if states == {deliveries.DELIVERED}:
        return "delivered"
    return "failed"


def _delivery(doc: Document) -> dict[str, Any]:
    last = doc.get("last")
    waiting = doc["state"] in (deliveries.PENDING, deliveries.SENDING)
    return {
        "target_id": doc["target_id"],
        "target_name": doc.get("target_name"),
        "kind": doc["kind"],
        "state": doc["state"],
        "attempts": doc["attempts"],
        "next_attempt_at": doc.get("due_at") if waiting else None,
        "last": attempt_to_api(last) if last else None,
        "history": [attempt_to_api(entry) for entry in doc.get("history", [])],
    }


async def delivery_log(
    db: Database, experiment_id: str, before: str | None, limit: int
) -> dict[str, Any]:
    """One page of the experiment's notifications with their deliveries, newest first."""
    after = decode_cursor(before) if before else None
    docs = await repository.page(db, experiment_id, after, limit + 1)
    more = len(docs) > limit
    docs = docs[:limit]
    items = await _items(db, docs)
    return {"items": items, "next": encode_cursor(docs[-1]) if more and docs else None}


async def _items(db: Database, docs: list[Document]) -> list[dict[str, Any]]:
    found = await deliveries.for_notifications(db, [doc["_id"] for doc in docs])
    by_notification: dict[str, list[Document]] = {}
    for doc in found:
        by_notification.setdefault(doc["notification_id"], []).append(doc)
    items = []
    for doc in docs:
        own = sorted(by_notification.get(doc["_id"], []), key=lambda d: str(d["target_id"]))
        items.append(
            {
                "id": doc["_id"],
                "status": doc["status"],
                "rule_id": doc["rule_id"],
                "rule_name": doc["rule_name"],
                "model": doc["model"],
                "summary": doc["summary"],
                "run_id": doc.get("run_id"),
                "created_at": doc["created_at"],
                "state": _overall(doc, own),
                "deliveries": [_delivery(d) for d in own],
            }
        )
    return items
