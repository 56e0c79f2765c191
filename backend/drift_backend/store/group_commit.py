"""Group commit: many requests' small follow-up writes made as one.

Each created run is followed by writes of its own (its count marker, the timeline's
counts, its model's totals, an event number and the event). On SecantusDB every command
costs about a millisecond of the database's CPU whatever it holds, so under load these
follow-ups cost several times the run's own insert. A :class:`GroupCommit` collects what
callers hand it while a write is under way and makes the next write for all of them, the
way databases commit their logs: one caller alone waits for its own write, as before;
sixty-four at once share one.

A caller's :meth:`submit` returns once its item is written (the write's errors are the
flush function's to handle: it must not raise). If the caller is cancelled, its item is
still written.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

from drift_backend.store.cancellation import raise_if_cancelled

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Items one write takes at most (a larger backlog is written in several).
MOST = 500


class GroupCommit(Generic[T]):
    def __init__(self, flush: Callable[[list[T]], Awaitable[None]], *, most: int = MOST) -> None:
        self._flush = flush
        self._most = most
        self._waiting: list[tuple[T, asyncio.Future[None]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def submit(self, item: T) -> None:
        """Until ``item`` has been written (with whatever else was waiting)."""
        loop = asyncio.get_running_loop()
        done = loop.create_future()
        self._waiting.append((item, done))
        # A writer of another event loop (one that stopped under it) never drains again.
        if self._writer is None or self._writer.done() or self._writer.get_loop() is not loop:
            self._writer = asyncio.create_task(self._write())
        await asyncio.shield(done)

    async def _write(self) -> None:
        while self._waiting:
            batch = self._waiting[: self._most]
            del self._waiting[: self._most]
            try:
                await self._flush([item for item, _ in batch])
            except Exception:  # the flush handles its own errors; this is a bug, not an outage
                raise_if_cancelled()
                log.exception("a group write failed")
            finally:
                for _, done in batch:
                    if not done.done() and not done.get_loop().is_closed():
                        done.set_result(None)
