"""Two backend replicas (two uvicorn processes) on one database: an event written through
either reaches streams on both, numbered in one order, each once; a client that reconnects
to the other replica replays from where it was."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path

import httpx2
import pytest
from drift_backend.devstack.services import ManagedProcess, free_port, start_backend

from tests.conftest import ADMIN_GROUP, _drop, make_settings
from tests.events.conftest import FAST, LONG, Live
from tests.support.jwt_issuer import JWTIssuer


@pytest.fixture
def replica_env(mongodb: ManagedProcess, issuer: JWTIssuer, tmp_path: Path) -> dict[str, str]:
    return {
        **os.environ,
        "DRIFT_MODE": "development",
        "DRIFT_MONGODB_URL": mongodb.url,
        "DRIFT_MONGODB_DATABASE": f"test_{uuid.uuid4().hex[:12]}",
        "DRIFT_TRUSTED_ISSUERS": issuer.url,
        "DRIFT_ALLOW_INSECURE_ISSUERS": "true",
        "DRIFT_ADMIN_ENTITLEMENTS": ADMIN_GROUP,
        "DRIFT_SECRETS_DIR": str(tmp_path / "no-secrets"),
        **{f"DRIFT_{name.upper()}": str(value) for name, value in FAST.items()},
    }


@pytest.fixture
async def replicas(
    replica_env: dict[str, str], mongodb: ManagedProcess, issuer: JWTIssuer, tmp_path: Path
) -> AsyncIterator[tuple[Live, Live]]:
    """Replica A wakes on change streams; replica B polls (``DRIFT_CHANGE_STREAMS=false``)."""
    a_proc = await asyncio.to_thread(start_backend, free_port(), replica_env, tmp_path / "a.log")
    b_proc = await asyncio.to_thread(
        start_backend,
        free_port(),
        {**replica_env, "DRIFT_CHANGE_STREAMS": "false"},
        tmp_path / "b.log",
    )
    settings = make_settings(
        mongodb, [issuer.url], mongodb_database=replica_env["DRIFT_MONGODB_DATABASE"], **FAST
    )
    lives = []
    for proc in (a_proc, b_proc):
        http = httpx2.AsyncClient(base_url=proc.url, timeout=httpx2.Timeout(LONG))
        lives.append(Live(proc.url, http, issuer, settings, None, AsyncExitStack()))
    try:
        yield lives[0], lives[1]
    finally:
        for live in lives:
            await live.stack.aclose()  # open streams would hold a replica's shutdown
            await live.http.aclose()
        for proc in (a_proc, b_proc):
            await asyncio.to_thread(proc.stop)
        await _drop(settings)


async def test_an_event_written_through_one_replica_reaches_a_stream_on_the_other(
    replicas: tuple[Live, Live],
) -> None:
    a, b = replicas
    await a.register("alice")
    exp = await a.experiment("alice")
    on_b = await b.stream("alice", params={"experiment": exp})
    on_a = await a.stream("alice", params={"experiment": exp})
    through_a = await a.run("alice", exp)
    await on_b.event_of(through_a["id"])
    await on_a.event_of(through_a["id"])
    through_b = await b.run("alice", exp)
    await on_a.event_of(through_b["id"])
    last = await on_b.event_of(through_b["id"])

    # Writers on both replicas at once: one numbering, no event twice, none lost.
    async def write(live: Live, n: int) -> list[str]:
        return [(await live.run("alice", exp))["id"] for _ in range(n)]

    written = await asyncio.gather(write(a, 8), write(b, 8))
    expected = {run_id for ids in written for run_id in ids}
    for stream in (on_a, on_b):
        got = [await stream.event() for _ in range(len(expected))]
        numbers = [int(str(frame.id)) for frame in got]
        assert numbers == sorted(set(numbers))
        assert {frame.data["run_id"] for frame in got if frame.data} == expected

    # Reconnecting to the other replica replays from the last event seen.
    await on_b.response.aclose()
    resumed = await a.stream(
        "alice", params={"experiment": exp}, headers={"Last-Event-ID": str(last.id)}
    )
    replayed = [await resumed.event() for _ in range(len(expected))]
    assert {frame.data["run_id"] for frame in replayed if frame.data} == expected
