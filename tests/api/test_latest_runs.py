"""``GET /drift/latest``: the last run of each experiment named (the experiments list's
column), only of experiments the caller may read, with bad requests refused clearly."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.conftest import Api

LATEST = "/api/v1/drift/latest"


async def _run(api: Api, who: str, exp_id: str, **body: Any) -> dict[str, Any]:
    r = await api.request(
        "POST", f"/api/v1/experiment/{exp_id}/drift", who, json={"model": "m", **body}
    )
    assert r.status_code == 201, r.text
    return dict(r.json())


async def _latest(api: Api, who: str | None, *ids: str) -> Any:
    return await api.request("GET", LATEST, who, params=[("experiment", item) for item in ids])


async def test_the_last_run_of_each_readable_experiment_in_the_order_asked(api: Api) -> None:
    for who in ("alice", "bob"):
        await api.register(who)
    busy = (await api.experiment("alice"))["id"]
    quiet = (await api.experiment("alice"))["id"]
    bobs_private = (await api.experiment("bob"))["id"]
    bobs_public = (await api.experiment("bob", public=True))["id"]
    hour_ago = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    await _run(api, "alice", busy, job_status="Completed", drift_detected=True)
    # Reported late: created before the one above, so not the last.
    await _run(api, "alice", busy, job_status="Failed", created_at=hour_ago)
    await _run(api, "bob", bobs_private, job_status="Completed")
    public_run = await _run(api, "bob", bobs_public)
    newest = await _run(api, "alice", busy, job_status="Running", model="newest")

    unknown = str(uuid.uuid4())
    r = await _latest(api, "alice", bobs_public, busy, unknown, bobs_private, quiet)
    assert r.status_code == 200, r.text
    items = r.json()["items"]
    # bob's private experiment and the unknown id are left out alike.
    assert [item["experiment_id"] for item in items] == [bobs_public, busy, quiet]
    by_id = {item["experiment_id"]: item["run"] for item in items}
    assert by_id[busy]["id"] == newest["id"]
    assert by_id[busy]["job_status"] == "Running"
    assert by_id[busy]["model"] == "newest"
    assert by_id[bobs_public]["id"] == public_run["id"]
    assert by_id[quiet] is None  # no runs yet

    # Anonymous callers see public experiments only; bob sees his own.
    anonymous = await _latest(api, None, busy, bobs_private, bobs_public)
    assert [item["experiment_id"] for item in anonymous.json()["items"]] == [bobs_public]
    bob = await _latest(api, "bob", f"{busy},{bobs_private}")  # commas work too
    assert [item["experiment_id"] for item in bob.json()["items"]] == [bobs_private]
    # The same id twice is answered once.
    twice = await _latest(api, "alice", quiet, quiet)
    assert len(twice.json()["items"]) == 1


async def test_bad_requests_are_clear_422s(api: Api) -> None:
    await api.register("alice")
    cases = [
        [],  # no experiment at all
        [""],  # only an empty one
        [str(uuid.uuid4()) for _ in range(101)],
        ["x" * 129],
    ]
    for ids in cases:
        r = await _latest(api, "alice", *ids)
        assert r.status_code == 422, (ids[:2], r.text)
        body = r.json()
        assert body["status"] == 422
        assert body["errors"][0]["field"].endswith("experiment"), body
    # At the limit: fine.
    r = await _latest(api, "alice", *[str(uuid.uuid4()) for _ in range(100)])
    assert r.status_code == 200
    assert r.json() == {"items": []}
