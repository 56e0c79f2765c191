"""A backend with an embedded worker (its alerts tick fast) shared by a module's tests, a raw
handle on its database, and helpers to wait for what the worker does."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import pytest
from drift_backend.devstack.services import ManagedProcess
from drift_backend.notify import service as notify
from drift_backend.store.database import Database, connect

from tests.conftest import Api, in_process_backend

T = TypeVar("T")
#: The longest the tests wait for the worker (a bound against hanging, not a timing test).
PATIENCE_SECONDS = 60.0


@pytest.fixture(scope="module")
async def alerts_api(
    mongodb: ManagedProcess, issuer: Any, oidc_provider: ManagedProcess
) -> AsyncIterator[Api]:
    async with in_process_backend(
        mongodb,
        issuer,
        oidc_provider,
        embedded_worker=True,
        job_lease_seconds=5,
        alerts_tick_seconds=0.1,
    ) as api:
        await api.register("alice")
        yield api


@pytest.fixture(scope="module")
async def alerts_db(alerts_api: Api) -> AsyncIterator[Database]:
    client = connect(alerts_api.settings.mongodb_url.get_secret_value())
    yield client[alerts_api.settings.mongodb_database]
    await client.close()


async def eventually(probe: Callable[[], Awaitable[T]], done: Callable[[T], bool], what: str) -> T:
    """``probe()`` until ``done`` says yes (the worker got there), within PATIENCE_SECONDS."""
    loop = asyncio.get_running_loop()
    end = loop.time() + PATIENCE_SECONDS
    while True:
        value = await probe()
        if done(value):
            return value
        if loop.time() > end:
            raise AssertionError(f"never happened: {what} (last: {value!r})")
        await asyncio.sleep(0.05)


async def evaluated(db: Database, run_id: str) -> None:
    """The run's alert evaluation job has finished."""
    await eventually(
        lambda: db.jobs.find_one({"_id": f"alerts:{run_id}"}),
        lambda job: job is not None and job["status"] == "done",
        f"alert evaluation of run {run_id}",
    )


async def sent(db: Database, experiment_id: str, count: int) -> list[dict[str, Any]]:
    """The experiment's queued notifications, oldest first, once there are ``count``."""
    found = await eventually(
        lambda: notify.notifications(db, experiment_id),
        lambda docs: len(docs) >= count,
        f"{count} notifications",
    )
    return sorted(found, key=lambda doc: (doc["created_at"], doc["_id"]))
