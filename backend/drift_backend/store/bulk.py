"""Unordered bulk writes that tolerate the one expected race: a duplicate ``_id``.

Counting documents are upserted by ``_id``; when two writers' upserts of a new document
meet, one of them fails with a duplicate key, and repeating it finds the document there.
Markers and other write-once documents are inserted; a duplicate means "written before".
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pymongo import UpdateOne
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import BulkWriteError

from drift_backend.store.database import Document

DUPLICATE_KEY = 11000


def _duplicates(error: BulkWriteError) -> list[int]:
    """The positions that failed as duplicates; re-raises when anything else failed."""
    failed: list[dict[str, Any]] = error.details.get("writeErrors", [])
    if any(e.get("code") != DUPLICATE_KEY for e in failed):
        raise error
    return [int(e["index"]) for e in failed]


async def upsert_all(collection: AsyncCollection[Document], ops: Sequence[UpdateOne]) -> None:
    """Apply every upsert once; those that lost a race to create their document again."""
    if not ops:
        return
    try:
        await collection.bulk_write(list(ops), ordered=False)
    except BulkWriteError as error:
        again = [ops[index] for index in _duplicates(error)]
        await collection.bulk_write(again, ordered=False)


async def insert_new(collection: AsyncCollection[Document], docs: Sequence[Document]) -> set[int]:
    """Insert those not stored yet; the positions in ``docs`` of the ones already there."""
    if not docs:
        return set()
    try:
        await collection.insert_many(list(docs), ordered=False)
    except BulkWriteError as error:
        return set(_duplicates(error))
    return set()
