"""The bulk helpers against a real SecantusDB: inserts report what was there already,
upserts that race to create a document all apply, other write errors are raised."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from drift_backend.store.bulk import insert_new, upsert_all
from drift_backend.store.database import Database
from pymongo import UpdateOne
from pymongo.errors import BulkWriteError


async def test_insert_new_names_the_documents_already_stored(db: Database) -> None:
    assert await insert_new(db.things, [{"_id": "a"}, {"_id": "b"}]) == set()
    assert await insert_new(
        db.things, [{"_id": "c"}, {"_id": "a"}, {"_id": "d"}, {"_id": "b"}]
    ) == {1, 3}
    assert sorted([doc["_id"] async for doc in db.things.find()]) == ["a", "b", "c", "d"]
    assert await insert_new(db.things, []) == set()


async def test_insert_new_raises_other_write_errors(db: Database) -> None:
    await db.create_collection("strict", validator={"$jsonSchema": {"required": ["n"]}})
    with pytest.raises(BulkWriteError):
        await insert_new(db.strict, [{"_id": "x"}])


async def test_upserts_racing_to_create_their_document_all_apply(db: Database) -> None:
    def ops(n: int) -> list[UpdateOne]:
        return [UpdateOne({"_id": f"k{i}"}, {"$inc": {"n": 1}}, upsert=True) for i in range(n)]

    await asyncio.gather(*(upsert_all(db.counts, ops(5)) for _ in range(8)))
    found: dict[str, Any] = {doc["_id"]: doc["n"] async for doc in db.counts.find()}
    assert found == {f"k{i}": 8 for i in range(5)}
