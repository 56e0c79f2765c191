"""Drift runs: the job-status state machine, heartbeats, the stale-run sweeper, detection
results, pagination, sorting and deletion."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import datetime, timedelta
from typing import Any

import pytest
from drift_backend.drifts.service import fail_stale_runs

from tests.conftest import Api


async def _setup(api: Api) -> str:
    await api.register("alice")
    return str((await api.experiment("alice"))["id"])


async def _create(api: Api, exp_id: str, **body: Any) -> dict[str, Any]:
    r = await api.request(
        "POST", f"/api/v1/experiment/{exp_id}/drift", "alice", json={"model": "m", **body}
    )
    assert r.status_code == 201, r.text
    return dict(r.json())


async def _put(api: Api, exp_id: str, drift_id: str, **body: Any) -> Any:
    return await api.request(
        "PUT", f"/api/v1/experiment/{exp_id}/drift/{drift_id}", "alice", json={"model": "m", **body}
    )


async def test_new_run_shape(api: Api) -> None:
    exp_id = await _setup(api)
    run = await _create(api, exp_id, tags=["a", "b", "a"])
    assert run["job_status"] == "Running"
    assert run["finished_at"] is None
    assert run["error"] is None
    assert run["experiment_id"] == exp_id
    assert run["schema_version"]
    assert run["tags"] == ["a", "b"]  # duplicates dropped, order kept
    for key in ("created_at", "updated_at"):
        stamp = datetime.fromisoformat(run[key])
        assert stamp.utcoffset() == timedelta(0)
        assert run[key].endswith("+00:00")


@pytest.mark.parametrize("final", ["Completed", "Failed"])
async def test_running_to_finished_then_frozen(api: Api, final: str) -> None:
    exp_id = await _setup(api)
    run = await _create(api, exp_id)
    body: dict[str, Any] = {"job_status": final, "drift_detected": True, "tags": ["x"]}
    if final == "Failed":
        body["error"] = {"type": "ValueError", "message": "boom"}
    r = await _put(api, exp_id, run["id"], **body)
    assert r.status_code == 200, r.text
    done = r.json()
    assert done["job_status"] == final
    assert done["finished_at"] is not None
    assert datetime.fromisoformat(done["finished_at"]) >= datetime.fromisoformat(run["created_at"])
    if final == "Failed":
        assert done["error"] == {"type": "ValueError", "message": "boom"}
    else:
        assert done["error"] is None

    # An identical retry of the finishing write is fine (and changes nothing).
    r = await _put(api, exp_id, run["id"], **body)
    assert r.status_code == 200, r.text
    assert r.json() == done
    # Anything else is a conflict: back to Running, the other final state, other fields.
    other = "Completed" if final == "Failed" else "Failed"
    for change in (
        {**body, "job_status": "Running"},
        {**body, "job_status": other, "error": {"type": "X", "message": ""}},
        {**body, "drift_detected": False},
        {**body, "tags": ["y"]},
    ):
        r = await _put(api, exp_id, run["id"], **change)
        assert r.status_code == 409, (change, r.text)
        assert r.json()["code"] == "conflict"
    r = await api.request("GET", f"/api/v1/experiment/{exp_id}/drift/{run['id']}", "alice")
    assert r.json() == done


async def test_running_run_can_be_updated(api: Api) -> None:
    exp_id = await _setup(api)
    run = await _create(api, exp_id, tags=["t"], parameters={"a": 1})
    r = await _put(api, exp_id, run["id"], job_status="Running", parameters={"b": 2})
    assert r.status_code == 200
    updated = r.json()
    assert updated["job_status"] == "Running"
    assert updated["parameters"] == {"b": 2}  # full replace
    assert updated["tags"] == []
    assert updated["finished_at"] is None
    assert updated["created_at"] == run["created_at"]
    assert updated["updated_at"] >= run["updated_at"]


async def test_error_only_kept_on_failed(api: Api) -> None:
    exp_id = await _setup(api)
    run = await _create(api, exp_id, error={"type": "E", "message": "m"})
    assert run["error"] is None
    r = await _put(api, exp_id, run["id"], job_status="Completed", error={"type": "E"})
    assert r.json()["error"] is None


async def test_created_finished(api: Api) -> None:
    exp_id = await _setup(api)
    run = await _create(api, exp_id, job_status="Completed")
    assert run["finished_at"] is not None
    r = await _put(api, exp_id, run["id"], job_status="Running")
    assert r.status_code == 409


async def test_put_requires_job_status_and_valid_values(api: Api) -> None:
    exp_id = await _setup(api)
    run = await _create(api, exp_id)
    url = f"/api/v1/experiment/{exp_id}/drift/{run['id']}"
    r = await api.request("PUT", url, "alice", json={"model": "m"})
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "job_status"
    r = await api.request("PUT", url, "alice", json={"model": "m", "job_status": "Done"})
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "job_status"


async def test_heartbeat(api: Api) -> None:
    exp_id = await _setup(api)
    run = await _create(api, exp_id)
    url = f"/api/v1/experiment/{exp_id}/drift/{run['id']}/heartbeat"
    r = await api.request("POST", url, "alice")
    assert r.status_code == 200, r.text
    assert r.json()["job_status"] == "Running"
    assert r.json()["updated_at"] >= run["updated_at"]
    await _put(api, exp_id, run["id"], job_status="Completed")
    r = await api.request("POST", url, "alice")
    assert r.status_code == 409
    r = await api.request(
        "POST", f"/api/v1/experiment/{exp_id}/drift/00000000-0000-0000-0000-000000000000/heartbeat"
    )
    assert r.status_code == 404


async def test_fail_stale_runs(api: Api, raw_db: Any) -> None:
    exp_id = await _setup(api)
    stale = await _create(api, exp_id)
    fresh = await _create(api, exp_id)
    done = await _create(api, exp_id, job_status="Completed")
    db = raw_db(api)
    old = datetime.fromisoformat(stale["updated_at"]) - timedelta(hours=2)
    await db.drifts.update_many(
        {"_id": {"$in": [stale["id"], done["id"]]}}, {"$set": {"updated_at": old}}
    )
    assert await fail_stale_runs(db, 3600) == 1
    assert await fail_stale_runs(db, 3600) == 0  # idempotent
    base = f"/api/v1/experiment/{exp_id}/drift"
    swept = (await api.request("GET", f"{base}/{stale['id']}", "alice")).json()
    assert swept["job_status"] == "Failed"
    assert swept["error"]["type"] == "Timeout"
    assert swept["finished_at"] is not None
    assert (await api.request("GET", f"{base}/{fresh['id']}", "alice")).json()[
        "job_status"
    ] == "Running"
    assert (await api.request("GET", f"{base}/{done['id']}", "alice")).json()[
        "job_status"
    ] == "Completed"
    # The client that comes back late cannot overwrite the verdict.
    r = await _put(api, exp_id, stale["id"], job_status="Completed")
    assert r.status_code == 409


async def test_heartbeat_keeps_a_run_alive(api: Api, raw_db: Any) -> None:
    exp_id = await _setup(api)
    run = await _create(api, exp_id)
    db = raw_db(api)
    old = datetime.fromisoformat(run["updated_at"]) - timedelta(hours=2)
    await db.drifts.update_one({"_id": run["id"]}, {"$set": {"updated_at": old}})
    r = await api.request(
        "POST", f"/api/v1/experiment/{exp_id}/drift/{run['id']}/heartbeat", "alice"
    )
    assert r.status_code == 200
    assert await fail_stale_runs(db, 3600) == 0


async def test_background_sweeper_times_runs_out(api_factory: Any) -> None:
    api = await api_factory(run_timeout_seconds=0.4, sweep_interval_seconds=0.1)
    exp_id = await _setup(api)
    run = await _create(api, exp_id)
    url = f"/api/v1/experiment/{exp_id}/drift/{run['id']}"
    deadline = time.monotonic() + 10
    current = run
    while time.monotonic() < deadline:
        current = (await api.request("GET", url, "alice")).json()
        if current["job_status"] != "Running":
            break
        await asyncio.sleep(0.1)
    assert current["job_status"] == "Failed"
    assert current["error"]["type"] == "Timeout"
    assert current["finished_at"] is not None


@pytest.mark.parametrize(
    ("body", "detected"),
    [
        ({}, False),
        ({"drift_detected": True}, True),
        ({"concept_drift": {"drift": True}}, True),
        ({"data_drift": {"drift": True, "parameters": {"p": 0.01}}}, True),
        ({"concept_drift": {"drift": False}, "data_drift": {"drift": False}}, False),
        ({"drift_detected": False, "data_drift": {"drift": True}}, True),
        ({"drift_detected": True, "concept_drift": {"drift": False}}, True),
    ],
)
async def test_drift_detected_ors_the_detectors(
    shared_api: Api, body: dict[str, Any], detected: bool
) -> None:
    await shared_api.request("POST", "/api/v1/user", "alice")
    exp = await shared_api.experiment("alice")
    run = await _create(shared_api, exp["id"], **body)
    assert run["drift_detected"] is detected
    for key in ("concept_drift", "data_drift"):
        if key in body:
            assert run[key]["drift"] is body[key]["drift"]
            assert run[key]["parameters"] == body[key].get("parameters", {})
        else:
            assert run[key] is None
    # The same rule on the way to Completed.
    r = await _put(shared_api, exp["id"], run["id"], job_status="Completed", **body)
    assert r.json()["drift_detected"] is detected
    # And it is searchable.
    r = await shared_api.request(
        "POST",
        f"/api/v1/experiment/{exp['id']}/drift/search",
        "alice",
        json={"drift_detected": detected},
    )
    assert [item["id"] for item in r.json()] == [run["id"]]


async def test_pagination(api: Api) -> None:
    exp_id = await _setup(api)
    made = [await _create(api, exp_id, model=f"m{i:02d}") for i in range(7)]
    url = f"/api/v1/experiment/{exp_id}/drift/search"
    r = await api.request(
        "POST",
        url,
        "alice",
        json={},
        params={"page": 2, "page_size": 3, "sort_by": "model", "order_by": "asc"},
    )
    assert r.status_code == 200
    assert [item["model"] for item in r.json()] == ["m03", "m04", "m05"]
    meta = json.loads(r.headers["x-pagination"])
    assert meta == {
        "total": 7,
        "total_pages": 3,
        "first_page": 1,
        "last_page": 3,
        "page": 2,
        "previous_page": 1,
        "next_page": 3,
    }
    r = await api.request("POST", url, "alice", json={}, params={"page": 3, "page_size": 3})
    meta = json.loads(r.headers["x-pagination"])
    assert len(r.json()) == 1
    assert "next_page" not in meta
    # Default: newest first.
    r = await api.request("POST", url, "alice", json={})
    assert [item["id"] for item in r.json()] == [run["id"] for run in reversed(made)]
    # Past the end: empty, not an error.
    r = await api.request("POST", url, "alice", json={}, params={"page": 50})
    assert r.status_code == 200
    assert r.json() == []
    assert json.loads(r.headers["x-pagination"])["total"] == 7
    # Descending by model with the "descending" spelling.
    r = await api.request(
        "POST", url, "alice", json={}, params={"sort_by": "model", "order_by": "descending"}
    )
    assert [item["model"] for item in r.json()][:2] == ["m06", "m05"]


async def test_empty_search_header(api: Api) -> None:
    exp_id = await _setup(api)
    r = await api.request("POST", f"/api/v1/experiment/{exp_id}/drift/search", "alice", json={})
    assert r.json() == []
    assert json.loads(r.headers["x-pagination"]) == {"total": 0, "total_pages": 0}


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"page_size": 101}, "page_size"),
        ({"page_size": 0}, "page_size"),
        ({"page": 0}, "page"),
        ({"page": -1}, "page"),
        ({"page": "one"}, "page"),
        ({"page": 10**12}, "page"),
        ({"sort_by": "parameters"}, "sort_by"),
        ({"sort_by": "$where"}, "sort_by"),
        ({"sort_by": "x" * 100}, "sort_by"),
        ({"order_by": "sideways"}, "order_by"),
    ],
)
async def test_page_parameters_validated(
    shared_api: Api, params: dict[str, Any], field: str
) -> None:
    await shared_api.request("POST", "/api/v1/user", "alice")
    exp = await shared_api.experiment("alice")
    r = await shared_api.request(
        "POST", f"/api/v1/experiment/{exp['id']}/drift/search", "alice", json={}, params=params
    )
    assert r.status_code == 422, r.text
    assert r.json()["errors"][0]["field"] == field


async def test_page_size_100_allowed(api: Api) -> None:
    exp_id = await _setup(api)
    r = await api.request(
        "POST",
        f"/api/v1/experiment/{exp_id}/drift/search",
        "alice",
        json={},
        params={"page_size": 100},
    )
    assert r.status_code == 200


async def test_delete_run(api: Api) -> None:
    exp_id = await _setup(api)
    keep = await _create(api, exp_id)
    gone = await _create(api, exp_id)
    url = f"/api/v1/experiment/{exp_id}/drift/{gone['id']}"
    r = await api.request("DELETE", url, "alice")
    assert r.status_code == 204
    assert r.content == b""
    assert (await api.request("GET", url, "alice")).status_code == 404
    assert (await api.request("DELETE", url, "alice")).status_code == 404
    r = await api.request("POST", f"/api/v1/experiment/{exp_id}/drift/search", "alice", json={})
    assert [item["id"] for item in r.json()] == [keep["id"]]


@pytest.mark.parametrize(
    "body",
    [
        {"model": ""},
        {"model": "m", "tags": "prod"},
        {"model": "m", "tags": ["x" * 65]},
        {"model": "m", "tags": [f"t{i}" for i in range(33)]},
        {"model": "m", "parameters": {"$set": 1}},
        {"model": "m", "parameters": {"a": {"$where": 1}}},
        {"model": "m", "parameters": {"a": [{"$x": 1}]}},
        {"model": "m", "parameters": []},
        {"model": "m", "concept_drift": {"parameters": {}}},
        {"model": "m", "drift_detected": "maybe"},
        {"model": "m", "job_status": "Paused"},
        {},
    ],
)
async def test_bad_run_bodies(shared_api: Api, body: dict[str, Any]) -> None:
    await shared_api.request("POST", "/api/v1/user", "alice")
    exp = await shared_api.experiment("alice")
    r = await shared_api.request(
        "POST", f"/api/v1/experiment/{exp['id']}/drift", "alice", json=body
    )
    assert r.status_code == 422, r.text
    assert r.json()["errors"]
