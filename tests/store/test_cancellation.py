"""A retry loop that catches errors still stops when its task is cancelled, even when the
cancellation reaches it disguised as another error (as PyMongo's server selection does)."""

from __future__ import annotations

import asyncio

import pytest
from drift_backend.store.cancellation import raise_if_cancelled


async def _retry_loop(attempts: list[int]) -> None:
    while True:
        attempts.append(1)
        try:
            try:
                await asyncio.sleep(10)
            except asyncio.CancelledError:
                # What PyMongo did here: "Lock is not acquired" instead of the cancellation.
                raise RuntimeError("Lock is not acquired") from None
        except Exception:  # the loop's "ride out the outage" handler
            raise_if_cancelled()
        await asyncio.sleep(0)


async def test_a_disguised_cancellation_still_stops_the_loop() -> None:
    attempts: list[int] = []
    task = asyncio.create_task(_retry_loop(attempts))
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, 5)
    assert attempts == [1]


async def test_an_ordinary_error_is_left_to_the_handler() -> None:
    async def fails_once() -> str:
        try:
            raise RuntimeError("the database is away")
        except RuntimeError:
            raise_if_cancelled()
            return "retried"

    assert await fails_once() == "retried"
