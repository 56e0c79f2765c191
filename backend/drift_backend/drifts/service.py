from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from pymongo import ReturnDocument

from drift_backend.drifts.schemas import SCHEMA_VERSION, JobStatus
from drift_backend.errors import Conflict, NotFound
from drift_backend.schemas import utcnow
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
        return doc
    current = await get(db, experiment_id, drift_id)
    if all(current.get(key) == value for key, value in fields.items()):
        return current  # an idempotent retry of the write that finished the run
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
    result = await db.drifts.delete_one({"_id": drift_id, "experiment_id": experiment_id})
    if result.deleted_count == 0:
        raise NotFound(f"drift run {drift_id} not found in experiment {experiment_id}")
    await db.reports.delete_one({"_id": drift_id})


async def fail_stale_runs(db: Database, timeout_seconds: float) -> int:
    """Mark Running runs without an update for ``timeout_seconds`` as Failed (Timeout)."""
    now = utcnow()
    cutoff = now - timedelta(seconds=timeout_seconds)
    result = await db.drifts.update_many(
        {"job_status": JobStatus.Running, "updated_at": {"$lt": cutoff}},
        {
            "$set": {
                "job_status": JobStatus.Failed,
                "updated_at": now,
                "finished_at": now,
                "error": {
                    "type": "Timeout",
                    "message": f"no update for {timeout_seconds:g} s; marked Failed by the server",
                },
            }
        },
    )
    return result.modified_count
