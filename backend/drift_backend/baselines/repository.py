"""Stored baselines: every read and write of them goes through here.

A baseline is a small metadata document in ``baselines`` plus its profile in the GridFS
bucket ``baseline_profiles``: the profile as JSON (``part: "profile"``) and, when numerical
features keep their values, those as Arrow (``part: "values"``). GridFS splits the files
into chunks, so no baseline within the documented batch limits (1,000 columns, any number
of categories) meets MongoDB's 16 MB document limit, which one profile document did at
10,000 rows x 1,000 columns. Files are written before the document that points to them and
deleted after it, so a reader never finds a baseline without its profile.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from typing import Any

from gridfs import AsyncGridFSBucket
from gridfs.errors import GridFSError, NoFile
from pymongo import DESCENDING
from pymongo.database import Database as SyncDatabase

from drift_backend.baselines import packed_values
from drift_backend.baselines.model import Profile
from drift_backend.store.database import Database, transfer_deadline
from drift_backend.store.files import read_whole

BUCKET = "baseline_profiles"
#: Large chunks: profiles are written and read whole, and fewer documents cost less.
CHUNK_BYTES = 1024 * 1024
#: What a listing shows: the metadata, never the profile.
LISTED = {
    f: 1
    for f in (
        *("experiment_id", "name", "model", "created_at", "created_by"),
        *("source", "row_count", "feature_count", "stored_bytes"),
    )
}


@dataclass(frozen=True)
class StoredProfile:
    """A profile as stored: what the worker hands its pool processes, parsed there."""

    profile: bytes | bytearray
    values: bytes | bytearray | None

    @property
    def size(self) -> int:
        return len(self.profile) + len(self.values or b"")

    def parse(self) -> Profile:
        profile = Profile.model_validate_json(self.profile)
        return profile.with_values(packed_values.unpack(self.values)[1]) if self.values else profile


def encode(profile: Profile) -> StoredProfile:
    """A profile in its stored form (CPU work: call it off the event loop)."""
    values = profile.all_values
    return StoredProfile(
        profile.model_dump_json().encode(), packed_values.pack(values) if values else None
    )


def _bucket(db: Database) -> AsyncGridFSBucket:
    return AsyncGridFSBucket(db, bucket_name=BUCKET, chunk_size_bytes=CHUNK_BYTES)


async def insert(db: Database, doc: dict[str, Any], stored: StoredProfile) -> dict[str, Any]:
    """Store the profile's files, then ``doc`` pointing to them; returns the stored document."""
    meta = {"baseline_id": doc["_id"], "experiment_id": doc["experiment_id"]}
    bucket = _bucket(db)
    files: list[Any] = []
    try:
        with transfer_deadline(db, len(stored.profile)):
            files.append(
                await bucket.upload_from_stream(
                    "profile.json", stored.profile, metadata={**meta, "part": "profile"}
                )
            )
        if stored.values is not None:
            with transfer_deadline(db, len(stored.values)):
                files.append(
                    await bucket.upload_from_stream(
                        "values.arrow", stored.values, metadata={**meta, "part": "values"}
                    )
                )
        full = {
            **doc,
            "profile_file": files[0],
            "values_file": files[1] if len(files) > 1 else None,
            "stored_bytes": stored.size,
        }
        await db.baselines.insert_one(full)
    except BaseException:
        await _drop_files(db, files)  # no half-stored baseline
        raise
    return full


async def _drop_files(db: Database, file_ids: list[Any]) -> None:
    bucket = _bucket(db)
    for file_id in file_ids:
        if file_id is not None:
            with contextlib.suppress(NoFile):  # gone already: a retry got there first
                await bucket.delete(file_id)


async def _download(db: Database, file_id: Any) -> bytes | None:
    try:
        stream = await _bucket(db).open_download_stream(file_id)
        with transfer_deadline(db, stream.length):  # tens of MB at 1,000 exact features
            data: bytes = await stream.read()
    except GridFSError:  # deleted between finding the baseline and reading it (or meanwhile)
        return None
    return data


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
    doc = await db.baselines.find_one_and_delete(
        {"_id": baseline_id, "experiment_id": experiment_id},
        projection={"profile_file": 1, "values_file": 1},
    )
    if doc is None:
        return False
    await _drop_files(db, [doc.get("profile_file"), doc.get("values_file")])
    return True


async def remove_for_experiment(db: Database, experiment_id: str) -> None:
    await db.baselines.delete_many({"experiment_id": experiment_id})
    # By the files' own metadata: this also finds those a failed deletion left behind.
    files = db[f"{BUCKET}.files"].find({"metadata.experiment_id": experiment_id}, {"_id": 1})
    await _drop_files(db, [f["_id"] async for f in files])


async def load_stored(db: Database, baseline_id: str, *, values: bool) -> StoredProfile | None:
    """The stored profile (with its values when asked), or None when the baseline is gone."""
    doc = await db.baselines.find_one({"_id": baseline_id}, {"profile_file": 1, "values_file": 1})
    if doc is None:
        return None
    profile = await _download(db, doc["profile_file"])
    if profile is None:
        return None
    kept = None
    if values and doc.get("values_file") is not None:
        kept = await _download(db, doc["values_file"])
        if kept is None:
            return None
    return StoredProfile(profile, kept)


def read_stored(
    db: SyncDatabase[dict[str, Any]], baseline_id: str, *, values: bool
) -> StoredProfile | None:
    """:func:`load_stored` with the synchronous driver, in a statistics process: it reads
    the baseline it checks against itself, once, instead of having the worker send it
    (over 100 MB pickled at 1,000 exact features, to whichever process took the call)."""
    doc = db.baselines.find_one({"_id": baseline_id}, {"profile_file": 1, "values_file": 1})
    if doc is None:
        return None
    try:
        files, chunks = db[f"{BUCKET}.files"], db[f"{BUCKET}.chunks"]
        profile = read_whole(files, chunks, doc["profile_file"])
        kept = None
        if values and doc.get("values_file") is not None:
            kept = read_whole(files, chunks, doc["values_file"])
    except NoFile:  # deleted between finding the baseline and reading it
        return None
    return StoredProfile(profile, kept)


async def load_profile(db: Database, baseline_id: str) -> tuple[Profile, int] | None:
    """The profile without its values (what the API reads) and its stored size."""
    stored = await load_stored(db, baseline_id, values=False)
    if stored is None:
        return None
    return await asyncio.to_thread(stored.parse), stored.size
