"""Runs reported late (a client spool replayed after an outage) keep the time they really ran:
``created_at`` on POST, ``finished_at`` on the PUT that finishes a run, within
DRIFT_MAX_BACKDATE_DAYS and at most CLOCK_SKEW ahead of the server's clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from drift_backend.drifts.service import fail_stale_runs
from drift_backend.drifts.timestamps import CLOCK_SKEW
from drift_backend.schemas import utcnow

from tests.conftest import Api

PREFIX = "/api/v1"


async def _setup(api: Api) -> str:
    await api.register("alice")
    return str((await api.experiment("alice"))["id"])


async def _post(api: Api, exp_id: str, **body: Any) -> Any:
    return await api.request(
        "POST", f"{PREFIX}/experiment/{exp_id}/drift", "alice", json={"model": "m", **body}
    )


async def _put(api: Api, exp_id: str, drift_id: str, **body: Any) -> Any:
    return await api.request(
        "PUT",
        f"{PREFIX}/experiment/{exp_id}/drift/{drift_id}",
        "alice",
        json={"model": "m", **body},
    )


def _error_field(r: Any) -> str:
    assert r.status_code == 422, r.text
    body = r.json()
    assert body["code"] == "validation_error"
    return str(body["errors"][0]["field"])


def _at(value: str) -> datetime:
    return datetime.fromisoformat(value)


async def test_backdated_run_keeps_its_time_and_sorts_by_it(api: Api) -> None:
    exp_id = await _setup(api)
    three_hours_ago = utcnow() - timedelta(hours=3)
    # Any offset is accepted; the run is stored and answered in UTC.
    sent = three_hours_ago.astimezone(timezone(timedelta(hours=2))).isoformat()
    r = await _post(api, exp_id, created_at=sent, tags=["late"])
    assert r.status_code == 201, r.text
    late = r.json()
    assert _at(late["created_at"]) == three_hours_ago
    assert late["created_at"].endswith("+00:00")
    assert _at(late["updated_at"]) > three_hours_ago  # the write itself happened now
    assert late["finished_at"] is None
    now_run = (await _post(api, exp_id)).json()

    r = await api.request(
        "POST",
        f"{PREFIX}/experiment/{exp_id}/drift/search",
        "alice",
        params={"sort_by": "created_at", "order_by": "asc"},
        json={},
    )
    assert [run["id"] for run in r.json()] == [late["id"], now_run["id"]]
    window = (three_hours_ago - timedelta(minutes=1)).isoformat()
    before = (three_hours_ago + timedelta(minutes=1)).isoformat()
    r = await api.request(
        "POST",
        f"{PREFIX}/experiment/{exp_id}/drift/search",
        "alice",
        json={"created_at": {"$gte": window, "$lt": before}},
    )
    assert [run["id"] for run in r.json()] == [late["id"]]


async def test_backdated_running_run_is_not_swept_at_once(api: Api, raw_db: Any) -> None:
    """The sweeper measures from the last write, not from the reported start."""
    exp_id = await _setup(api)
    timeout = api.settings.run_timeout_seconds
    old = (utcnow() - timedelta(seconds=timeout * 2)).isoformat()
    run = (await _post(api, exp_id, created_at=old)).json()
    assert await fail_stale_runs(raw_db(api), timeout) == 0
    r = await api.request("GET", f"{PREFIX}/experiment/{exp_id}/drift/{run['id']}", "alice")
    assert r.json()["job_status"] == "Running"


@pytest.mark.parametrize("status", ["Completed", "Failed"])
async def test_backdated_finished_run_finishes_when_it_started(api: Api, status: str) -> None:
    exp_id = await _setup(api)
    when = utcnow() - timedelta(hours=5)
    body: dict[str, Any] = {"job_status": status, "created_at": when.isoformat()}
    if status == "Failed":
        body["error"] = {"type": "ValueError", "message": "boom"}
    r = await _post(api, exp_id, **body)
    assert r.status_code == 201, r.text
    assert _at(r.json()["created_at"]) == when
    assert _at(r.json()["finished_at"]) == when


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("2026-01-01T10:00:00", "timezone"),  # naive: whose clock?
        ("yesterday", "datetime"),
    ],
)
async def test_created_at_must_be_an_iso_time_with_offset(
    api: Api, value: str, reason: str
) -> None:
    exp_id = await _setup(api)
    r = await _post(api, exp_id, created_at=value)
    assert _error_field(r) == "created_at"
    assert reason in r.json()["errors"][0]["reason"].lower()


async def test_created_at_bounds(api_factory: Any, raw_db: Any) -> None:
    api = await api_factory(max_backdate_days=2)
    exp_id = await _setup(api)
    now = utcnow()
    future = await _post(api, exp_id, created_at=(now + CLOCK_SKEW * 2).isoformat())
    assert _error_field(future) == "created_at"
    assert "future" in future.json()["message"]
    too_old = await _post(api, exp_id, created_at=(now - timedelta(days=2, hours=1)).isoformat())
    assert _error_field(too_old) == "created_at"
    assert "DRIFT_MAX_BACKDATE_DAYS" in too_old.json()["message"]
    assert await raw_db(api).drifts.count_documents({}) == 0

    oldest = await _post(api, exp_id, created_at=(now - timedelta(days=1, hours=23)).isoformat())
    assert oldest.status_code == 201, oldest.text
    # A client clock slightly ahead is tolerated, and the run is stored as starting now.
    ahead = await _post(api, exp_id, created_at=(now + CLOCK_SKEW / 2).isoformat())
    assert ahead.status_code == 201, ahead.text
    assert _at(ahead.json()["created_at"]) <= datetime.now(UTC)


async def test_finish_reported_late_keeps_its_time(api: Api) -> None:
    exp_id = await _setup(api)
    started = utcnow() - timedelta(hours=4)
    run = (await _post(api, exp_id, created_at=started.isoformat())).json()
    finished = started + timedelta(minutes=30)
    r = await _put(api, exp_id, run["id"], job_status="Completed", finished_at=finished.isoformat())
    assert r.status_code == 200, r.text
    assert _at(r.json()["finished_at"]) == finished
    # The replayed finish may arrive twice: an identical retry answers the finished run.
    again = await _put(
        api, exp_id, run["id"], job_status="Completed", finished_at=finished.isoformat()
    )
    assert again.status_code == 200
    assert _at(again.json()["finished_at"]) == finished


async def test_finished_at_rules(api: Api) -> None:
    exp_id = await _setup(api)
    started = utcnow() - timedelta(hours=2)
    run = (await _post(api, exp_id, created_at=started.isoformat())).json()
    cases = [
        {"job_status": "Running", "finished_at": utcnow().isoformat()},
        {"job_status": "Completed", "finished_at": (started - CLOCK_SKEW * 2).isoformat()},
        {"job_status": "Completed", "finished_at": (utcnow() + CLOCK_SKEW * 2).isoformat()},
        {"job_status": "Completed", "finished_at": "2026-01-01T10:00:00"},
    ]
    for body in cases:
        r = await _put(api, exp_id, run["id"], **body)
        assert _error_field(r) == "finished_at", body
    r = await api.request("GET", f"{PREFIX}/experiment/{exp_id}/drift/{run['id']}", "alice")
    assert r.json()["job_status"] == "Running"  # nothing was written
    # Without finished_at a finish is stamped now, as before.
    r = await _put(api, exp_id, run["id"], job_status="Completed")
    assert _at(r.json()["finished_at"]) > started + timedelta(hours=1)


async def test_finish_slightly_before_start_is_clock_skew(api: Api) -> None:
    """Created live (server clock), finished from a spool on a client whose clock is behind."""
    exp_id = await _setup(api)
    run = (await _post(api, exp_id)).json()
    started = _at(run["created_at"])
    behind = started - CLOCK_SKEW / 2
    r = await _put(api, exp_id, run["id"], job_status="Completed", finished_at=behind.isoformat())
    assert r.status_code == 200, r.text
    assert _at(r.json()["finished_at"]) == started


async def test_a_check_reported_late_keeps_its_time(api: Api) -> None:
    """``created_at`` on the check request: a spooled check is dated when it was made."""
    from tests.checks.test_check_api import frame

    exp_id = await _setup(api)
    base = f"{PREFIX}/experiment/{exp_id}"
    r = await api.request("POST", f"{base}/baseline", "alice", json={"columns": frame(1, 500)})
    assert r.status_code == 201, r.text
    two_hours_ago = utcnow() - timedelta(hours=2)

    async def check(created_at: str) -> Any:
        return await api.request(
            "POST",
            f"{base}/check",
            "alice",
            params={"model": "m", "created_at": created_at},
            json={"columns": frame(2, 200)},
        )

    r = await check(two_hours_ago.isoformat())
    assert r.status_code == 202, r.text
    assert _at(r.json()["created_at"]) == two_hours_ago
    assert _error_field(await check((utcnow() - timedelta(days=30)).isoformat())) == "created_at"
    assert _error_field(await check("2026-01-01T00:00:00")) == "created_at"  # naive
