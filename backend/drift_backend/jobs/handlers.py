"""What a job kind provides (:class:`JobKind`) and what its handler is given (:class:`WorkerContext`)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any

from drift_backend.jobs.queue import Claim, JobQueue
from drift_backend.settings import Settings
from drift_backend.store.database import Database

log = logging.getLogger(__name__)


@dataclass
class WorkerContext:
    db: Database
    queue: JobQueue
    pool: ProcessPoolExecutor
    settings: Settings
    #: Makes a pool like ``pool``, to replace it once broken; None: a broken pool stays.
    new_pool: Callable[[], ProcessPoolExecutor] | None = None

    async def compute(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run CPU-bound ``fn(*args)`` in the process pool.

        A pool process that dies (the OOM killer, say) breaks the whole pool: this call
        raises ``BrokenProcessPool``, but the pool is replaced first, so a retry can succeed.
        """
        pool = self.pool
        try:
            return await asyncio.get_running_loop().run_in_executor(pool, fn, *args)
        except BrokenProcessPool:
            self._replace_pool(pool)
            raise

    def _replace_pool(self, broken: ProcessPoolExecutor) -> None:
        if self.new_pool is None or self.pool is not broken:  # none, or replaced already
            return
        log.warning("a statistics process died and broke the process pool; starting a new one")
        self.pool = self.new_pool()
        broken.shutdown(wait=False, cancel_futures=True)


Handler = Callable[[Claim, WorkerContext], Awaitable[None]]
#: On a job whose attempts are all used up: record the failure on what the job was for.
GiveUp = Callable[[dict[str, Any], WorkerContext], Awaitable[None]]


@dataclass(frozen=True)
class JobKind:
    """One kind of job: how to run it, and what to do once every attempt failed."""

    handle: Handler
    give_up: GiveUp


class JobFailed(Exception):
    """A job that cannot succeed (bad data): recorded, not retried."""

    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(message)
        self.error = {"type": error_type, "message": message}
