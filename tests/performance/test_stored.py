"""Reading a model's batches in order: every query is an index look-up (a plan that scans
the collection decodes every stored batch of every model, on each applier's first step)."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator

import pytest
from drift_backend.performance import stored
from drift_backend.store.database import Database, Document
from pymongo import AsyncMongoClient

from tests.conftest import Api
from tests.support.commands import Commands


@pytest.fixture
async def watched(api: Api) -> AsyncIterator[tuple[Database, Commands]]:
    finds = Commands("find", stored.BATCHES, ("filter",))
    client: AsyncMongoClient[Document] = AsyncMongoClient(
        api.settings.mongodb_url.get_secret_value(), tz_aware=True, event_listeners=[finds]
    )
    yield client[api.settings.mongodb_database], finds
    await client.close()


async def test_a_models_batches_are_read_in_order_on_the_primary_index(
    watched: tuple[Database, Commands],
) -> None:
    db, finds = watched
    for model_key, seqs in (("e1:m1", [1, 2, 3, 5, 300]), ("e1:m10", [1, 2]), ("e2:m1", [4])):
        for seq in seqs:
            await stored.insert(db, {"_id": stored.batch_key(model_key, seq), "seq": seq})

    got = [doc["seq"] async for doc in stored.read(db, "e1:m1", 1, 300, {"seq": 1})]
    assert got == [2, 3, 5, 300]  # 4 and 6-299 have no batch (expired, or never stored)
    assert [doc["seq"] async for doc in stored.read(db, "e1:m1", 0, 2)] == [1, 2]
    assert [doc["seq"] async for doc in stored.read(db, "e1:m1", 300, 300)] == []

    assert len(finds.seen) == math.ceil(299 / stored.READ_KEYS) + 1
    for find in finds.seen:
        explained = await db.command("explain", {"find": stored.BATCHES, **find})
        plan = str(explained["queryPlanner"]["winningPlan"])
        assert "IXSCAN" in plan, plan
        assert "COLLSCAN" not in plan, plan
