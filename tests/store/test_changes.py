"""Change-stream wake-ups against a real SecantusDB, with and without change streams."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from drift_backend.devstack.services import ManagedProcess
from drift_backend.store.changes import Doorbell, wait_for_document
from drift_backend.store.database import Database
from pymongo import AsyncMongoClient

# A hang guard, not a timing threshold: the waits below end on a change, long before it.
LONG = 60.0


@pytest.fixture
async def db(mongodb: ManagedProcess) -> AsyncIterator[Database]:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongodb.url, tz_aware=True)
    name = f"changes_{uuid.uuid4().hex[:10]}"
    yield client[name]
    await client.drop_database(name)
    await client.close()


def _done(doc: dict[str, Any]) -> bool:
    return bool(doc["state"] == "done")


async def _finish_later(db: Database, doc_id: str) -> None:
    await asyncio.sleep(0.2)
    await db.runs.update_one({"_id": doc_id}, {"$set": {"state": "busy"}})  # not ready yet
    await asyncio.sleep(0.1)
    await db.runs.update_one({"_id": doc_id}, {"$set": {"state": "done"}})


@pytest.mark.parametrize("streams", [True, False], ids=["change-stream", "polling"])
async def test_wait_for_document_answers_when_it_becomes_ready(db: Database, streams: bool) -> None:
    await db.runs.insert_one({"_id": "r1", "state": "running"})
    writer = asyncio.create_task(_finish_later(db, "r1"))
    doc = await asyncio.wait_for(
        wait_for_document(db.runs, "r1", _done, LONG, streams=streams), LONG * 2
    )
    await writer
    assert doc is not None
    assert doc["state"] == "done"


@pytest.mark.parametrize("streams", [True, False], ids=["change-stream", "polling"])
async def test_wait_for_document_gives_up_at_the_deadline(db: Database, streams: bool) -> None:
    await db.runs.insert_one({"_id": "r2", "state": "running"})
    assert await wait_for_document(db.runs, "r2", _done, 0.3, streams=streams) is None


async def test_wait_for_document_sees_a_document_that_is_already_ready(db: Database) -> None:
    await db.runs.insert_one({"_id": "r3", "state": "done"})
    doc = await wait_for_document(db.runs, "r3", _done, LONG)
    assert doc is not None


async def test_wait_for_document_of_a_missing_document_is_none(db: Database) -> None:
    assert await wait_for_document(db.runs, "nobody", _done, LONG) is None


async def test_doorbell_rings_on_insert(db: Database) -> None:
    stop = asyncio.Event()
    bell = Doorbell(db.jobs)
    listener = asyncio.create_task(bell.run(stop))
    try:
        for _ in range(600):  # until the stream is open
            if bell.live:
                break
            await asyncio.sleep(0.01)
        assert bell.live
        bell.clear()
        await db.jobs.insert_one({"kind": "check"})
        assert await bell.wait(LONG, stop) is True
        bell.clear()
        assert await bell.wait(0.2, stop) is False  # nothing new: the wait times out
    finally:
        stop.set()
        await asyncio.wait_for(listener, LONG)


async def test_doorbell_without_change_streams_never_rings(db: Database) -> None:
    stop = asyncio.Event()
    bell = Doorbell(db.jobs, streams=False)
    await asyncio.wait_for(bell.run(stop), LONG)  # returns at once: nothing to listen to
    await db.jobs.insert_one({"kind": "check"})
    assert not bell.live
    assert await bell.wait(0.05, stop) is False


async def test_doorbell_wait_ends_on_stop(db: Database) -> None:
    stop = asyncio.Event()
    bell = Doorbell(db.jobs)
    asyncio.get_running_loop().call_later(0.1, stop.set)
    assert await bell.wait(LONG, stop) is False
    assert stop.is_set()
