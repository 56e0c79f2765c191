"""Assemble a worker: the queue, the process pool and the job kinds it is handed.

The table of job kinds comes from the composition root (``main.job_kinds``), so the worker
never imports the packages whose jobs it runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

from drift_backend.jobs.handlers import JobKind, WorkerContext
from drift_backend.jobs.queue import JobQueue
from drift_backend.memory import MIB, retain_freed_memory
from drift_backend.notify.delivery_loop import running_deliveries
from drift_backend.settings import Settings
from drift_backend.store.cancellation import raise_if_cancelled
from drift_backend.store.database import Database
from drift_backend.store.process_client import configure
from drift_backend.worker.runner import POLL_SECONDS, run_worker

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Periodic:
    """Work a worker does every ``every_seconds`` besides its jobs (the alerts' tick: groups
    whose time has come), handed in by the composition root like the job kinds."""

    name: str
    every_seconds: float
    run: Callable[[Database], Awaitable[object]]


async def _every(db: Database, periodic: Periodic, stop: asyncio.Event) -> None:
    while not stop.is_set():
        try:
            await periodic.run(db)
        except Exception:  # the database may be briefly away; the next round tries again
            raise_if_cancelled()
            log.warning("periodic %s failed", periodic.name, exc_info=True)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), periodic.every_seconds)


def _start_statistics_process(retain_bytes: int, url: str, name: str, timeout: float) -> None:
    """A statistics process's start: it reuses its freed batch buffers (drift_backend.memory)
    and reads stored batches from the database itself (store.process_client)."""
    retain_freed_memory(retain_bytes)
    configure(url, name, timeout)


@contextlib.asynccontextmanager
async def running_worker(
    db: Database,
    settings: Settings,
    kinds: Mapping[str, JobKind],
    *,
    processes: int | None = None,
    poll_seconds: float = POLL_SECONDS,
    periodic: Sequence[Periodic] = (),
) -> AsyncIterator[asyncio.Task[None]]:
    """A worker loop running in the background until the block ends."""
    size = processes or settings.worker_processes

    def new_pool() -> ProcessPoolExecutor:
        # spawn, not fork: fork would copy the parent's threads (uvicorn, the driver) mid-state.
        return ProcessPoolExecutor(
            size,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_start_statistics_process,
            initargs=(
                settings.retain_freed_memory_mb * MIB,
                settings.mongodb_url.get_secret_value(),
                db.name,
                settings.mongodb_timeout_seconds,
            ),
        )

    queue = JobQueue(
        db, lease_seconds=settings.job_lease_seconds, max_attempts=settings.job_max_attempts
    )
    ctx = WorkerContext(db=db, queue=queue, pool=new_pool(), settings=settings, new_pool=new_pool)
    stop = asyncio.Event()
    task = asyncio.create_task(
        run_worker(
            ctx,
            kinds,
            concurrency=size,
            poll_seconds=poll_seconds,
            heartbeat_seconds=max(0.05, settings.job_lease_seconds / 3),
            stop=stop,
        )
    )
    rounds = [asyncio.create_task(_every(db, p, stop)) for p in periodic]
    try:
        async with contextlib.AsyncExitStack() as beside:
            # notify: alert deliveries go out from every worker, beside its jobs.
            if settings.delivery_enabled:
                await beside.enter_async_context(running_deliveries(db, settings))
            yield task
    finally:
        stop.set()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(task, timeout=30)
        for round_ in rounds:
            round_.cancel()
        await asyncio.gather(*rounds, return_exceptions=True)
        ctx.pool.shutdown(wait=False, cancel_futures=True)  # the pool now: it may be a new one


async def serve_worker(
    settings: Settings,
    processes: int,
    kinds: Mapping[str, JobKind],
    periodic: Sequence[Periodic] = (),
) -> None:
    """The ``worker`` command: run until SIGTERM or SIGINT, then finish the jobs in hand."""
    import logging.config
    import signal

    from drift_backend import logs
    from drift_backend.store.database import connect, ensure_indexes

    logging.config.dictConfig(logs.config(settings.log_level))
    retain_freed_memory(settings.retain_freed_memory_mb * MIB)  # before the driver's threads
    mongo = connect(
        settings.mongodb_url.get_secret_value(), timeout_seconds=settings.mongodb_timeout_seconds
    )
    try:
        db = mongo[settings.mongodb_database]
        await ensure_indexes(db)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        async with running_worker(db, settings, kinds, processes=processes, periodic=periodic):
            print(f"worker running with {processes} statistics processes", flush=True)
            await stop.wait()
    finally:
        await mongo.close()
