"""Storage of baselines, batches and reports, and the creation of check jobs."""

from __future__ import annotations

import contextlib
import uuid
from typing import Any

from gridfs import AsyncGridFSBucket
from gridfs.errors import NoFile
from pymongo import DESCENDING
from pymongo.errors import DuplicateKeyError

from drift_backend.baselines.model import Profile
from drift_backend.errors import NotFound, ValidationFailed
from drift_backend.schemas import utcnow
from drift_backend.store.database import Database, transfer_deadline

BATCH_BUCKET = "batches"
#: Large GridFS chunks: a batch is written and read whole, and fewer documents cost less.
BATCH_CHUNK_BYTES = 1024 * 1024


def baseline_to_api(doc: dict[str, Any], *, with_features: bool = True) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": doc["_id"],
        "experiment_id": doc["experiment_id"],
        "name": doc.get("name"),
        "model": doc.get("model"),
        "source": doc["profile"].get("source", "data"),
        "row_count": doc["profile"]["row_count"],
        "created_at": doc["created_at"],
        "created_by": doc.get("created_by"),
    }
    if with_features:
        out["features"] = [_feature_summary(f) for f in doc["profile"]["features"]]
    return out


def _feature_summary(feature: dict[str, Any]) -> dict[str, Any]:
    numeric = feature.get("numeric") or {}
    categorical = feature.get("categorical") or {}
    return {
        "name": feature["name"],
        "kind": feature["kind"],
        "inferred_type": feature["inferred_type"],
        "completeness": feature["completeness"],
        "count": feature["count"],
        "missing": feature["missing"],
        "distinct_count": feature.get("distinct_count"),
        "min": numeric.get("min"),
        "max": numeric.get("max"),
        "mean": numeric.get("mean"),
        "std": numeric.get("std"),
        "categories": len(categorical.get("values", [])) if categorical else None,
    }


async def store_baseline(
    db: Database,
    experiment_id: str,
    profile: Profile,
    *,
    name: str | None,
    model: str | None,
    created_by: str | None,
) -> dict[str, Any]:
    doc = {
        "_id": str(uuid.uuid4()),
        "experiment_id": experiment_id,
        "name": name,
        "model": model,
        "created_at": utcnow(),
        "created_by": created_by,
        "profile": profile.to_document(),
    }
    await db.baselines.insert_one(doc)
    return doc


async def list_baselines(db: Database, experiment_id: str) -> list[dict[str, Any]]:
    """The experiment's baselines, newest first, without their profiles' bulk (what
    ``baseline_to_api(..., with_features=False)`` shows)."""
    listed = {f: 1 for f in ("experiment_id", "name", "model", "created_at", "created_by")}
    projection = listed | {"profile.source": 1, "profile.row_count": 1}
    cursor = db.baselines.find({"experiment_id": experiment_id}, projection)
    return [doc async for doc in cursor.sort("created_at", DESCENDING)]


async def get_baseline(
    db: Database, experiment_id: str, baseline_id: str, projection: dict[str, int] | None = None
) -> dict[str, Any]:
    doc = await db.baselines.find_one(
        {"_id": baseline_id, "experiment_id": experiment_id}, projection
    )
    if doc is None:
        raise NotFound(f"baseline {baseline_id} not found in experiment {experiment_id}")
    return doc


async def delete_baseline(db: Database, experiment_id: str, baseline_id: str) -> None:
    result = await db.baselines.delete_one({"_id": baseline_id, "experiment_id": experiment_id})
    if result.deleted_count == 0:
        raise NotFound(f"baseline {baseline_id} not found in experiment {experiment_id}")
    await db.experiments.update_one(
        {"_id": experiment_id}, {"$pull": {"default_baselines": {"baseline_id": baseline_id}}}
    )


async def resolve_baseline(
    db: Database,
    experiment: dict[str, Any],
    baseline_id: str | None,
    model: str,
    projection: dict[str, int] | None = None,
) -> dict[str, Any]:
    """The named baseline; else the experiment's default for ``model``; else the newest one
    for ``model``; else the experiment's newest."""
    experiment_id = experiment["_id"]
    if baseline_id:
        return await get_baseline(db, experiment_id, baseline_id, projection)
    for entry in experiment.get("default_baselines", []):
        if entry.get("model") == model:
            return await get_baseline(db, experiment_id, entry["baseline_id"], projection)
    for query in (
        {"experiment_id": experiment_id, "model": model},
        {"experiment_id": experiment_id},
    ):
        doc = await db.baselines.find_one(query, projection, sort=[("created_at", DESCENDING)])
        if doc is not None:
            return doc
    raise ValidationFailed(
        "baseline", "the experiment has no baseline yet: POST one to .../baseline first"
    )


async def store_batch(db: Database, data: bytes, metadata: dict[str, Any]) -> Any:
    bucket = AsyncGridFSBucket(db, bucket_name=BATCH_BUCKET, chunk_size_bytes=BATCH_CHUNK_BYTES)
    with transfer_deadline(db, len(data)):
        return await bucket.upload_from_stream("batch", data, metadata=metadata)


async def load_batch(db: Database, file_id: Any) -> bytes:
    bucket = AsyncGridFSBucket(db, bucket_name=BATCH_BUCKET)
    stream = await bucket.open_download_stream(file_id)
    with transfer_deadline(db, stream.length):
        data: bytes = await stream.read()
    return data


async def drop_batch(db: Database, file_id: Any) -> None:
    bucket = AsyncGridFSBucket(db, bucket_name=BATCH_BUCKET)
    with contextlib.suppress(NoFile):  # already gone: a retried job dropped it first
        await bucket.delete(file_id)


async def save_report(db: Database, drift_id: str, report: dict[str, Any]) -> bool:
    """Store the report once; a second writer (a retried job) finds it there."""
    try:
        await db.reports.insert_one({"_id": drift_id, "created_at": utcnow(), **report})
    except DuplicateKeyError:
        return False
    return True


async def get_report(db: Database, drift_id: str) -> dict[str, Any] | None:
    return await db.reports.find_one({"_id": drift_id}, {"_id": 0, "created_at": 0})
