"""A statistics process that dies (say the OOM killer took it) breaks the worker's process pool;
the worker replaces the pool, so the job that met the broken pool is retried and completes.
And an unexpected error in the worker's loop is logged, not the end of the worker."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import signal
import uuid
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from drift_backend.devstack.services import ManagedProcess
from drift_backend.jobs.handlers import JobKind, WorkerContext
from drift_backend.jobs.queue import DONE, FAILED, Claim, JobQueue
from drift_backend.main import job_kinds
from drift_backend.store.database import connect, ensure_indexes
from drift_backend.worker.runner import run_worker
from drift_backend.worker.service import running_worker

from tests.checks.test_check_api import frame
from tests.conftest import Api, make_settings

#: Hang guards only: a check takes well under a second once the pool has started.
GUARD_SECONDS = 120


def _pool_processes() -> set[int]:
    """Pids of the spawned pool processes that are children of this (the test) process."""
    me = os.getpid()
    found: set[int] = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:  # exited meanwhile
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        # The resource tracker is a spawned child too, but it runs resource_tracker.main.
        if ppid == me and b"multiprocessing" in cmdline and b"spawn_main" in cmdline:
            found.add(int(entry.name))
    return found


async def _gone(pid: int) -> None:
    """Until ``pid`` has exited (a zombie counts: it runs no more)."""
    while True:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return
        if stat.rsplit(")", 1)[1].split()[0] in ("Z", "X"):
            return
        await asyncio.sleep(0.01)


async def _finished_check(api: Api, exp: dict[str, Any], baseline: str) -> dict[str, Any]:
    """Queue a check and wait (polling) until its run is no longer Running."""
    base = f"/api/v1/experiment/{exp['id']}"
    r = await api.request(
        "POST",
        f"{base}/check",
        "alice",
        params={"baseline": baseline, "model": "m1"},
        json={"columns": frame(2, 500)},
    )
    assert r.status_code == 202, r.text
    url = f"{base}/drift/{r.json()['id']}"
    while True:
        run: dict[str, Any] = (await api.request("GET", url, "alice")).json()
        if run["job_status"] != "Running":
            return run
        await asyncio.sleep(0.05)


async def test_worker_replaces_a_broken_process_pool(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    await api.register("alice")
    exp = await api.experiment("alice")
    r = await api.request(
        "POST",
        f"/api/v1/experiment/{exp['id']}/baseline",
        "alice",
        json={"columns": frame(1, 2000)},
    )
    assert r.status_code == 201, r.text
    baseline = str(r.json()["id"])
    mongo = connect(api.settings.mongodb_url.get_secret_value())
    db = mongo[api.settings.mongodb_database]
    try:
        before = _pool_processes()
        async with running_worker(db, api.settings, job_kinds(), processes=1) as worker:
            first = await asyncio.wait_for(_finished_check(api, exp, baseline), GUARD_SECONDS)
            assert first["job_status"] == "Completed", first
            started = _pool_processes() - before
            assert len(started) == 1, started  # processes=1: the pool's only process
            (pid,) = started
            os.kill(pid, signal.SIGKILL)
            await asyncio.wait_for(_gone(pid), GUARD_SECONDS)

            second = await asyncio.wait_for(_finished_check(api, exp, baseline), GUARD_SECONDS)
            third = await asyncio.wait_for(_finished_check(api, exp, baseline), GUARD_SECONDS)
            assert not worker.done()
        second_job = await db.jobs.find_one({"drift_id": second["id"]})
        third_job = await db.jobs.find_one({"drift_id": third["id"]})
    finally:
        await mongo.close()
    assert second["job_status"] == "Completed", second
    assert third["job_status"] == "Completed", third
    assert second_job is not None
    assert third_job is not None
    # The second check's first attempt met the broken pool; its retry ran in the new one.
    assert (second_job["status"], second_job["attempts"]) == ("done", 2)
    assert (third_job["status"], third_job["attempts"]) == ("done", 1)
    assert "broke the process pool; starting a new one" in caplog.text


async def test_worker_loop_survives_an_unexpected_error(
    mongodb: ManagedProcess, caplog: pytest.LogCaptureFixture
) -> None:
    settings = make_settings(mongodb, [])
    mongo = connect(settings.mongodb_url.get_secret_value())
    db = mongo[f"loop_{uuid.uuid4().hex[:10]}"]
    # Never given work, so it starts no process.
    pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))
    try:
        await ensure_indexes(db)
        queue = JobQueue(db, lease_seconds=30, max_attempts=1)
        await queue.enqueue("noop", {}, drift_id="dead")
        dead = await queue.claim("a-worker-that-gave-up")
        assert dead is not None
        await queue.release(dead, {"type": "Lost", "message": "gave up"})  # no attempts left
        alive = await queue.enqueue("noop", {}, drift_id="alive")

        async def give_up(job: dict[str, Any], ctx: WorkerContext) -> None:
            raise RuntimeError("a bug in give_up")  # not a PyMongoError: the loop used to end

        handled = asyncio.Event()

        async def handle(claim: Claim, ctx: WorkerContext) -> None:
            handled.set()

        ctx = WorkerContext(db=db, queue=queue, pool=pool, settings=settings)
        stop = asyncio.Event()
        worker = asyncio.create_task(
            run_worker(ctx, {"noop": JobKind(handle, give_up)}, concurrency=1, stop=stop)
        )
        try:
            await asyncio.wait_for(handled.wait(), GUARD_SECONDS)
            assert not worker.done()
        finally:
            stop.set()
            await asyncio.wait_for(worker, GUARD_SECONDS)
        dead_job = await db.jobs.find_one({"_id": dead.id})
        alive_job = await db.jobs.find_one({"_id": alive})
        await mongo.drop_database(db.name)
    finally:
        pool.shutdown(wait=False)
        await mongo.close()
    assert dead_job is not None
    assert alive_job is not None
    assert dead_job["status"] == FAILED  # the sweep ran, then give_up raised
    assert alive_job["status"] == DONE
    assert "unexpected error in the job loop" in caplog.text
    assert "a bug in give_up" in caplog.text


async def test_a_worker_that_loses_its_lease_stops_working_on_the_job(
    mongodb: ManagedProcess, caplog: pytest.LogCaptureFixture
) -> None:
    settings = make_settings(mongodb, [])
    mongo = connect(settings.mongodb_url.get_secret_value())
    db = mongo[f"lease_{uuid.uuid4().hex[:10]}"]
    pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))
    try:
        await ensure_indexes(db)
        queue = JobQueue(db, lease_seconds=30, max_attempts=3)
        job_id = await queue.enqueue("slow", {}, drift_id="d")
        started, cancelled = asyncio.Event(), asyncio.Event()

        async def handle(claim: Claim, ctx: WorkerContext) -> None:
            started.set()
            try:
                await asyncio.sleep(GUARD_SECONDS)
            except asyncio.CancelledError:
                cancelled.set()
                raise

        async def give_up(job: dict[str, Any], ctx: WorkerContext) -> None:
            return None

        ctx = WorkerContext(db=db, queue=queue, pool=pool, settings=settings)
        stop = asyncio.Event()
        worker = asyncio.create_task(
            run_worker(
                ctx,
                {"slow": JobKind(handle, give_up)},
                concurrency=1,
                heartbeat_seconds=0.05,
                stop=stop,
            )
        )
        try:
            await asyncio.wait_for(started.wait(), GUARD_SECONDS)
            # Another worker takes the job over, as after an expired lease.
            await db.jobs.update_one({"_id": job_id}, {"$set": {"worker": "someone-else"}})
            await asyncio.wait_for(cancelled.wait(), GUARD_SECONDS)
        finally:
            stop.set()
            await asyncio.wait_for(worker, GUARD_SECONDS)
        job = await db.jobs.find_one({"_id": job_id})
        await mongo.drop_database(db.name)
    finally:
        pool.shutdown(wait=False)
        await mongo.close()
    assert job is not None
    assert (job["status"], job["worker"]) == ("running", "someone-else")  # left to its owner
    assert "lost the lease" in caplog.text
