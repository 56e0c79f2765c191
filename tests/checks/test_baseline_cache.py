"""Profiles are cached by baseline id (baselines are immutable), but a deleted baseline is
never checked against: neither by the API nor by a worker that cached it earlier."""

from __future__ import annotations

import asyncio
from typing import Any

from drift_backend.baselines.model import Profile
from drift_backend.baselines.service import ProfileCache
from drift_backend.main import job_kinds
from drift_backend.store.database import connect
from drift_backend.worker.service import running_worker

from tests.checks.test_check_api import frame
from tests.conftest import Api


def test_profile_cache_keeps_the_most_recently_used_within_its_bytes() -> None:
    cache = ProfileCache(max_bytes=200)
    a, b, c = (Profile(row_count=n, features=[]) for n in (1, 2, 3))
    cache.put("a", a, 100)
    cache.put("b", b, 100)
    assert cache.get("a") is a  # "a" is now the most recent
    cache.put("c", c, 100)
    assert cache.get("b") is None
    assert (cache.get("a"), cache.get("c"), len(cache)) == (a, c, 2)


async def _baseline(api: Api, exp: dict[str, Any]) -> str:
    url = f"/api/v1/experiment/{exp['id']}/baseline"
    r = await api.request("POST", url, "alice", json={"columns": frame(1, 2000)})
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


async def _check(api: Api, exp: dict[str, Any], baseline: str, wait: float) -> Any:
    return await api.request(
        "POST",
        f"/api/v1/experiment/{exp['id']}/check",
        "alice",
        params={"baseline": baseline, "model": "m1", "wait": wait},
        json={"columns": frame(2, 500)},
    )


async def test_api_does_not_check_against_a_deleted_cached_baseline(api: Api) -> None:
    await api.register("alice")
    exp = await api.experiment("alice")
    baseline = await _baseline(api, exp)
    assert (await _check(api, exp, baseline, 0)).status_code == 202  # its profile is cached
    url = f"/api/v1/experiment/{exp['id']}/baseline/{baseline}"
    assert (await api.request("DELETE", url, "alice")).status_code == 204
    r = await _check(api, exp, baseline, 0)
    assert r.status_code == 404, r.text


async def test_worker_fails_a_check_whose_cached_baseline_was_deleted(api: Api) -> None:
    await api.register("alice")
    exp = await api.experiment("alice")
    baseline = await _baseline(api, exp)
    mongo = connect(api.settings.mongodb_url.get_secret_value())
    db = mongo[api.settings.mongodb_database]
    try:
        async with running_worker(db, api.settings, job_kinds(), processes=1):
            done = await _check(api, exp, baseline, 60)
            assert done.json()["job_status"] == "Completed", done.text  # the worker cached it
        queued = await _check(api, exp, baseline, 0)  # no worker runs now: it stays queued
        assert queued.status_code == 202
        url = f"/api/v1/experiment/{exp['id']}/baseline/{baseline}"
        assert (await api.request("DELETE", url, "alice")).status_code == 204
        async with running_worker(db, api.settings, job_kinds(), processes=1):
            run_url = f"/api/v1/experiment/{exp['id']}/drift/{queued.json()['id']}"
            for _ in range(600):
                run = (await api.request("GET", run_url, "alice")).json()
                if run["job_status"] != "Running":
                    break
                await asyncio.sleep(0.1)
    finally:
        await mongo.close()
    assert run["job_status"] == "Failed"
    assert run["error"]["type"] == "BaselineNotFound"
