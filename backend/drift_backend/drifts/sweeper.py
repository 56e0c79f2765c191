"""Marks Running drift runs that stopped reporting as Failed with error type ``Timeout``
(:func:`.service.fail_stale_runs`), in the background.

Every backend replica runs it; the update is idempotent, so replicas need no coordination.
"""

from __future__ import annotations

import asyncio
import logging

from drift_backend.drifts.service import fail_stale_runs
from drift_backend.store.cancellation import raise_if_cancelled
from drift_backend.store.database import Database

log = logging.getLogger(__name__)


async def sweep_forever(db: Database, timeout_seconds: float, interval_seconds: float) -> None:
    failing = False
    while True:
        try:
            failed = await fail_stale_runs(db, timeout_seconds)
            if failed:
                log.info("marked %d stale drift runs as Failed (Timeout)", failed)
            if failing:
                log.warning("stale-run sweep works again")
            failing = False
        except Exception:  # the database may be away for a while; try again next round
            raise_if_cancelled()
            # A warning with its traceback once per outage, not every round of it.
            level = logging.DEBUG if failing else logging.WARNING
            log.log(level, "stale-run sweep failed", exc_info=True)
            failing = True
        await asyncio.sleep(interval_seconds)
