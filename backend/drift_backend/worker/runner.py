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
from collections.abc import Mapping

from pymongo.errors import PyMongoError

from drift_backend.jobs.handlers import JobFailed, JobKind, WorkerContext
from drift_backend.jobs.queue import Claim, JobQueue
from drift_backend.store.cancellation import raise_if_cancelled
from drift_backend.store.changes import Doorbell

log = logging.getLogger(__name__)
#: Idle polls without a change stream; also the first pause after an error in the loop.
POLL_SECONDS = 0.05
#: Idle polls while a change stream announces new jobs (expired leases make no change event).
LEASE_POLL_SECONDS = 1.0
#: How often to look for jobs whose every attempt died.
SWEEP_SECONDS = 5.0
#: The longest pause between tries while the job loop keeps failing (the database is away).
MAX_ERROR_PAUSE = 5.0


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


async def _keep_leased(queue: JobQueue, claim: Claim, every: float) -> None:
    while True:
        await asyncio.sleep(every)
        try:
            kept = await queue.heartbeat(claim)
        except PyMongoError as error:
            # The database is away: the lease still runs (beats come several times per
            # lease), and a job stopped for a blip would cost an attempt for nothing.
            log.warning("heartbeat of job %s failed (%s); trying again", claim.id, error)
            continue
        if not kept:
            log.warning("lost the lease of job %s; another worker took it over", claim.id)
            return


async def _run_one(claim: Claim, kind: JobKind, ctx: WorkerContext, heartbeat_every: float) -> None:
    keeper = asyncio.create_task(_keep_leased(ctx.queue, claim, heartbeat_every))
    work: asyncio.Future[None] = asyncio.ensure_future(kind.handle(claim, ctx))
    try:
        await asyncio.wait({keeper, work}, return_when=asyncio.FIRST_COMPLETED)
        if not work.done():  # the lease was lost: the job is another worker's now
            work.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await work
            return
        await _record_outcome(claim, work, kind, ctx)
    except PyMongoError as error:
        # Recording the outcome needs the database too; when it is away the lease runs out
        # and the job is claimed again, and the idempotent result write makes that safe.
        log.warning("could not record the outcome of job %s: %s", claim.id, error)
    finally:
        for task in (work, keeper):
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await keeper


async def _record_outcome(
    claim: Claim, work: asyncio.Future[None], kind: JobKind, ctx: WorkerContext
) -> None:
    try:
        await work  # its outcome, exceptions included
    except JobFailed as failure:
        if await ctx.queue.finish(claim, error=failure.error):
            await kind.give_up({**claim.job, "error": failure.error}, ctx)
    except (PyMongoError, OSError) as error:  # transient: give the attempt back
        log.warning("job %s attempt %d failed transiently: %s", claim.id, claim.attempt, error)
        await ctx.queue.release(claim, {"type": type(error).__name__, "message": str(error)})
    except Exception as error:  # a bug or a crashed pool process: retried while attempts last
        log.exception("job %s attempt %d crashed", claim.id, claim.attempt)
        await ctx.queue.release(claim, {"type": type(error).__name__, "message": str(error)})
    else:
        await ctx.queue.finish(claim)


async def run_worker(
    ctx: WorkerContext,
    kinds: Mapping[str, JobKind],
    *,
    concurrency: int,
    poll_seconds: float = POLL_SECONDS,
    heartbeat_seconds: float = 10.0,
    stop: asyncio.Event | None = None,
) -> None:
    """Claim and run jobs of ``kinds`` until ``stop`` is set; at most ``concurrency`` at a time."""
    name = worker_name()
    stop = stop or asyncio.Event()
    bell = Doorbell(ctx.queue.jobs, streams=ctx.settings.change_streams)
    listener = asyncio.create_task(bell.run(stop))
    slots = asyncio.Semaphore(concurrency)
    running: set[asyncio.Task[None]] = set()
    log.info("worker %s started (%d slots)", name, concurrency)
    loop = asyncio.get_running_loop()
    next_sweep = 0.0
    errors = 0  # in a row: the pause after each grows, so an outage is not polled hot
    while not stop.is_set():
        await slots.acquire()
        claim: Claim | None = None
        started = False  # a task took the slot: it gives it back when done
        pause: float | None = None
        try:
            if loop.time() >= next_sweep:  # dead jobs are rare: look every few seconds
                next_sweep = loop.time() + SWEEP_SECONDS
                for job in await ctx.queue.exhausted():
                    dead = kinds.get(job["kind"])
                    if dead is not None:
                        await dead.give_up(job, ctx)
            bell.clear()
            claim = await ctx.queue.claim(name)
            if claim is not None:
                kind = kinds.get(claim.job["kind"])
                if kind is None:
                    await ctx.queue.finish(
                        claim,
                        error={
                            "type": "UnknownJob",
                            "message": f"no handler for {claim.job['kind']}",
                        },
                    )
                else:
                    task = asyncio.create_task(_run_one(claim, kind, ctx, heartbeat_seconds))
                    started = True
                    running.add(task)
                    task.add_done_callback(running.discard)
                    task.add_done_callback(lambda _: slots.release())
            errors = 0
        except PyMongoError as error:
            raise_if_cancelled()
            errors += 1
            pause = min(poll_seconds * 2**errors, MAX_ERROR_PAUSE)
            # The traceback once per outage, not on every retry.
            log.warning("job queue unreachable (%s); retrying", error, exc_info=errors == 1)
            claim = None
        except Exception:  # a bug must not end the loop: log it, pause, go on
            raise_if_cancelled()
            errors += 1
            pause = min(poll_seconds * 2**errors, MAX_ERROR_PAUSE)
            log.exception("worker %s: unexpected error in the job loop; retrying", name)
            claim = None
        if not started:
            slots.release()
        if pause is not None:
            # Not bell.wait: a broken change stream rings at once.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), pause)
        elif claim is None:  # nothing claimed: wait before looking again
            # With a change stream, new jobs ring at once: the poll only catches expired leases.
            await bell.wait(
                max(poll_seconds, LEASE_POLL_SECONDS) if bell.live else poll_seconds, stop
            )
    listener.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await listener
    if running:
        await asyncio.gather(*running, return_exceptions=True)
