"""A statistics process reads a check's stored batch and its baseline itself
(``store.process_client``): the whole batch, chunk by chunk, or ``NoFile`` when it or a chunk
is gone; the baseline once, or ``NO_BASELINE`` when it is gone; a worker whose batch went
missing fails the check with ``BatchNotFound``."""

from __future__ import annotations

import asyncio
from typing import Any

import pyarrow as pa
import pytest
from cachetools import LRUCache
from drift_backend.baselines import repository as baselines
from drift_backend.baselines.repository import StoredProfile
from drift_backend.checks import jobs, reduce, service
from drift_backend.checks.config import DriftConfig
from drift_backend.main import job_kinds
from drift_backend.store import process_client
from drift_backend.store.database import connect
from drift_backend.worker.service import running_worker
from gridfs import AsyncGridFSBucket
from gridfs.errors import NoFile

from tests.checks.test_check_api import frame
from tests.conftest import Api


@pytest.fixture
def configured(api: Api, monkeypatch: pytest.MonkeyPatch) -> Any:
    """This process configured as a statistics process of the test's database."""
    monkeypatch.setattr(process_client, "_settings", None)
    monkeypatch.setattr(process_client, "_database", None)
    settings = api.settings
    process_client.configure(
        settings.mongodb_url.get_secret_value(),
        settings.mongodb_database,
        settings.mongodb_timeout_seconds,
    )
    db = process_client.process_database()
    assert db is not None
    yield db
    db.client.close()


async def test_a_stored_batch_reads_back_whole_chunk_by_chunk(api: Api, configured: Any) -> None:
    mongo = connect(api.settings.mongodb_url.get_secret_value())
    db = mongo[api.settings.mongodb_database]
    data = bytes(range(256)) * 23  # 5,888 bytes: five full chunks of 1,000 and a short one
    try:
        bucket = AsyncGridFSBucket(db, bucket_name=service.BATCH_BUCKET, chunk_size_bytes=1000)
        file_id = await bucket.upload_from_stream("batch", data)
        assert await asyncio.to_thread(service.read_batch, configured, file_id) == data
        await db[f"{service.BATCH_BUCKET}.chunks"].delete_one({"files_id": file_id, "n": 2})
        with pytest.raises(NoFile):
            await asyncio.to_thread(service.read_batch, configured, file_id)
        await service.drop_batch(db, file_id)
        with pytest.raises(NoFile):
            await asyncio.to_thread(service.read_batch, configured, file_id)
    finally:
        await mongo.close()


async def _baseline_and_batch(api: Api) -> tuple[str, StoredProfile, bytes]:
    """A stored baseline's id, its stored profile (as the worker reads it) and a reduced
    batch against it, as ``compute`` gets them."""
    await api.register("alice")
    exp = await api.experiment("alice")
    url = f"/api/v1/experiment/{exp['id']}/baseline"
    r = await api.request("POST", url, "alice", json={"columns": frame(1, 500)})
    assert r.status_code == 201, r.text
    baseline_id = str(r.json()["id"])
    mongo = connect(api.settings.mongodb_url.get_secret_value())
    try:
        stored = await baselines.load_stored(
            mongo[api.settings.mongodb_database], baseline_id, values=True
        )
    finally:
        await mongo.close()
    assert stored is not None
    current = pa.table(frame(2, 300, shift=1.0))
    return baseline_id, stored, reduce.encode(reduce.reduce_batch(current, stored.parse()))


async def test_a_statistics_process_reads_the_baseline_itself_once(
    api: Api, configured: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(jobs, "_PROFILES", LRUCache(maxsize=jobs.CACHED_BASELINE_BYTES))
    baseline_id, stored, batch = await _baseline_and_batch(api)
    config = DriftConfig().model_dump(mode="json")
    # The synchronous read gives what the worker's asynchronous one gives.
    assert await asyncio.to_thread(baselines.read_stored, configured, baseline_id, values=True) == (
        stored
    )

    report = await asyncio.to_thread(
        jobs.compute, baseline_id, None, True, batch, "reduced", config
    )
    assert report.get("drifted_features") == ["x"], report  # a report, not a request
    assert (baseline_id, True) in jobs._PROFILES  # parsed once, kept
    reads: list[str] = []
    monkeypatch.setattr(baselines, "read_stored", lambda *a, **k: reads.append("read"))
    again = await asyncio.to_thread(jobs.compute, baseline_id, None, True, batch, "reduced", config)
    assert again == report
    assert reads == []  # the second check reads nothing

    gone = await asyncio.to_thread(jobs.compute, "no-such", None, True, batch, "reduced", config)
    assert gone == {jobs.NO_BASELINE: True}


async def test_a_process_without_a_database_asks_for_the_baseline(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(process_client, "_settings", None)
    monkeypatch.setattr(process_client, "_database", None)
    monkeypatch.setattr(jobs, "_PROFILES", LRUCache(maxsize=jobs.CACHED_BASELINE_BYTES))
    baseline_id, _, batch = await _baseline_and_batch(api)
    config = DriftConfig().model_dump(mode="json")
    answer = await asyncio.to_thread(
        jobs.compute, baseline_id, None, True, batch, "reduced", config
    )
    assert answer == {jobs.NEED_PROFILE: True}


def test_a_process_never_configured_has_no_database(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(process_client, "_settings", None)
    monkeypatch.setattr(process_client, "_database", None)
    assert process_client.process_database() is None


async def test_worker_fails_a_check_whose_batch_is_gone(api: Api) -> None:
    await api.register("alice")
    exp = await api.experiment("alice")
    prefix = f"/api/v1/experiment/{exp['id']}"
    r = await api.request("POST", f"{prefix}/baseline", "alice", json={"columns": frame(1, 500)})
    assert r.status_code == 201, r.text
    queued = await api.request(
        "POST",
        f"{prefix}/check",
        "alice",
        params={"baseline": r.json()["id"], "model": "m1"},
        json={"columns": frame(2, 300)},
    )
    assert queued.status_code == 202, queued.text  # no worker runs yet: it stays queued
    mongo = connect(api.settings.mongodb_url.get_secret_value())
    db = mongo[api.settings.mongodb_database]
    try:
        files = db[f"{service.BATCH_BUCKET}.files"]
        async for stored in files.find({"metadata.experiment_id": exp["id"]}, {"_id": 1}):
            await service.drop_batch(db, stored["_id"])
        async with running_worker(db, api.settings, job_kinds(), processes=1):
            run_url = f"{prefix}/drift/{queued.json()['id']}"
            for _ in range(600):
                run = (await api.request("GET", run_url, "alice")).json()
                if run["job_status"] != "Running":
                    break
                await asyncio.sleep(0.1)
    finally:
        await mongo.close()
    assert run["job_status"] == "Failed"
    assert run["error"]["type"] == "BatchNotFound"
