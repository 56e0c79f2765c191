"""Group commit: one caller alone is written alone; callers arriving while a write is under
way share the next one; every item is written once, in order; a cancelled caller's item is
still written; a failing write releases its callers."""

from __future__ import annotations

import asyncio

import pytest
from drift_backend.store.group_commit import GroupCommit


class Recorder:
    def __init__(self, *, fail_first: bool = False) -> None:
        self.batches: list[list[int]] = []
        self.gate = asyncio.Event()
        self.gate.set()
        self.fail_first = fail_first

    async def flush(self, items: list[int]) -> None:
        self.batches.append(items)
        await self.gate.wait()
        if self.fail_first and len(self.batches) == 1:
            raise RuntimeError("boom")


async def test_a_caller_alone_is_written_alone_before_it_returns() -> None:
    recorder = Recorder()
    group = GroupCommit(recorder.flush)
    await group.submit(1)
    assert recorder.batches == [[1]]
    await group.submit(2)
    assert recorder.batches == [[1], [2]]


async def test_callers_during_a_write_share_the_next_one_in_order() -> None:
    recorder = Recorder()
    recorder.gate.clear()
    group = GroupCommit(recorder.flush, most=10)
    first = asyncio.create_task(group.submit(0))
    await asyncio.sleep(0)  # the first write starts and waits at the gate
    await asyncio.sleep(0)
    rest = [asyncio.create_task(group.submit(n)) for n in range(1, 26)]
    await asyncio.sleep(0)
    assert not any(task.done() for task in [first, *rest])
    recorder.gate.set()
    await asyncio.gather(first, *rest)
    assert recorder.batches == [[0], list(range(1, 11)), list(range(11, 21)), list(range(21, 26))]


async def test_a_cancelled_callers_item_is_still_written() -> None:
    recorder = Recorder()
    recorder.gate.clear()
    group = GroupCommit(recorder.flush)
    task = asyncio.create_task(group.submit(7))
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    recorder.gate.set()
    await group.submit(8)
    assert [7] in recorder.batches
    assert recorder.batches[-1] == [8]


async def test_a_failing_write_releases_its_callers_and_the_next_one_works(
    caplog: pytest.LogCaptureFixture,
) -> None:
    recorder = Recorder(fail_first=True)
    group = GroupCommit(recorder.flush)
    await group.submit(1)  # returns: the flush's errors are its own to handle
    assert "a group write failed" in caplog.text
    await group.submit(2)
    assert recorder.batches == [[1], [2]]
