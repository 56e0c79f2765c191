"""Where events come from: a server check that finishes, and the stale-run sweep; and a run
write that succeeds although its event cannot be stored."""

from __future__ import annotations

import random
from datetime import timedelta

from drift_backend.drifts.service import fail_stale_runs
from drift_backend.schemas import utcnow
from drift_backend.store.database import connect

from tests.events.conftest import Live


async def test_a_finished_check_announces_its_run_and_its_report(live_factory: object) -> None:
    live: Live = await live_factory(embedded_worker=True)  # type: ignore[operator]
    await live.register("alice")
    exp = await live.experiment("alice")
    rng = random.Random(7)
    reference = {
        "x": [rng.gauss(0, 1) for _ in range(500)],
        "y": [rng.gauss(0, 1) for _ in range(500)],
    }
    current = {
        "x": [rng.gauss(3, 1) for _ in range(300)],
        "y": [rng.gauss(0, 1) for _ in range(300)],
    }
    r = await live.request(
        "POST",
        f"/experiment/{exp}/baseline",
        "alice",
        params={"model": "m1"},
        json={"columns": reference},
    )
    assert r.status_code == 201, r.text
    stream = await live.stream("alice", params={"experiment": exp})
    r = await live.request(
        "POST",
        f"/experiment/{exp}/check",
        "alice",
        params={"model": "m1", "wait": 60},
        json={"columns": current},
    )
    assert r.status_code == 200, r.text
    run_id = r.json()["id"]
    kinds = [(await stream.event_of(run_id)).event for _ in range(2)]
    assert kinds == ["run.created", "run.finished"]
    check = await stream.event_of(run_id)
    assert check.event == "check.finished"
    assert check.data is not None
    assert check.data["model"] == "m1"
    summary = r.json()["parameters"]["check"]  # the report's summary, as the run holds it
    assert "x" in summary["drifted_features"]
    assert check.data["payload"] == {
        "status": "Completed",
        "drift_detected": r.json()["drift_detected"],
        "drifted_features": len(summary["drifted_features"]),
        "n_tested": 2,
        "violations": summary["violations"],
    }


async def test_the_stale_run_sweep_announces_each_run_it_fails(live: Live) -> None:
    exp = await live.experiment("alice")
    stream = await live.stream("alice", params={"experiment": exp})
    run = await live.run("alice", exp)
    await stream.event_of(run["id"])
    client = connect(live.settings.mongodb_url.get_secret_value())
    try:
        db = client[live.settings.mongodb_database]
        await db.drifts.update_one(
            {"_id": run["id"]}, {"$set": {"updated_at": utcnow() - timedelta(hours=2)}}
        )
        assert await fail_stale_runs(db, 3600) == 1
        assert await fail_stale_runs(db, 3600) == 0  # nothing failed twice, nothing announced
    finally:
        await client.close()
    failed = await stream.event_of(run["id"])
    assert failed.event == "run.finished"
    assert failed.data is not None
    assert failed.data["payload"]["status"] == "Failed"
    sentinel = await live.run("alice", exp)
    await stream.event_of(sentinel["id"])


async def test_a_run_write_succeeds_when_its_event_cannot_be_stored(live: Live) -> None:
    exp = await live.experiment("alice")
    client = connect(live.settings.mongodb_url.get_secret_value())
    try:
        db = client[live.settings.mongodb_database]
        # The events collection refuses every insert for a while.
        await db.command({"collMod": "events", "validator": {"never_there": {"$exists": True}}})
        try:
            run = await live.run("alice", exp)
        finally:
            await db.command({"collMod": "events", "validator": {}})
        assert await db.events.count_documents({"run_id": run["id"]}) == 0
    finally:
        await client.close()
    r = await live.request("GET", f"/experiment/{exp}/drift/{run['id']}", "alice")
    assert r.status_code == 200
    assert r.json()["job_status"] == "Running"
