"""A statistics process reads a check's stored batch itself (``store.process_client``): the
whole batch, chunk by chunk, or ``NoFile`` when it or a chunk is gone; a worker whose batch
went missing fails the check with ``BatchNotFound``."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from drift_backend.checks import service
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
