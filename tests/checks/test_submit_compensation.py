"""Submitting a check is one logical operation: when the database refuses a step after the
batch is stored, nothing is left half-done (no orphan batch in GridFS, no run stuck Running)
and the client gets a JSON 503 in the one error shape.

The faults are real: the test gives the real database a unique index that the next write
breaks, as a schema change or a clash made by another writer would."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from drift_backend.store.database import Database, connect
from pymongo import ASCENDING

from tests.checks.test_check_api import frame
from tests.conftest import Api


@pytest.fixture
async def db(api: Api) -> AsyncIterator[Database]:
    mongo = connect(api.settings.mongodb_url.get_secret_value())
    try:
        yield mongo[api.settings.mongodb_database]
    finally:
        await mongo.close()


async def _experiment_with_baseline(api: Api) -> tuple[str, str]:
    await api.register("alice")
    exp = await api.experiment("alice")
    base = f"/api/v1/experiment/{exp['id']}"
    r = await api.request(
        "POST", f"{base}/baseline", "alice", params={"model": "m1"}, json={"columns": frame(1, 300)}
    )
    assert r.status_code == 201, r.text
    return exp["id"], base


async def _check(api: Api, base: str) -> Any:
    return await api.request(
        "POST", f"{base}/check", "alice", params={"model": "m1"}, json={"columns": frame(2, 200)}
    )


def _assert_503(response: Any) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["status"] == 503
    assert body["code"] == "service_unavailable"
    assert "could not be" in body["message"]
    assert response.headers.get("retry-after")


async def _stored_batches(db: Database, experiment_id: str) -> int:
    return await db["batches.files"].count_documents({"metadata.experiment_id": experiment_id})


async def _runs(api: Api, base: str) -> list[dict[str, Any]]:
    r = await api.request("POST", f"{base}/drift/search", "alice", json={})
    assert r.status_code == 200, r.text
    return list(r.json())


async def test_a_refused_job_leaves_no_batch_and_a_failed_run(api: Api, db: Database) -> None:
    experiment_id, base = await _experiment_with_baseline(api)
    ok = await _check(api, base)  # the same check goes through before the fault
    assert ok.status_code == 202, ok.text
    assert await _stored_batches(db, experiment_id) == 1
    # The fault: at most one job per kind, and there already is one.
    await db.jobs.create_index([("kind", ASCENDING)], unique=True, name="fault_one_per_kind")

    r = await _check(api, base)

    _assert_503(r)
    assert await _stored_batches(db, experiment_id) == 1  # only the first check's batch
    runs = await _runs(api, base)
    assert len(runs) == 2
    failed = [run for run in runs if run["id"] != ok.json()["id"]]
    assert failed[0]["job_status"] == "Failed"
    assert failed[0]["error"]["type"] == "SubmitFailed"
    assert failed[0]["finished_at"] is not None
    assert await db.jobs.count_documents({"drift_id": failed[0]["id"]}) == 0


async def test_a_refused_run_leaves_no_batch(api: Api, db: Database) -> None:
    experiment_id, base = await _experiment_with_baseline(api)
    r = await api.request(
        "POST", f"{base}/drift", "alice", json={"job_status": "Running", "model": "m1"}
    )
    assert r.status_code == 201, r.text
    # The fault: one run per model, and model m1 has one.
    await db.drifts.create_index([("model", ASCENDING)], unique=True, name="fault_one_per_model")

    r = await _check(api, base)

    _assert_503(r)
    assert await _stored_batches(db, experiment_id) == 0
    runs = await _runs(api, base)
    assert [run["job_status"] for run in runs] == ["Running"]  # only the run made by hand
    assert await db.jobs.count_documents({}) == 0
