from __future__ import annotations

from tests.conftest import Api


async def test_register_create_and_run(api: Api) -> None:
    user = await api.register("alice")
    exp = await api.experiment("alice")
    assert exp["permissions"] == [{"entity": user["id"], "level": "Manage"}]
    r = await api.request(
        "POST",
        f"/api/v1/experiment/{exp['id']}/drift",
        "alice",
        json={"model": "m1", "job_status": "Running"},
    )
    assert r.status_code == 201, r.text
    drift = r.json()
    r = await api.request(
        "PUT",
        f"/api/v1/experiment/{exp['id']}/drift/{drift['id']}",
        "alice",
        json={"model": "m1", "job_status": "Completed", "drift_detected": True},
    )
    assert r.status_code == 200, r.text
    assert r.json()["finished_at"] is not None
    r = await api.request("POST", f"/api/v1/experiment/{exp['id']}/drift/search", "alice", json={})
    assert r.status_code == 200
    assert len(r.json()) == 1
    assert '"total":1' in r.headers["x-pagination"]
