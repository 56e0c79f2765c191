"""The worker: claims jobs from the queue and runs them, the statistics in a process pool.

Any number of workers (processes, hosts) share the queue; ``drift-monitor-server worker
--processes N`` runs one with N statistics processes, and the local stack runs one inside the
backend process.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from collections.abc import Awaitable, Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any

from pymongo.errors import PyMongoError

from drift_backend.settings import Settings
from drift_backend.store.changes import Doorbell
from drift_backend.store.database import Database
from drift_backend.worker.queue import Claim, JobQueue

log = logging.getLogger(__name__)
#: Idle polls while a change stream announces new jobs (expired leases make no change event).
LEASE_POLL_SECONDS = 1.0


@dataclass
class WorkerContext:
    db: Database
    queue: JobQueue
    pool: ProcessPoolExecutor
    settings: Settings

    async def compute(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run CPU-bound ``fn(*args)`` in the process pool."""
        return await asyncio.get_running_loop().run_in_executor(self.pool, fn, *args)


Handler = Callable[[Claim, WorkerContext], Awaitable[None]]
#: On a job whose attempts are all used up: record the failure on what the job was for.
GiveUp = Callable[[dict[str, Any], WorkerContext], Awaitable[None]]


class JobFailed(Exception):
    """A job that cannot succeed (bad data): recorded, not retried."""

    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(message)
        self.error = {"type": error_type, "message": message}


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


async def _keep_leased(queue: JobQueue, claim: Claim, every: float) -> None:
    while True:
        await asyncio.sleep(every)
        if not await queue.heartbeat(claim):
            log.warning("lost the lease of job %s; another worker took it over", claim.id)
            return


async def _run_one(
    claim: Claim, handler: Handler, give_up: GiveUp, ctx: WorkerContext, heartbeat_every: float
) -> None:
    keeper = asyncio.create_task(_keep_leased(ctx.queue, claim, heartbeat_every))
    try:
        await handler(claim, ctx)
    except JobFailed as failure:
        if await ctx.queue.finish(claim, error=failure.error):
            await give_up({**claim.job, "error": failure.error}, ctx)
    except (PyMongoError, OSError) as error:  # transient: give the attempt back
        log.warning("job %s attempt %d failed transiently: %s", claim.id, claim.attempt, error)
        await ctx.queue.release(claim, {"type": type(error).__name__, "message": str(error)})
    except Exception as error:  # a bug or a crashed pool process: retried while attempts last
        log.exception("job %s attempt %d crashed", claim.id, claim.attempt)
        await ctx.queue.release(claim, {"type": type(error).__name__, "message": str(error)})
    else:
        await ctx.queue.finish(claim)
    finally:
        keeper.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await keeper


async def run_worker(
    ctx: WorkerContext,
    handlers: dict[str, Handler],
    give_up: GiveUp,
    *,
    concurrency: int,
    poll_seconds: float = 0.5,
    heartbeat_seconds: float = 10.0,
    stop: asyncio.Event | None = None,
) -> None:
    """Claim and run jobs until ``stop`` is set; at most ``concurrency`` at a time."""
    name = worker_name()
    stop = stop or asyncio.Event()
    bell = Doorbell(ctx.db.jobs, streams=ctx.settings.change_streams)
    listener = asyncio.create_task(bell.run(stop))
    slots = asyncio.Semaphore(concurrency)
    running: set[asyncio.Task[None]] = set()
    log.info("worker %s started (%d slots)", name, concurrency)
    loop = asyncio.get_running_loop()
    next_sweep = 0.0
    while not stop.is_set():
        await slots.acquire()
        try:
            if loop.time() >= next_sweep:  # dead jobs are rare: look every few seconds
                next_sweep = loop.time() + 5.0
                for job in await ctx.queue.exhausted():
                    await give_up(job, ctx)
            bell.clear()
            claim = await ctx.queue.claim(name)
        except PyMongoError:
            log.warning("job queue unreachable; retrying", exc_info=True)
            claim = None
        if claim is None:
            slots.release()
            # With a change stream, new jobs ring at once: the poll only catches expired leases.
            await bell.wait(
                max(poll_seconds, LEASE_POLL_SECONDS) if bell.live else poll_seconds, stop
            )
            continue
        handler = handlers.get(claim.job["kind"])
        if handler is None:
            slots.release()
            await ctx.queue.finish(
                claim,
                error={"type": "UnknownJob", "message": f"no handler for {claim.job['kind']}"},
            )
            continue
        task = asyncio.create_task(_run_one(claim, handler, give_up, ctx, heartbeat_seconds))
        running.add(task)
        task.add_done_callback(running.discard)
        task.add_done_callback(lambda _: slots.release())
    listener.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await listener
    if running:
        await asyncio.gather(*running, return_exceptions=True)
