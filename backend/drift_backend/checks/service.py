"""Storage of check batches and reports."""

from __future__ import annotations

import contextlib
from typing import Any

from gridfs import AsyncGridFSBucket
from gridfs.errors import NoFile
from pymongo.errors import DuplicateKeyError

from drift_backend.schemas import utcnow
from drift_backend.store.database import Database

BATCH_BUCKET = "batches"
#: Large GridFS chunks: a batch is written and read whole, and fewer documents cost less.
BATCH_CHUNK_BYTES = 1024 * 1024


async def store_batch(db: Database, data: bytes, metadata: dict[str, Any]) -> Any:
    bucket = AsyncGridFSBucket(db, bucket_name=BATCH_BUCKET, chunk_size_bytes=BATCH_CHUNK_BYTES)
    return await bucket.upload_from_stream("batch", data, metadata=metadata)


async def load_batch(db: Database, file_id: Any) -> bytes:
    bucket = AsyncGridFSBucket(db, bucket_name=BATCH_BUCKET)
    stream = await bucket.open_download_stream(file_id)
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
