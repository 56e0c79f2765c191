"""Drift runs and their state machine: Running -> Completed | Failed, never back.

This module is the one writer of the ``drifts`` collection: clients' runs (create, replace,
heartbeat), server checks' runs (:func:`touch`, :func:`complete_check`, :func:`fail`) and the
timeout sweep (:func:`fail_stale_runs`, run by :mod:`.sweeper`) all go through it.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

from drift_backend.alerts import trigger as alerts
from drift_backend.charts import run_counts
from drift_backend.drifts import announce
from drift_backend.drifts.schemas import SCHEMA_VERSION, JobStatus
from drift_backend.errors import Conflict, NotFound
from drift_backend.events import service as events
from drift_backend.events.schemas import EventType
from drift_backend.schemas import utcnow
from drift_backend.store.changes import wait_for_document
from drift_backend.store.database import Database
from drift_backend.store.filters import BOOLEAN, STRING, TIMESTAMP, Field, FilterSchema

DRIFT_FILTER = FilterSchema(
    fields={
        "id": Field("_id", STRING),
        "_id": Field("_id", STRING),
        "model": Field("model", STRING),
        "job_status": Field("job_status", STRING),
        "tags": Field("tags", STRING),
        "drift_detected": Field("drift_detected", BOOLEAN),
        "schema_version": Field("schema_version", STRING),
        "created_by": Field("created_by", STRING),
        "created_at": Field("created_at", TIMESTAMP),
        "updated_at": Field("updated_at", TIMESTAMP),
        "finished_at": Field("finished_at", TIMESTAMP),
        "concept_drift.drift": Field("concept_drift.drift", BOOLEAN),
        "data_drift.drift": Field("data_drift.drift", BOOLEAN),
        "error.type": Field("error.type", STRING),
    },
    open_prefixes=("parameters",),
)
DRIFT_SORT_FIELDS = {"created_at", "updated_at", "finished_at", "model", "job_status", "id"}

#: The fields a client owns; everything else is the server's.
CLIENT_FIELDS = (
    "job_status",
    "model",
    "tags",
    "drift_detected",
    "parameters",
    "concept_drift",
    "data_drift",
    "error",
)


async def _finished(db: Database, doc: dict[str, Any]) -> None:
    """After a write that finished a run: its event, and its alert evaluation queued."""
    await events.run_event(db, EventType.run_finished, doc)
    await alerts.run_finished(db, doc)


def to_api(doc: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": doc["_id"],
        "experiment_id": doc["experiment_id"],
        "created_at": doc["created_at"],
        "updated_at": doc.get("updated_at", doc["created_at"]),
        "finished_at": doc.get("finished_at"),
        "schema_version": doc.get("schema_version", SCHEMA_VERSION),
        "job_status": doc["job_status"],
        "model": doc["model"],
        "tags": doc.get("tags", []),
        "drift_detected": bool(doc.get("drift_detected", False)),
        "parameters": doc.get("parameters", {}),
        "concept_drift": doc.get("concept_drift"),
        "data_drift": doc.get("data_drift"),
        "error": doc.get("error"),
        "created_by": doc.get("created_by"),
        "has_predictions": bool(doc.get("has_predictions", False)),
    }


def _client_fields(data: dict[str, Any]) -> dict[str, Any]:
    fields = {key: data.get(key) for key in CLIENT_FIELDS}
    fields["tags"] = list(dict.fromkeys(fields["tags"] or []))
    fields["parameters"] = fields["parameters"] or {}
    detected = bool(fields["drift_detected"])
    for key in ("concept_drift", "data_drift"):
        result = fields[key]
        if isinstance(result, dict):
            detected = detected or bool(result.get("drift"))
    fields["drift_detected"] = detected
    if fields["job_status"] != JobStatus.Failed:
        fields["error"] = None
    return fields


async def create(
    db: Database,
    experiment_id: str,
    data: dict[str, Any],
    created_by: str | None,
    *,
    created_at: datetime | None = None,
) -> dict[str, Any]:
    """``created_at`` backdates a run reported late; ``updated_at`` stays the time of this
    write, which the stale-run sweeper measures from."""
    now = utcnow()
    created = created_at or now
    fields = _client_fields(data)
    doc = {
        "_id": str(uuid.uuid4()),
        "experiment_id": experiment_id,
        "schema_version": SCHEMA_VERSION,
        "created_at": created,
        "updated_at": now,
        "finished_at": created if JobStatus(fields["job_status"]).terminal else None,
        "created_by": created_by,
        **fields,
    }
    await db.drifts.insert_one(doc)
    await announce.created(db, doc)
    if JobStatus(doc["job_status"]).terminal:  # reported already finished
        await _finished(db, doc)
    return doc


# --- concept drift found by performance monitoring ----------------------------------

#: ``origin`` of the runs the server makes from a performance decision (not a client's job).
PERFORMANCE_ORIGIN = "performance"


async def record_concept_drift(
    db: Database,
    experiment_id: str,
    model: str,
    run_id: str,
    concept_drift: dict[str, Any],
    tags: list[str],
) -> dict[str, Any]:
    """A finished run of the server's own that carries ``concept_drift`` (``{drift,
    parameters}``) and no data drift: a window of ``model`` became degraded or recovered
    (``performance/concept.py``). ``run_id`` is chosen by the caller from the decision, so a
    retried write finds the run made before and only re-announces it."""
    now = utcnow()
    drift = bool(concept_drift["drift"])
    doc = {
        "_id": run_id,
        "experiment_id": experiment_id,
        "schema_version": SCHEMA_VERSION,
        "created_at": now,
        "updated_at": now,
        "finished_at": now,
        "created_by": None,
        "origin": PERFORMANCE_ORIGIN,
        "job_status": JobStatus.Completed,
        "model": model,
        "tags": tags,
        "drift_detected": drift,
        "parameters": {},
        "concept_drift": {"drift": drift, "parameters": concept_drift.get("parameters", {})},
        "data_drift": None,
        "error": None,
    }
    try:
        await db.drifts.insert_one(doc)
    except DuplicateKeyError:
        found = await db.drifts.find_one({"_id": run_id})
        if found is None:  # deleted meanwhile: nothing to announce
            return doc
        await alerts.run_finished(db, found)  # queued once (its job id is the run's)
        return found
    await run_counts.record_created(db, doc)
    await events.run_event(db, EventType.run_created, doc)
    await _finished(db, doc)
    return doc


async def get(db: Database, experiment_id: str, drift_id: str) -> dict[str, Any]:
    doc = await db.drifts.find_one({"_id": drift_id, "experiment_id": experiment_id})
    if doc is None:
        raise NotFound(f"drift run {drift_id} not found in experiment {experiment_id}")
    return doc


async def replace(
    db: Database,
    experiment_id: str,
    drift_id: str,
    data: dict[str, Any],
    *,
    finished_at: datetime | None = None,
) -> dict[str, Any]:
    """Full replace while Running; a finished run only accepts an identical retry."""
    fields = _client_fields(data)
    now = utcnow()
    update: dict[str, Any] = {**fields, "updated_at": now}
    if JobStatus(fields["job_status"]).terminal:
        update["finished_at"] = finished_at or now
    doc = await db.drifts.find_one_and_update(
        {"_id": drift_id, "experiment_id": experiment_id, "job_status": JobStatus.Running},
        {"$set": update},
        return_document=ReturnDocument.AFTER,
    )
    if doc is not None:
        await announce.changed(db, doc)
        return doc
    current = await get(db, experiment_id, drift_id)
    if all(current.get(key) == value for key, value in fields.items()):
        # An idempotent retry of the write that finished the run: queued once, again in
        # case the first try died before it could.
        await alerts.run_finished(db, current)
        return current
    raise Conflict(
        f"drift run is {current['job_status']}; a finished run cannot change "
        "(status moves Running to Completed or Failed, never back)"
    )


async def heartbeat(db: Database, experiment_id: str, drift_id: str) -> dict[str, Any]:
    doc = await db.drifts.find_one_and_update(
        {"_id": drift_id, "experiment_id": experiment_id, "job_status": JobStatus.Running},
        {"$set": {"updated_at": utcnow()}},
        return_document=ReturnDocument.AFTER,
    )
    if doc is not None:
        return doc
    current = await get(db, experiment_id, drift_id)
    raise Conflict(f"drift run is {current['job_status']}; only Running runs take heartbeats")


async def delete(db: Database, experiment_id: str, drift_id: str) -> None:
    """The run alone; what hangs off it (a check's report) is its owner's to delete."""
    doc = await db.drifts.find_one_and_delete({"_id": drift_id, "experiment_id": experiment_id})
    if doc is None:
        raise NotFound(f"drift run {drift_id} not found in experiment {experiment_id}")
    await run_counts.record_deleted(db, doc)


async def find(db: Database, drift_id: str) -> dict[str, Any] | None:
    """A run by id in any experiment (for the server's own jobs, which hold only its id)."""
    return await db.drifts.find_one({"_id": drift_id})


async def created_times(db: Database, experiment_id: str, ids: list[str]) -> dict[str, datetime]:
    """The creation time of each of ``ids`` that is a run of the experiment (performance
    documents per run are ordered by it; a deleted run is missing)."""
    found: dict[str, datetime] = {}
    for start in range(0, len(ids), 100):  # short $in lists (SecantusDB)
        cursor = db.drifts.find(
            {"_id": {"$in": ids[start : start + 100]}, "experiment_id": experiment_id},
            {"created_at": 1},
        )
        found.update({doc["_id"]: doc["created_at"] async for doc in cursor})
    return found


async def mark_predictions(db: Database, experiment_id: str, ids: list[str]) -> None:
    """Note on runs of the experiment that predictions were recorded with them (the
    performance service calls this), so a reader of the run (the dashboard's run page) asks
    for their metrics only then. Not a change of the run: ``updated_at`` (which the
    stale-run sweeper measures from) stays, and no event is sent."""
    for start in range(0, len(ids), 100):  # short $in lists (SecantusDB)
        await db.drifts.update_many(
            {
                "_id": {"$in": ids[start : start + 100]},
                "experiment_id": experiment_id,
                "has_predictions": {"$ne": True},
            },
            {"$set": {"has_predictions": True}},
        )


async def run_ids(db: Database, experiment_id: str) -> list[str]:
    return [
        doc["_id"] async for doc in db.drifts.find({"experiment_id": experiment_id}, {"_id": 1})
    ]


async def models(db: Database, experiment_id: str) -> list[str]:
    """The models the experiment has runs of (an alert rule on every model watches them)."""
    found: list[str] = await db.drifts.distinct("model", {"experiment_id": experiment_id})
    return sorted(found)


async def delete_for_experiment(db: Database, experiment_id: str) -> None:
    await db.drifts.delete_many({"experiment_id": experiment_id})


async def touch(db: Database, drift_id: str) -> None:
    """Keep a Running run from looking stale to the sweeper while the server works on it."""
    await db.drifts.update_one(
        {"_id": drift_id, "job_status": JobStatus.Running}, {"$set": {"updated_at": utcnow()}}
    )


async def complete_check(
    db: Database, drift_id: str, *, dataset_drift: bool, summary: dict[str, Any]
) -> bool:
    """Finish a server check's Running run as Completed with the report's ``summary``;
    False when it is no longer Running (finished by an earlier attempt, swept, deleted)."""
    now = utcnow()
    doc = await db.drifts.find_one_and_update(
        {"_id": drift_id, "job_status": JobStatus.Running},
        {
            "$set": {
                "job_status": JobStatus.Completed,
                "drift_detected": dataset_drift,
                "data_drift": {"drift": dataset_drift, "parameters": summary},
                # Next to what the check was created with (baseline_id, rows, mode).
                **{f"parameters.check.{key}": value for key, value in summary.items()},
                "finished_at": now,
                "updated_at": now,
            }
        },
        return_document=ReturnDocument.AFTER,
    )
    if doc is None:
        return False
    await announce.changed(db, doc)
    return True


async def fail(db: Database, drift_id: str, error: dict[str, str]) -> bool:
    """Finish a Running run as Failed with ``error`` (``{type, message}``); False when it
    is no longer Running."""
    now = utcnow()
    doc = await db.drifts.find_one_and_update(
        {"_id": drift_id, "job_status": JobStatus.Running},
        {
            "$set": {
                "job_status": JobStatus.Failed,
                "error": error,
                "finished_at": now,
                "updated_at": now,
            }
        },
        return_document=ReturnDocument.AFTER,
    )
    if doc is None:
        return False
    await announce.changed(db, doc)
    return True


async def wait_finished(
    db: Database, drift_id: str, seconds: float, *, streams: bool
) -> dict[str, Any] | None:
    """The run once it is no longer Running, if that happens within ``seconds``; else None."""
    return await wait_for_document(
        db.drifts,
        drift_id,
        lambda doc: doc["job_status"] != JobStatus.Running,
        seconds,
        streams=streams,
    )


async def fail_stale_runs(db: Database, timeout_seconds: float) -> int:
    """Mark Running runs without an update for ``timeout_seconds`` as Failed (Timeout).

    One run at a time, so that each replica's sweep announces exactly the runs it failed."""
    now = utcnow()
    cutoff = now - timedelta(seconds=timeout_seconds)
    failed = 0
    while True:
        doc = await db.drifts.find_one_and_update(
            {"job_status": JobStatus.Running, "updated_at": {"$lt": cutoff}},
            {
                "$set": {
                    "job_status": JobStatus.Failed,
                    "updated_at": now,
                    "finished_at": now,
                    "error": {
                        "type": "Timeout",
                        "message": (
                            f"no update for {timeout_seconds:g} s; marked Failed by the server"
                        ),
                    },
                }
            },
            return_document=ReturnDocument.AFTER,
        )
        if doc is None:
            return failed
        failed += 1
        await announce.changed(db, doc)
