"""The shared tailer against a real SecantusDB: delivery in number order across a hole, a
hole that never fills, the bound on a slow subscriber, the experiment filter; and emitting
that never fails its caller."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from drift_backend.events import repository, service
from drift_backend.events.hub import EventHub
from drift_backend.events.schemas import EventType
from drift_backend.schemas import utcnow
from drift_backend.store.database import Database, connect


def _hub(db: Database, **overrides: Any) -> EventHub:
    options: dict[str, Any] = {
        "poll_seconds": 0.05,
        "queue_size": 100,
        "max_streams": 10,
        "gap_seconds": 60.0,
        "change_streams": False,
        **overrides,
    }
    return EventHub(db, **options)


async def _emit(db: Database, experiment_id: str = "exp") -> int:
    seq = await service.emit(
        db,
        EventType.run_created,
        experiment_id=experiment_id,
        run_id=str(uuid.uuid4()),
        model="m",
        payload={"status": "Running"},
    )
    assert seq is not None
    return seq


def _numbers(docs: list[dict[str, Any]]) -> list[int]:
    return [doc["_id"] for doc in docs]


async def test_a_late_lower_number_is_delivered_before_the_higher_ones(db: Database) -> None:
    hub = _hub(db)
    await hub.start()
    subscriber, frontier = await hub.subscribe(None, 1.0)
    assert frontier == 0
    first = await _emit(db)
    slow = await repository.next_seq(db)  # taken, its insert still on its way
    after = await _emit(db)
    await hub.poll()
    assert _numbers(subscriber.take()) == [first]  # the later one waits for the hole
    await repository.insert(
        db,
        [
            {
                "_id": slow,
                "type": "run.created",
                "experiment_id": "exp",
                "run_id": "r",
                "model": "m",
                "time": utcnow(),
                "payload": {},
            }
        ],
    )
    await hub.poll()
    assert _numbers(subscriber.take()) == [slow, after]
    assert hub.frontier == after


async def test_a_hole_that_never_fills_is_passed_after_the_grace(db: Database) -> None:
    hub = _hub(db, gap_seconds=0.2)
    await hub.start()
    subscriber, _ = await hub.subscribe(None, 1.0)
    lost = await repository.next_seq(db)  # its insert failed: it never appears
    after = await _emit(db)
    await hub.poll()
    assert subscriber.take() == []
    await asyncio.sleep(0.3)
    await hub.poll()
    assert _numbers(subscriber.take()) == [after]
    assert hub.frontier == after > lost


async def test_a_subscriber_that_falls_behind_is_dropped_and_its_queue_freed(
    db: Database,
) -> None:
    hub = _hub(db, queue_size=3)
    await hub.start()
    slow, _ = await hub.subscribe(None, 1.0)
    reader, _ = await hub.subscribe(None, 1.0)
    numbers = []
    for _ in range(5):
        numbers.append(await _emit(db))
        await hub.poll()
        assert _numbers(reader.take()) == numbers[-1:]  # keeps up
    assert slow.dropped.is_set()
    assert len(slow) == 0  # nothing kept for it
    assert hub.subscribers == {reader}
    assert hub.dropped == 1


async def test_subscribers_get_only_their_experiments(db: Database) -> None:
    hub = _hub(db)
    await hub.start()
    only_a, _ = await hub.subscribe({"a"}, 1.0)
    everything, _ = await hub.subscribe(None, 1.0)
    in_a = await _emit(db, "a")
    in_b = await _emit(db, "b")
    await hub.poll()
    assert _numbers(only_a.take()) == [in_a]
    assert _numbers(everything.take()) == [in_a, in_b]


async def test_the_tailer_starts_after_what_is_stored(db: Database) -> None:
    await _emit(db)
    newest = await _emit(db)
    hub = _hub(db)
    await hub.start()
    assert hub.frontier == newest
    subscriber, frontier = await hub.subscribe(None, 1.0)
    assert frontier == newest
    await hub.poll()
    assert subscriber.take() == []
    # Every event expired: it starts at the counter, so the next one is no "hole".
    await db.events.delete_many({})
    fresh = _hub(db)
    await fresh.start()
    assert fresh.frontier == newest


async def test_the_tailer_runs_in_the_background_with_and_without_change_streams(
    db: Database,
) -> None:
    for streams in (True, False):
        hub = _hub(db, change_streams=streams, poll_seconds=0.05 if not streams else 5.0)
        stop = asyncio.Event()
        task = asyncio.create_task(hub.run(stop))
        try:
            subscriber, _ = await hub.subscribe(None, 30.0)
            for _ in range(3000):  # a change stream (when used) rings once it is open
                if hub.watching or not streams:
                    break
                await asyncio.sleep(0.01)
            assert hub.watching is streams
            number = await _emit(db)
            while not (taken := subscriber.take()):
                await subscriber.wait(30.0)
            assert _numbers(taken) == [number]
        finally:
            stop.set()
            await asyncio.wait_for(task, 30.0)


async def test_the_stream_limit(db: Database) -> None:
    from drift_backend.errors import ServiceUnavailable

    hub = _hub(db, max_streams=1)
    await hub.start()
    first, _ = await hub.subscribe(None, 1.0)
    with pytest.raises(ServiceUnavailable) as refused:
        await hub.subscribe(None, 1.0)
    assert refused.value.headers == {"Retry-After": "5"}
    hub.unsubscribe(first)
    await hub.subscribe(None, 1.0)


async def test_emitting_never_fails_its_caller() -> None:
    client = connect("mongodb://127.0.0.1:9/?directConnection=true", timeout_seconds=0.5)
    try:
        assert await _emit_to(client["nowhere"]) is None
    finally:
        await client.close()


async def _emit_to(db: Database) -> int | None:
    return await service.emit(
        db, EventType.run_finished, experiment_id="e", run_id="r", model="m", payload={}
    )


async def test_the_ttl_follows_the_setting(db: Database) -> None:
    await service.prepare(db, 3600)
    await service.prepare(db, 120)  # a later start with another setting
    ttl = [
        index
        async for index in await db.events.list_indexes()
        if index["name"] == repository.TTL_INDEX
    ]
    assert ttl[0]["expireAfterSeconds"] == 120
    assert dict(ttl[0]["key"]) == {"time": 1}


async def test_the_tailer_reads_nothing_while_no_stream_is_open(db: Database) -> None:
    hub = _hub(db, change_streams=True, poll_seconds=0.05, idle_seconds=0.3)
    stop = asyncio.Event()
    task = asyncio.create_task(hub.run(stop))
    try:
        before = await _emit(db)
        await asyncio.sleep(0.5)  # ten polls' worth: none happens, no change stream opens
        assert (hub.frontier, hub.tailing, hub.watching) == (0, False, False)

        subscriber, frontier = await hub.subscribe(None, 30.0)
        assert frontier == before  # started from the newest stored event, as at a process start
        number = await _emit(db)
        while not (taken := subscriber.take()):
            await subscriber.wait(30.0)
        assert _numbers(taken) == [number]

        hub.unsubscribe(subscriber)
        for _ in range(3000):  # the tailer stops idle_seconds after the last stream closed
            if not hub.tailing:
                break
            await asyncio.sleep(0.01)
        assert (hub.tailing, hub.watching) == (False, False)
        quiet = await _emit(db)
        await asyncio.sleep(0.3)
        assert hub.frontier == number  # nothing read while quiet

        again, frontier = await hub.subscribe(None, 30.0)  # starts again, from the newest
        assert frontier == quiet
        later = await _emit(db)
        while not (taken := again.take()):
            await again.wait(30.0)
        assert _numbers(taken) == [later]
    finally:
        stop.set()
        await asyncio.wait_for(task, 30.0)
