"""Reading events by number: the tail after ``n`` and a replay's range, every query an index
look-up (an ``_id`` range made SecantusDB decode every kept event on each poll), holes
passed."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from drift_backend.devstack.services import ManagedProcess
from drift_backend.events import repository
from drift_backend.store.database import Database, Document
from pymongo import AsyncMongoClient

from tests.support.commands import Commands


@pytest.fixture
async def watched(mongodb: ManagedProcess) -> AsyncIterator[tuple[Database, Commands]]:
    finds = Commands("find", "events", ("filter", "sort", "limit"))
    client: AsyncMongoClient[Document] = AsyncMongoClient(
        mongodb.url, tz_aware=True, event_listeners=[finds]
    )
    name = f"scratch_{uuid.uuid4().hex[:10]}"
    yield client[name], finds
    await client.drop_database(name)
    await client.close()


async def _store(db: Database, numbers: list[int]) -> None:
    """Events with these numbers (experiment ``e<n % 3>``), and the counter past them all:
    numbers handed out and never stored make holes."""
    handed = await repository.next_seq(db, max(numbers))
    assert handed == max(numbers)
    await repository.insert(db, [{"_id": n, "experiment_id": f"e{n % 3}"} for n in numbers])


def _ids(docs: list[Document]) -> list[int]:
    return [int(doc["_id"]) for doc in docs]


async def test_the_tail_and_the_replay_read_by_number(watched: tuple[Database, Commands]) -> None:
    db, finds = watched
    assert await repository.after(db, 0, 10) == []  # nothing handed out: no event query
    await _store(db, [*range(1, 8), *range(400, 411)])  # 8..399 a hole wider than a batch

    assert _ids(await repository.after(db, 0, 5)) == [1, 2, 3, 4, 5]
    assert _ids(await repository.after(db, 5, 100)) == [6, 7]
    assert _ids(await repository.after(db, 7, 100)) == [*range(400, 411)]  # past the hole
    assert _ids(await repository.after(db, 405, 100)) == [*range(406, 411)]
    assert await repository.after(db, 410, 100) == []

    replay = [doc async for doc in repository.between(db, 3, 405, None)]
    assert _ids(replay) == [4, 5, 6, 7, *range(400, 406)]
    some = [doc async for doc in repository.between(db, 0, 410, {"e1", "e2"})]
    assert _ids(some) == [n for n in [*range(1, 8), *range(400, 411)] if n % 3]

    # Each read by number is an index look-up, but the one that passes the hole. (The oldest
    # and the newest event, found once per replay and per tailer start, are the ends of the
    # _id index on MongoDB; SecantusDB scans for them.)
    scans = []
    by_number = [find for find in finds.seen if find.get("filter")]
    assert len(by_number) >= 7
    for find in by_number:
        explained = await db.command("explain", {"find": "events", **find})
        if "COLLSCAN" in str(explained["queryPlanner"]["winningPlan"]):
            scans.append(find["filter"])
    assert scans == [{"_id": {"$gt": 7}}]
