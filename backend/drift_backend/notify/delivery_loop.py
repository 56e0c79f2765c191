"""The delivery loop each worker runs beside its job runner: hand queued notifications to
their targets (one delivery each), then claim due deliveries, send them, record the outcome
and schedule retries."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta

from drift_backend.notify import deliveries, repository, targets
from drift_backend.notify.outbound import AllowList, Limits, Outbound
from drift_backend.notify.send import Outcome, send
from drift_backend.schemas import utcnow
from drift_backend.settings import Settings
from drift_backend.store.cancellation import raise_if_cancelled
from drift_backend.store.database import Database, Document

log = logging.getLogger(__name__)

#: Each retry waits its scheduled time times a factor in [1 - JITTER, 1 + JITTER], so
#: deliveries failed together do not all come back at once.
JITTER = 0.2
EXPAND_BATCH = 100


def outbound_for(settings: Settings) -> Outbound:
    """The outbound transport configured by the settings (``DRIFT_OUTBOUND_ALLOW``, ``DRIFT_DELIVERY_*``)."""
    return Outbound(
        AllowList.parse(settings.outbound_allow),
        Limits(
            connect_seconds=settings.delivery_connect_timeout_seconds,
            read_seconds=settings.delivery_read_timeout_seconds,
            total_seconds=settings.delivery_total_timeout_seconds,
            max_response_bytes=settings.delivery_max_response_bytes,
        ),
    )


class Deliverer:
    def __init__(
        self,
        db: Database,
        settings: Settings,
        outbound: Outbound,
        *,
        clock: Callable[[], datetime] = utcnow,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self.db = db
        self.settings = settings
        self.outbound = outbound
        self.clock = clock
        self.rng = rng

    async def expand(self, now: datetime | None = None) -> int:
        """Write the deliveries of queued notifications; how many notifications."""
        now = now or self.clock()
        queued = await repository.waiting_for_expansion(self.db, EXPAND_BATCH)
        for notification in queued:
            chosen = await self._targets_of(notification)
            await deliveries.insert_for(self.db, notification, chosen, now)
            await repository.mark_expanded(self.db, notification["_id"], [t["_id"] for t in chosen])
        return len(queued)

    async def _targets_of(self, notification: Document) -> list[Document]:
        every = await targets.list_for(self.db, notification["experiment_id"])
        wanted = notification.get("target_ids")
        return [
            target
            for target in every
            if target.get("enabled", True) and (wanted is None or target["_id"] in wanted)
        ]

    async def deliver_one(self, now: datetime | None = None) -> bool:
        """Claim one due delivery and deliver it; False when none is due."""
        now = now or self.clock()
        # A lease shorter than a request would let a second worker send while the first
        # still waits for its answer.
        lease = max(
            self.settings.delivery_lease_seconds,
            self.settings.delivery_total_timeout_seconds + 5,
        )
        claimed = await deliveries.claim(self.db, now, lease)
        if claimed is None:
            return False
        notification = await repository.get(self.db, claimed["notification_id"])
        target = await targets.by_id(self.db, claimed["target_id"])
        why = _unsendable(notification, target)
        if why is not None or notification is None or target is None:
            await deliveries.finish(self.db, claimed, deliveries.FAILED, _note(now, str(why)))
            return True
        if target["kind"] == "slack":
            opens = await targets.reserve_send_slot(
                self.db, target["_id"], now, self.settings.delivery_slack_interval_seconds
            )
            if opens is not None:
                await deliveries.postpone(self.db, claimed, opens)
                return True
        message = repository.message_from(notification)
        outcome = await send(self.outbound, target, message, self.settings.public_base_url)
        await self._record(claimed, target, outcome, now)
        return True

    async def _record(
        self, claimed: Document, target: Document, outcome: Outcome, now: datetime
    ) -> None:
        record = outcome.record(now)
        if outcome.gone:
            await targets.disable(self.db, target["_id"], "the receiver answered 410 Gone")
        if outcome.verdict != "retry":
            await deliveries.finish(self.db, claimed, outcome.verdict, record)
            return
        schedule = self.settings.delivery_retry_seconds
        attempt = int(claimed["attempts"])
        if attempt > len(schedule):
            record["error"] = f"{record['error']}; gave up after {attempt} attempts"
            await deliveries.finish(self.db, claimed, deliveries.FAILED, record)
            return
        wait = schedule[attempt - 1] * (1 - JITTER + 2 * JITTER * self.rng())
        if outcome.retry_after_seconds is not None:
            wait = max(wait, outcome.retry_after_seconds)
            if target["kind"] == "slack":
                await targets.hold_until(
                    self.db, target["_id"], now + timedelta(seconds=outcome.retry_after_seconds)
                )
        due = now + timedelta(seconds=wait)
        deadline = claimed["created_at"] + timedelta(seconds=self.settings.delivery_max_age_seconds)
        if due > deadline:
            record["error"] = f"{record['error']}; gave up: the next attempt would be too late"
            await deliveries.finish(self.db, claimed, deliveries.FAILED, record)
            return
        await deliveries.finish(self.db, claimed, deliveries.PENDING, record, due_at=due)

    async def run(self, stop: asyncio.Event) -> None:
        """Expand and deliver until ``stop`` is set; a database outage is waited out."""
        workers = [
            asyncio.create_task(self._deliver_forever(stop))
            for _ in range(self.settings.delivery_concurrency)
        ]
        try:
            while not stop.is_set():
                try:
                    await self.expand()
                except Exception:
                    raise_if_cancelled()
                    log.warning("expanding notifications failed", exc_info=True)
                await _wait(stop, self.settings.delivery_poll_seconds)
        finally:
            for worker in workers:
                worker.cancel()
            await asyncio.gather(*workers, return_exceptions=True)

    async def _deliver_forever(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                if await self.deliver_one():
                    continue
            except Exception:
                raise_if_cancelled()
                log.warning("delivering a notification failed", exc_info=True)
            await _wait(stop, self.settings.delivery_poll_seconds)


def _unsendable(notification: Document | None, target: Document | None) -> str | None:
    """Why a claimed delivery cannot be sent any more (None when it can)."""
    if notification is None:
        return "the notification was deleted"
    if target is None:
        return "the target was deleted"
    if not target.get("enabled", True):
        return "the target is disabled"
    return None


def _note(now: datetime, error: str) -> dict[str, object]:
    return {"at": now, "outcome": "failed", "error": error}


async def _wait(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)


@contextlib.asynccontextmanager
async def running_deliveries(db: Database, settings: Settings) -> AsyncIterator[asyncio.Task[None]]:
    """The delivery loop in the background until the block ends."""
    outbound = outbound_for(settings)
    stop = asyncio.Event()
    task = asyncio.create_task(Deliverer(db, settings, outbound).run(stop))
    try:
        yield task
    finally:
        stop.set()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(task, timeout=30)
        await outbound.aclose()
