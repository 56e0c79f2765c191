"""The ``alert_rules``, ``alert_groups`` and ``silences`` collections (owned by ``alerts/``).

A group document (one per rule and model) holds its state (``alerts/state.py``), a
``version`` that every decision is written under (compare-and-set: two workers deciding at
once, one wins and the other decides again), ``due_at`` (when time alone may change it: the
worker's tick claims groups past it) and ``outbox``: the notifications decided with that
state, written in the same update, handed to ``notify`` afterwards and then cleared. A worker
that dies in between leaves the outbox for the next tick, and ``notify`` queues each
dedup key once.
"""

from __future__ import annotations

from datetime import datetime

from pymongo import ASCENDING, ReturnDocument
from pymongo.errors import DuplicateKeyError

from drift_backend.store.database import Database, Document

# --- rules ------------------------------------------------------------------------------------


async def insert_rule(db: Database, doc: Document) -> None:
    await db.alert_rules.insert_one(doc)


async def count_rules(db: Database, experiment_id: str) -> int:
    return int(await db.alert_rules.count_documents({"experiment_id": experiment_id}))


async def has_rules(db: Database, experiment_id: str) -> bool:
    return await db.alert_rules.find_one({"experiment_id": experiment_id}, {"_id": 1}) is not None


async def list_rules(db: Database, experiment_id: str) -> list[Document]:
    cursor = db.alert_rules.find({"experiment_id": experiment_id}).sort(
        [("created_at", ASCENDING), ("_id", ASCENDING)]
    )
    return [doc async for doc in cursor]


async def get_rule(db: Database, experiment_id: str, rule_id: str) -> Document | None:
    return await db.alert_rules.find_one({"_id": rule_id, "experiment_id": experiment_id})


async def find_rule(db: Database, rule_id: str) -> Document | None:
    return await db.alert_rules.find_one({"_id": rule_id})


async def update_rule(
    db: Database, experiment_id: str, rule_id: str, fields: Document
) -> Document | None:
    return await db.alert_rules.find_one_and_update(
        {"_id": rule_id, "experiment_id": experiment_id},
        {"$set": fields},
        return_document=ReturnDocument.AFTER,
    )


async def delete_rule(db: Database, experiment_id: str, rule_id: str) -> bool:
    result = await db.alert_rules.delete_one({"_id": rule_id, "experiment_id": experiment_id})
    return result.deleted_count == 1


# --- groups -----------------------------------------------------------------------------------


async def get_group(db: Database, group_id: str) -> Document | None:
    return await db.alert_groups.find_one({"_id": group_id})


async def insert_group(db: Database, doc: Document) -> bool:
    """A new group (``version`` 1); False when another writer made it first."""
    try:
        await db.alert_groups.insert_one(doc)
    except DuplicateKeyError:
        return False
    return True


async def save_group(db: Database, group_id: str, version: int, fields: Document) -> bool:
    """Write a decision made on ``version``; False when another was written since."""
    result = await db.alert_groups.update_one(
        {"_id": group_id, "version": version}, {"$set": {**fields, "version": version + 1}}
    )
    return result.modified_count == 1


async def clear_outbox(db: Database, group_id: str, version: int, due_at: datetime | None) -> None:
    """The outbox was handed over; if a newer decision came meanwhile, its writer hands over
    (again: queued once per key) what it carried, and clears it."""
    await db.alert_groups.update_one(
        {"_id": group_id, "version": version}, {"$set": {"outbox": [], "due_at": due_at}}
    )


async def claim_due(db: Database, now: datetime, until: datetime) -> Document | None:
    """One group whose ``due_at`` has come, pushed to ``until`` so no other worker takes it
    meanwhile (if this one dies, it comes due again then)."""
    return await db.alert_groups.find_one_and_update(
        {"due_at": {"$lte": now}},
        {"$set": {"due_at": until}},
        sort=[("due_at", ASCENDING)],
        return_document=ReturnDocument.BEFORE,
    )


async def wake_groups_of_rule(db: Database, rule_id: str, now: datetime) -> None:
    """The rule's timing changed: its groups work out their due times again now."""
    await db.alert_groups.update_many({"rule_id": rule_id}, {"$set": {"due_at": now}})


async def delete_group(db: Database, group_id: str) -> None:
    await db.alert_groups.delete_one({"_id": group_id})


async def delete_groups_of_rule(db: Database, rule_id: str) -> None:
    await db.alert_groups.delete_many({"rule_id": rule_id})


async def groups_of(db: Database, experiment_id: str, states: list[str]) -> list[Document]:
    cursor = db.alert_groups.find(
        {"experiment_id": experiment_id, "state": {"$in": states}}, {"outbox": 0}
    ).sort([("rule_id", ASCENDING), ("model", ASCENDING)])
    return [doc async for doc in cursor]


async def firing_by_experiment(db: Database) -> dict[str, int]:
    counts: dict[str, int] = {}
    async for doc in db.alert_groups.find({"state": "firing"}, {"experiment_id": 1}):
        counts[doc["experiment_id"]] = counts.get(doc["experiment_id"], 0) + 1
    return counts


async def wake_silenced(db: Database, experiment_id: str, now: datetime) -> None:
    """Groups held back by a silence look again now (the silence was expired early)."""
    await db.alert_groups.update_many(
        {"experiment_id": experiment_id, "muted": "silenced"}, {"$set": {"due_at": now}}
    )


# --- silences ---------------------------------------------------------------------------------


async def insert_silence(db: Database, doc: Document) -> None:
    await db.silences.insert_one(doc)


async def count_active_silences(db: Database, experiment_id: str, now: datetime) -> int:
    return int(
        await db.silences.count_documents({"experiment_id": experiment_id, "ends_at": {"$gt": now}})
    )


async def list_silences(db: Database, experiment_id: str, query: Document) -> list[Document]:
    cursor = db.silences.find({"experiment_id": experiment_id, **query}).sort(
        [("ends_at", ASCENDING), ("_id", ASCENDING)]
    )
    return [doc async for doc in cursor]


async def active_silences(db: Database, experiment_id: str, now: datetime) -> list[Document]:
    return await list_silences(db, experiment_id, {"ends_at": {"$gt": now}})


async def get_silence(db: Database, experiment_id: str, silence_id: str) -> Document | None:
    return await db.silences.find_one({"_id": silence_id, "experiment_id": experiment_id})


async def expire_silence(db: Database, experiment_id: str, silence_id: str, now: datetime) -> None:
    await db.silences.update_one(
        {"_id": silence_id, "experiment_id": experiment_id, "ends_at": {"$gt": now}},
        {"$set": {"ends_at": now}},
    )


# --- an experiment deleted --------------------------------------------------------------------


async def delete_for_experiment(db: Database, experiment_id: str) -> None:
    await db.alert_rules.delete_many({"experiment_id": experiment_id})
    await db.alert_groups.delete_many({"experiment_id": experiment_id})
    await db.silences.delete_many({"experiment_id": experiment_id})
