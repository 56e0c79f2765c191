"""Wake-ups from MongoDB change streams, with polling as the fallback.

A queued check should start, and a waiting request should answer, as soon as the document
they wait for changes, not at the next poll. Change streams need a replica set (or a server
that has them, like SecantusDB); on a standalone ``mongod`` opening one fails and the callers
poll instead, so either deployment works and a replica set is only faster.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from pymongo.asynchronous.change_stream import AsyncChangeStream
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import PyMongoError

from drift_backend.store.database import Document, database_unavailable

log = logging.getLogger(__name__)

#: How long one server-side wait for a change lasts before the caller looks at its clock.
AWAIT_MS = 200
#: Polling without change streams: the first pause, doubled up to the last.
POLL_FIRST, POLL_MAX = 0.005, 0.1
#: Pause before reopening a change stream that broke or could not open (the database away).
REOPEN_SECONDS = 0.5


async def _open(
    collection: AsyncCollection[Document], pipeline: list[dict[str, Any]]
) -> AsyncChangeStream[Document] | None:
    try:
        return await collection.watch(pipeline, max_await_time_ms=AWAIT_MS)
    except PyMongoError as error:  # standalone mongod: "The $changeStream stage is only
        if database_unavailable(error):  # an outage, not a server without streams
            raise
        log.debug("no change streams on %s (%s); polling", collection.name, error)
        return None


class Doorbell:
    """Rings on every insert into a collection, for a loop that would otherwise poll it.

    :meth:`run` keeps a change stream open (reopening it after errors); while none is open,
    :attr:`live` is False and the loop should keep its short poll.
    """

    def __init__(self, collection: AsyncCollection[Document], *, streams: bool = True) -> None:
        self.collection = collection
        self.streams = streams
        self.live = False
        self._rung = asyncio.Event()

    async def run(self, stop: asyncio.Event) -> None:
        while self.streams and not stop.is_set():
            try:
                stream = await _open(self.collection, [{"$match": {"operationType": "insert"}}])
            except PyMongoError as error:  # the database is away: try again soon
                level = logging.WARNING if self.live else logging.DEBUG  # once per outage
                log.log(level, "cannot open a change stream on %s: %s", self.collection.name, error)
                self.live = False
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), REOPEN_SECONDS)
                continue
            if stream is None:
                self.live = False
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), 30.0)  # maybe the server gains them
                continue
            self.live = True
            try:
                while not stop.is_set():
                    if await stream.try_next() is not None:
                        self._rung.set()
            except PyMongoError:
                log.warning("change stream on %s broke; reopening", self.collection.name)
                self.live = False
                self._rung.set()  # something may have been missed: look now
                await asyncio.sleep(REOPEN_SECONDS)
            finally:
                with contextlib.suppress(PyMongoError):
                    await stream.close()

    def clear(self) -> None:
        """Forget earlier rings: call before looking, so a ring after the look is kept."""
        self._rung.clear()

    async def wait(self, seconds: float, stop: asyncio.Event) -> bool:
        """Until a ring, ``stop`` or ``seconds``, whichever comes first; True on a ring."""
        await first_of(self._rung.wait(), stop.wait(), seconds=seconds)
        return self._rung.is_set()


async def first_of(*waits: Coroutine[Any, Any, Any], seconds: float | None = None) -> None:
    """Until the first of ``waits`` returns, or ``seconds`` pass (the others are
    cancelled)."""
    tasks = [asyncio.ensure_future(wait) for wait in waits]
    try:
        await asyncio.wait(tasks, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()


async def wait_for_document(
    collection: AsyncCollection[Document],
    doc_id: Any,
    ready: Callable[[Document], bool],
    seconds: float,
    *,
    streams: bool = True,
) -> Document | None:
    """The document once ``ready(document)`` holds, looked up again on each change to it;
    None when ``seconds`` pass first (the wait may overrun by ``AWAIT_MS``) or it is
    gone."""
    loop = asyncio.get_running_loop()
    end = loop.time() + seconds
    # Opened before the first look, so a change between the look and the wait is not missed.
    stream = await _open(collection, [{"$match": {"documentKey._id": doc_id}}]) if streams else None
    pause = POLL_FIRST
    try:
        while True:
            doc = await collection.find_one({"_id": doc_id})
            if doc is None or ready(doc):
                return doc
            if loop.time() >= end:
                return None
            if stream is None:
                await asyncio.sleep(min(pause, max(0.0, end - loop.time())))
                pause = min(pause * 2, POLL_MAX)
                continue
            try:
                while loop.time() < end and await stream.try_next() is None:
                    pass
            except PyMongoError:
                with contextlib.suppress(PyMongoError):
                    await stream.close()
                stream = None  # poll for the rest of the wait
    finally:
        if stream is not None:
            with contextlib.suppress(PyMongoError):
                await stream.close()
