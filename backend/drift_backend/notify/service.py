"""What other domains call: queue a notification, read what was queued."""

from __future__ import annotations

from drift_backend.notify import repository
from drift_backend.notify.message import AlertMessage
from drift_backend.schemas import utcnow
from drift_backend.store.database import Database, Document


async def enqueue(db: Database, message: AlertMessage) -> bool:
    """Queue ``message`` for delivery to its experiment's targets; idempotent on its
    ``dedup_key`` (True when queued now, False when it was queued before)."""
    return await repository.insert(db, message, utcnow())


async def notifications(db: Database, experiment_id: str, limit: int = 100) -> list[Document]:
    """The experiment's notifications, newest first."""
    return await repository.for_experiment(db, experiment_id, limit)
