"""A check's batch is stored as it is made, part by part: what is stored is every part in
order, and a failure while making or storing it leaves nothing behind."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import drift_backend.checks.reduce as reduce
import drift_backend.checks.service as service
import numpy as np
import pyarrow as pa
import pytest
from bson import ObjectId
from drift_backend.baselines.profile import build_profile
from drift_backend.devstack.services import ManagedProcess
from drift_backend.store.database import Database
from pymongo import MongoClient
from pymongo.errors import DuplicateKeyError


async def _stored(db: Database) -> tuple[int, int]:
    return (
        await db[f"{service.BATCH_BUCKET}.files"].count_documents({}),
        await db[f"{service.BATCH_BUCKET}.chunks"].count_documents({}),
    )


async def test_parts_are_stored_in_order_across_chunks(
    db: Database, mongodb: ManagedProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(service, "BATCH_CHUNK_BYTES", 1000)
    parts = [bytes([i]) * size for i, size in enumerate((10, 2500, 0, 999, 1))]
    made: list[str] = []

    def making() -> Iterator[bytes]:
        for part in parts:
            made.append(threading.current_thread().name)
            yield part

    file_id = await service.store_batch(db, making(), {"experiment_id": "e"})

    assert await service.load_batch(db, file_id) == b"".join(parts)
    # ... and as a statistics process reads it, with the synchronous driver.
    # With a client timeout, as every client of ours has: a GridFS transfer's deadline is the
    # client's bound plus the transfer's time (``transfer_deadline``), nothing without one.
    with MongoClient[dict[str, Any]](mongodb.url, timeoutMS=10_000) as sync:
        assert bytes(service.read_batch(sync[db.name], file_id)) == b"".join(parts)
    assert threading.current_thread().name not in made  # made off the event loop


async def test_a_part_that_fails_leaves_nothing_stored(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(service, "BATCH_CHUNK_BYTES", 1000)

    def failing() -> Iterator[bytes]:
        yield b"x" * 5000  # five chunks written before the failure
        raise RuntimeError("the reduction failed")

    with pytest.raises(RuntimeError, match="reduction failed"):
        await service.store_batch(db, failing(), {"experiment_id": "e"})
    assert await _stored(db) == (0, 0)


async def test_a_chunk_that_cannot_be_written_stops_the_making_and_leaves_nothing(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(service, "BATCH_CHUNK_BYTES", 1000)
    file_id = ObjectId()
    monkeypatch.setattr(service, "ObjectId", lambda: file_id)
    chunks = db[f"{service.BATCH_BUCKET}.chunks"]
    await chunks.create_index([("files_id", 1), ("n", 1)], unique=True)
    await chunks.insert_one({"files_id": file_id, "n": 2, "data": b"taken"})  # the third
    made = 0

    def parts() -> Iterator[bytes]:
        nonlocal made
        for _ in range(50):
            made += 1
            yield b"x" * 1000

    with pytest.raises(DuplicateKeyError):
        await service.store_batch(db, parts(), {"experiment_id": "e"})
    assert await _stored(db) == (0, 0)
    # The writer is at most CHUNKS_AHEAD chunks (and the one it writes) behind the making.
    assert made <= 3 + service.CHUNKS_AHEAD + 1


async def test_a_reduced_batch_stored_in_parts_decodes_as_one(db: Database) -> None:
    rng = np.random.default_rng(4)
    columns = reduce.PART_FEATURES * 2 + 3  # three parts of features, then the summary
    reference = pa.table({f"c{i}": rng.normal(size=300) for i in range(columns)})
    current = pa.table({f"c{i}": rng.normal(size=200) for i in range(columns)})
    profile = build_profile(reference)

    file_id = await service.store_batch(
        db, reduce.encoded_parts(current, profile), {"experiment_id": "e"}
    )

    stored = reduce.decode(await service.load_batch(db, file_id))
    whole = reduce.reduce_batch(current, profile)
    assert stored.summary == whole.summary
    assert list(stored.numeric) == list(whole.numeric)
    for name, kept in whole.numeric.items():
        assert stored.numeric[name].exact == kept.exact
        assert stored.numeric[name].values.tobytes() == kept.values.tobytes()
