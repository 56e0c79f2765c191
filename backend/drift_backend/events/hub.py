"""One tailer of the ``events`` collection per process, fanning new events out to its streams.

Events are numbered by one counter shared by every replica, but a number is taken before
the event is inserted, so a lower number can become visible after a higher one (two
replicas writing at once). The tailer therefore delivers strictly in number order: it holds
what comes after a hole until the hole fills, or until ``gap_seconds`` have passed (longer
than any insert may take: the number was taken and its insert failed), and then moves on.
A stream thus sees each event once and in order, and ``Last-Event-ID`` means "everything up
to here".

A change stream on inserts (where the server has them) wakes the tailer at once; without
one it polls every ``poll_seconds``.

**Only while someone listens.** The tailer runs while the process has streams, and for
``idle_seconds`` after the last one closed (a page reload reconnects at once); otherwise it
holds no change stream and reads nothing. An open change stream and a look per event cost
the database about as much as the run's own writes (measured on SecantusDB: 30 ms of
database time per created run with the tailer, 16 without; docs/benchmarks.md, API
benchmark), and most processes have no stream open most of the time. The first stream after
a quiet time starts it again from the newest stored event, as a process start does.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Collection

from drift_backend.errors import ServiceUnavailable
from drift_backend.events import repository
from drift_backend.store.cancellation import raise_if_cancelled
from drift_backend.store.changes import Doorbell, first_of
from drift_backend.store.database import Database, Document

log = logging.getLogger(__name__)

#: Events read per look at the collection.
BATCH = 500
#: Seconds a stream that is over the limit is told to wait (``Retry-After``).
FULL_RETRY_AFTER = 5
#: How long the tailer keeps going after the last stream closed.
IDLE_SECONDS = 30.0


class Subscriber:
    """One stream's share of the fan-out: a bounded queue of the events it may want.

    A subscriber that lets ``limit`` events pile up is dropped (:attr:`dropped` is set and
    its queue emptied) instead of being buffered without bound; its client reconnects with
    ``Last-Event-ID`` and replays what it missed from the collection.
    """

    def __init__(self, experiments: Collection[str] | None, limit: int) -> None:
        self.experiments = None if experiments is None else frozenset(experiments)
        self.limit = limit
        self._items: deque[Document] = deque()
        self._wake = asyncio.Event()
        self.dropped = asyncio.Event()

    def wants(self, event: Document) -> bool:
        return self.experiments is None or event["experiment_id"] in self.experiments

    def offer(self, event: Document) -> bool:
        """Queue ``event``; False (and dropped) when the queue was full."""
        if self.dropped.is_set():
            return False
        if len(self._items) >= self.limit:
            self._items.clear()
            self.dropped.set()
            self._wake.set()
            return False
        self._items.append(event)
        self._wake.set()
        return True

    def take(self) -> list[Document]:
        items = list(self._items)
        self._items.clear()
        self._wake.clear()
        return items

    def __len__(self) -> int:
        return len(self._items)

    async def wait(self, seconds: float) -> None:
        """Until something is queued (or the subscriber is dropped), at most ``seconds``."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), seconds)


class EventHub:
    def __init__(
        self,
        db: Database,
        *,
        poll_seconds: float,
        queue_size: int,
        max_streams: int,
        gap_seconds: float,
        change_streams: bool = True,
        idle_seconds: float = IDLE_SECONDS,
    ) -> None:
        self.db = db
        self.poll_seconds = poll_seconds
        self.queue_size = queue_size
        self.max_streams = max_streams
        self.gap_seconds = gap_seconds
        self.change_streams = change_streams
        self.idle_seconds = idle_seconds
        self.subscribers: set[Subscriber] = set()
        #: Every event numbered up to here has been handed out (or given up on).
        self.frontier = 0
        #: Streams dropped for not keeping up, since start (for tests and logs).
        self.dropped = 0
        self._started = asyncio.Event()
        #: Set while a stream waits for the tailer to start (or streams are open).
        self._wanted = asyncio.Event()
        self._waiting = 0
        self._pending: dict[int, Document] = {}
        self._gap_since: float | None = None
        self._bell: Doorbell | None = None

    @property
    def tailing(self) -> bool:
        """Whether the tailer runs (streams are open, or closed under ``idle_seconds`` ago)."""
        return self._bell is not None

    @property
    def watching(self) -> bool:
        """Whether a change stream wakes the tailer (else it polls)."""
        return self._bell is not None and self._bell.live

    # Streams ---------------------------------------------------------------------------------
    async def subscribe(
        self, experiments: Collection[str] | None, wait_seconds: float
    ) -> tuple[Subscriber, int]:
        """A new subscriber, and the number up to which it must replay from the collection
        itself (every later event reaches its queue)."""
        if len(self.subscribers) >= self.max_streams:
            raise ServiceUnavailable(
                f"this server has {self.max_streams} open event streams; try again later",
                retry_after=FULL_RETRY_AFTER,
            )
        if not self._started.is_set():
            self._waiting += 1
            self._wanted.set()
            try:
                await asyncio.wait_for(self._started.wait(), wait_seconds)
            except TimeoutError:
                raise ServiceUnavailable("the event stream is not ready; try again later") from None
            finally:
                self._waiting -= 1
        subscriber = Subscriber(experiments, self.queue_size)
        self.subscribers.add(subscriber)  # no await since reading the frontier: none missed
        return subscriber, self.frontier

    def unsubscribe(self, subscriber: Subscriber) -> None:
        self.subscribers.discard(subscriber)

    # The tailer ------------------------------------------------------------------------------
    async def run(self, stop: asyncio.Event) -> None:
        """Tail the collection while streams want it, until ``stop`` is set."""
        while not stop.is_set():
            await first_of(self._wanted.wait(), stop.wait())
            if not stop.is_set():
                await self._tail(stop)

    def _quiet(self) -> bool:
        return not self.subscribers and self._waiting == 0

    async def _tail(self, stop: asyncio.Event) -> None:
        """Until ``stop``, or until no stream has been open for ``idle_seconds``."""
        self._bell = bell = Doorbell(repository.collection(self.db), streams=self.change_streams)
        listener = asyncio.create_task(bell.run(stop))
        loop = asyncio.get_running_loop()
        failing = False
        quiet_since: float | None = None
        try:
            while not stop.is_set():
                if not self._quiet():
                    quiet_since = None
                elif quiet_since is None:
                    quiet_since = loop.time()
                elif loop.time() - quiet_since >= self.idle_seconds:
                    # No await from the check to here: a new stream either found the
                    # tailer started or finds it stopped and asks for it again.
                    self._started.clear()
                    self._wanted.clear()
                    self._pending.clear()
                    self._gap_since = None
                    return
                bell.clear()  # before looking: a ring during the look is kept
                try:
                    if not self._started.is_set():
                        await self.start()
                    await self.poll()
                    if failing:
                        log.warning("reading new events works again")
                    failing = False
                except Exception:  # the database may be away for a while: look again later
                    raise_if_cancelled()
                    level = logging.DEBUG if failing else logging.WARNING  # once per outage
                    log.log(level, "reading new events failed", exc_info=True)
                    failing = True
                await bell.wait(self.poll_seconds, stop)
        finally:
            self._bell = None
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listener

    async def start(self) -> None:
        """Begin after the newest stored event (or the counter, when every event expired)."""
        newest = await repository.newest_seq(self.db)
        self.frontier = newest if newest is not None else await repository.counter_value(self.db)
        self._started.set()

    async def poll(self) -> None:
        """Read what is new and hand out every event whose turn has come."""
        while True:
            docs = await repository.after(self.db, self.frontier, BATCH)
            for doc in docs:
                if doc["_id"] > self.frontier:
                    self._pending[doc["_id"]] = doc
            moved = self._deliver()
            if len(docs) < BATCH or not moved:
                return

    def _deliver(self) -> bool:
        loop = asyncio.get_running_loop()
        moved = False
        while self._pending:
            following = self.frontier + 1
            if following in self._pending:
                self.frontier = following
                self._fan_out(self._pending.pop(following))
                self._gap_since = None
                moved = True
                continue
            # A hole: an event numbered before ones already visible is not visible yet.
            now = loop.time()
            if self._gap_since is None:
                self._gap_since = now
            if now - self._gap_since < self.gap_seconds:
                break
            skip_to = min(self._pending) - 1
            log.warning("events %d..%d never appeared; going on without them", following, skip_to)
            self.frontier = skip_to
            self._gap_since = None
        return moved

    def _fan_out(self, event: Document) -> None:
        for subscriber in list(self.subscribers):
            if subscriber.wants(event) and not subscriber.offer(event):
                self.subscribers.discard(subscriber)
                self.dropped += 1
                log.info("dropped an event stream that fell %d events behind", self.queue_size)
