"""The ``baselines`` collection: every read and write of stored baselines goes through here."""

from __future__ import annotations

import asyncio
from typing import Any

import bson
from bson import CodecOptions
from bson.raw_bson import RawBSONDocument
from pymongo import DESCENDING

from drift_backend.baselines.model import Profile
from drift_backend.store.database import Database

#: What a listing shows: the metadata, never the profile's bulk.
LISTED = {
    **{f: 1 for f in ("experiment_id", "name", "model", "created_at", "created_by")},
    "profile.source": 1,
    "profile.row_count": 1,
}


async def insert(db: Database, doc: dict[str, Any], profile: Profile) -> None:
    await db.baselines.insert_one({**doc, "profile": profile.to_document()})


async def find(
    db: Database, experiment_id: str, baseline_id: str, projection: dict[str, int] | None = None
) -> dict[str, Any] | None:
    return await db.baselines.find_one(
        {"_id": baseline_id, "experiment_id": experiment_id}, projection
    )


async def find_newest(
    db: Database, experiment_id: str, model: str | None, projection: dict[str, int] | None = None
) -> dict[str, Any] | None:
    """The experiment's newest baseline (for ``model`` when given)."""
    query: dict[str, Any] = {"experiment_id": experiment_id}
    if model is not None:
        query["model"] = model
    return await db.baselines.find_one(query, projection, sort=[("created_at", DESCENDING)])


async def list_for(db: Database, experiment_id: str) -> list[dict[str, Any]]:
    cursor = db.baselines.find({"experiment_id": experiment_id}, LISTED)
    return [doc async for doc in cursor.sort("created_at", DESCENDING)]


async def exists(db: Database, baseline_id: str) -> bool:
    return await db.baselines.find_one({"_id": baseline_id}, {"_id": 1}) is not None


async def remove(db: Database, experiment_id: str, baseline_id: str) -> bool:
    result = await db.baselines.delete_one({"_id": baseline_id, "experiment_id": experiment_id})
    return result.deleted_count > 0


async def remove_for_experiment(db: Database, experiment_id: str) -> None:
    await db.baselines.delete_many({"experiment_id": experiment_id})


async def load_profile(db: Database, baseline_id: str) -> Profile | None:
    doc = await db.baselines.find_one({"_id": baseline_id}, {"profile": 1})
    if doc is None:
        return None
    return await asyncio.to_thread(Profile.from_document, doc["profile"])


async def load_raw(db: Database, baseline_id: str) -> bytes | None:
    """The stored profile as BSON bytes (what the worker hands its pool processes)."""
    raw = db.baselines.with_options(codec_options=CodecOptions(RawBSONDocument))
    doc = await raw.find_one({"_id": baseline_id}, {"profile": 1})
    return None if doc is None else bytes(doc.raw)


def profile_from_raw(raw: bytes) -> Profile:
    """Inverse of :func:`load_raw`."""
    return Profile.from_document(bson.decode(raw)["profile"])
