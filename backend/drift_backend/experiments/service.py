from __future__ import annotations

import uuid
from typing import Any

from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

from drift_backend.alerts import service as alerts
from drift_backend.auth.caller import Caller
from drift_backend.auth.permissions import Level, has_manager, level_of
from drift_backend.baselines.service import delete_experiment_baselines
from drift_backend.charts import check_counts, run_counts
from drift_backend.checks import service as checks
from drift_backend.drifts import service as drifts
from drift_backend.errors import Conflict, Forbidden, NotFound, ValidationFailed
from drift_backend.jobs import queue as jobs
from drift_backend.notify import service as notify
from drift_backend.performance import service as performance
from drift_backend.schemas import utcnow
from drift_backend.store.database import Database
from drift_backend.store.filters import BOOLEAN, STRING, TIMESTAMP, Field, FilterSchema

EXPERIMENT_FILTER = FilterSchema(
    fields={
        "id": Field("_id", STRING),
        "_id": Field("_id", STRING),
        "name": Field("name", STRING),
        "description": Field("description", STRING),
        "public": Field("public", BOOLEAN),
        "created_at": Field("created_at", TIMESTAMP),
        "updated_at": Field("updated_at", TIMESTAMP),
        "permissions.entity": Field("permissions.entity", STRING),
        "permissions.level": Field("permissions.level", STRING),
    }
)
EXPERIMENT_SORT_FIELDS = {"created_at", "updated_at", "name", "id"}


def to_api(doc: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": doc["_id"],
        "created_at": doc["created_at"],
        "updated_at": doc.get("updated_at", doc["created_at"]),
        "name": doc["name"],
        "description": doc.get("description"),
        "public": bool(doc.get("public", False)),
        "permissions": [
            {"entity": entry["entity"], "level": entry["level"]}
            for entry in doc.get("permissions", [])
        ],
        "drift_config": doc.get("drift_config") or {},
        "default_baselines": doc.get("default_baselines", []),
        "metrics": metrics_settings(doc),
    }


def metrics_settings(doc: dict[str, Any]) -> dict[str, Any]:
    """The experiment's /metrics settings, defaults filled in (older documents have none)."""
    return {"features": True, **(doc.get("metrics") or {})}


async def names(db: Database, experiment_ids: list[str]) -> dict[str, str]:
    """Experiment id -> name, for the ids that exist (``/metrics`` labels by name)."""
    if not experiment_ids:
        return {}
    cursor = db.experiments.find({"_id": {"$in": experiment_ids}}, {"name": 1})
    return {doc["_id"]: doc["name"] async for doc in cursor}


async def metrics_scope(db: Database, limit: int) -> tuple[list[dict[str, Any]], int]:
    """For ``/metrics``: up to ``limit`` experiments by name (``{id, name, features}``), and
    how many there are in all."""
    cursor = db.experiments.find({}, {"name": 1, "metrics": 1}).sort("name", 1).limit(limit)
    found = [
        {"id": doc["_id"], "name": doc["name"], **metrics_settings(doc)} async for doc in cursor
    ]
    return found, await db.experiments.count_documents({})


def normalise_permissions(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One entry per entity, the highest level winning, in first-seen order."""
    merged: dict[str, Level] = {}
    for entry in entries:
        level = Level(entry["level"])
        current = merged.get(entry["entity"])
        if current is None or level.rank > current.rank:
            merged[entry["entity"]] = level
    return [{"entity": entity, "level": str(level)} for entity, level in merged.items()]


async def get_for(db: Database, experiment_id: str, caller: Caller, need: Level) -> dict[str, Any]:
    """The experiment if the caller holds ``need`` on it; 404 when they may not even read it."""
    doc = await db.experiments.find_one({"_id": experiment_id})
    level = level_of(doc, caller.identity, caller.user_id) if doc else None
    if doc is None or level is None:
        raise NotFound(f"experiment {experiment_id} not found")
    if level.rank < need.rank:
        if caller.identity is None:
            caller.registered()
        raise Forbidden(f"this needs {need} permission on the experiment; you have {level}")
    return doc


async def find(db: Database, experiment_id: str) -> dict[str, Any] | None:
    """An experiment by id, unchecked (for the server's own jobs, which hold only its id)."""
    return await db.experiments.find_one({"_id": experiment_id})


async def create(db: Database, caller: Caller, data: dict[str, Any]) -> dict[str, Any]:
    user = caller.registered()
    now = utcnow()
    permissions = normalise_permissions(
        [*data.get("permissions", []), {"entity": user["_id"], "level": Level.Manage}]
    )
    doc = {
        "_id": str(uuid.uuid4()),
        "name": data["name"],
        "description": data.get("description"),
        "public": data.get("public", False),
        "permissions": permissions,
        "created_at": now,
        "updated_at": now,
        "created_by": user["_id"],
    }
    try:
        await db.experiments.insert_one(doc)
    except DuplicateKeyError:
        raise Conflict(f"an experiment named {data['name']!r} already exists") from None
    return doc


async def update(db: Database, doc: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """Apply ``changes`` (already validated) unless another writer changed the document first."""
    if "permissions" in changes:
        changes["permissions"] = normalise_permissions(changes["permissions"])
        if not has_manager(changes["permissions"]):
            raise ValidationFailed("permissions", "must keep at least one Manage entry")
    changes["updated_at"] = utcnow()
    try:
        updated = await db.experiments.find_one_and_update(
            {"_id": doc["_id"], "updated_at": doc["updated_at"]},
            {"$set": changes},
            return_document=ReturnDocument.AFTER,
        )
    except DuplicateKeyError:
        raise Conflict(f"an experiment named {changes.get('name')!r} already exists") from None
    if updated is None:
        raise Conflict("the experiment was changed concurrently; read it again and retry")
    return updated


async def delete(db: Database, experiment_id: str) -> None:
    """The experiment and everything under it: runs, reports, jobs, batches, baselines."""
    # Children first: if this fails half-way the experiment still exists and a retry finishes.
    # Each collection through its owner's service.
    drift_ids = await drifts.run_ids(db, experiment_id)
    # The charts' counts of its checks first: each report deleted below then has nothing
    # to subtract (else one read and write per check).
    await check_counts.delete_for_experiment(db, experiment_id)
    for start in range(0, len(drift_ids), 1000):
        chunk = drift_ids[start : start + 1000]
        await checks.delete_reports(db, chunk)
        await jobs.delete_for_runs(db, chunk)
    await checks.drop_batches_of(db, experiment_id)
    await drifts.delete_for_experiment(db, experiment_id)
    await run_counts.delete_for_experiment(db, experiment_id)
    # Again: a check that finished its run just before the runs went saved its report first.
    for start in range(0, len(drift_ids), 1000):
        await checks.delete_reports(db, drift_ids[start : start + 1000])
    await delete_experiment_baselines(db, experiment_id)
    await notify.delete_for_experiment(db, experiment_id)  # alert targets, notifications
    await alerts.delete_for_experiment(db, experiment_id)
    await performance.delete_for_experiment(db, experiment_id)
    await db.experiments.delete_one({"_id": experiment_id})


async def forget_default_baseline(db: Database, experiment_id: str, baseline_id: str) -> None:
    """A deleted baseline is no longer any model's default."""
    await db.experiments.update_one(
        {"_id": experiment_id}, {"$pull": {"default_baselines": {"baseline_id": baseline_id}}}
    )


async def grant(db: Database, doc: dict[str, Any], entity: str, level: Level) -> dict[str, Any]:
    others = [entry for entry in doc.get("permissions", []) if entry["entity"] != entity]
    return await update(db, doc, {"permissions": [*others, {"entity": entity, "level": level}]})


async def revoke(db: Database, doc: dict[str, Any], entity: str) -> dict[str, Any]:
    entries = doc.get("permissions", [])
    remaining = [entry for entry in entries if entry["entity"] != entity]
    if len(remaining) == len(entries):
        raise NotFound(f"no permission entry for {entity!r}")
    if not has_manager(remaining):
        raise Conflict("cannot remove the last Manage entry of an experiment")
    return await update(db, doc, {"permissions": remaining})


async def readable_ids(db: Database, experiment_ids: list[str], caller: Caller) -> list[str]:
    """Those of ``experiment_ids`` the caller may read, in the order given (one query; an
    unknown id is left out like an unreadable one, as :func:`get_for` answers 404 to both)."""
    readable = set()
    found = db.experiments.find({"_id": {"$in": experiment_ids}}, {"permissions": 1, "public": 1})
    async for doc in found:
        if level_of(doc, caller.identity, caller.user_id) is not None:
            readable.add(doc["_id"])
    return [item for item in experiment_ids if item in readable]
