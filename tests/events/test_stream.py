"""``GET /events`` over real HTTP: who sees what, replay after ``Last-Event-ID``, the
experiment filter, keep-alive pings and the limits."""

from __future__ import annotations

import asyncio
from datetime import datetime

from tests.events.conftest import Live


async def test_a_caller_sees_own_and_public_events_never_another_users_private_ones(
    live: Live,
) -> None:
    mine = await live.experiment("alice")
    bobs_private = await live.experiment("bob")
    bobs_public = await live.experiment("bob", public=True)
    alice = await live.stream("alice")
    anonymous = await live.stream(None)

    await live.run("bob", bobs_private)  # numbered before the next: it would arrive first
    public_run = await live.run("bob", bobs_public)
    got = await alice.event_of(public_run["id"])
    assert got.event == "run.created"
    assert got.data == {
        "id": got.id,
        "type": "run.created",
        "experiment_id": bobs_public,
        "run_id": public_run["id"],
        "model": "m1",
        "time": got.data["time"] if got.data else None,
        "payload": {
            "status": "Running",
            "drift_detected": False,
            "concept_drift": None,
            "data_drift": None,
        },
    }
    assert datetime.fromisoformat(got.data["time"]).utcoffset() is not None
    await anonymous.event_of(public_run["id"])

    own_run = await live.run("alice", mine)
    await alice.event_of(own_run["id"])
    await live.run("bob", bobs_private)
    later_public = await live.run("bob", bobs_public)
    await alice.event_of(later_public["id"])
    await anonymous.event_of(later_public["id"])  # alice's private run never reached it

    # The administrator sees everything.
    admin = await live.stream("admin")
    secret = await live.run("bob", bobs_private)
    await admin.event_of(secret["id"])


async def test_finishing_a_run_announces_it_once(live: Live) -> None:
    exp = await live.experiment("alice")
    stream = await live.stream("alice", params={"experiment": exp})
    run = await live.run("alice", exp)
    await stream.event_of(run["id"])
    await live.finish(
        "alice", exp, run["id"], data_drift={"drift": True, "parameters": {}}, job_status="Running"
    )
    updated = await stream.event_of(run["id"])
    assert updated.event == "run.updated"
    assert updated.data is not None
    assert updated.data["payload"]["data_drift"] is True
    await live.finish("alice", exp, run["id"], concept_drift={"drift": False, "parameters": {}})
    # The idempotent retry of the finishing write changes nothing and announces nothing.
    await live.finish("alice", exp, run["id"], concept_drift={"drift": False, "parameters": {}})
    finished = await stream.event_of(run["id"])
    assert finished.event == "run.finished"
    assert finished.data is not None
    assert finished.data["payload"]["status"] == "Completed"
    # A run reported already finished is created and finished at once.
    done = await live.run("alice", exp, job_status="Failed")
    assert [(await stream.event_of(done["id"])).event for _ in range(2)] == [
        "run.created",
        "run.finished",
    ]
    # An Idempotency-Key replay creates no second run and no second event.
    headers = {"Idempotency-Key": "same-request"}
    first = await live.request(
        "POST", f"/experiment/{exp}/drift", "alice", json={"model": "m1"}, headers=headers
    )
    again = await live.request(
        "POST", f"/experiment/{exp}/drift", "alice", json={"model": "m1"}, headers=headers
    )
    assert again.headers.get("idempotent-replayed") == "true"
    await stream.event_of(first.json()["id"])
    sentinel = await live.run("alice", exp)
    await stream.event_of(sentinel["id"])


async def test_revoking_read_permission_stops_the_events(live: Live) -> None:
    alice_id = await live.register("alice")
    shared = await live.experiment("bob", permissions=[{"entity": alice_id, "level": "Read"}])
    own = await live.experiment("alice")
    stream = await live.stream("alice")
    run = await live.run("bob", shared)
    await stream.event_of(run["id"])

    revoked = await live.request(
        "DELETE", f"/experiment/{shared}/permissions", "bob", params={"entity": alice_id}
    )
    assert revoked.status_code == 200, revoked.text
    # The stream reuses a decision for events_permission_cache_seconds: let it lapse.
    await asyncio.sleep(live.settings.events_permission_cache_seconds * 3)
    await live.run("bob", shared)
    sentinel = await live.run("alice", own)
    await stream.event_of(sentinel["id"])


async def test_reconnecting_with_last_event_id_replays_what_was_missed(live: Live) -> None:
    exp = await live.experiment("alice")
    first = await live.stream("alice", params={"experiment": exp})
    run = await live.run("alice", exp)
    seen = await first.event_of(run["id"])
    await first.response.aclose()

    missed = [await live.run("alice", exp) for _ in range(3)]
    await live.finish("alice", exp, missed[0]["id"])
    again = await live.stream(
        "alice", params={"experiment": exp}, headers={"Last-Event-ID": str(seen.id)}
    )
    replayed = [await again.event() for _ in range(4)]
    assert [(f.event, f.data["run_id"] if f.data else None) for f in replayed] == [
        ("run.created", missed[0]["id"]),
        ("run.created", missed[1]["id"]),
        ("run.created", missed[2]["id"]),
        ("run.finished", missed[0]["id"]),
    ]
    ids = [int(str(f.id)) for f in replayed]
    assert ids == sorted(ids)
    assert ids[0] > int(str(seen.id))
    live_run = await live.run("alice", exp)
    await again.event_of(live_run["id"])  # then live, with nothing twice

    # The same through the query parameter, without following: the kept events, then the end.
    finite = await live.stream(
        "alice", params={"experiment": exp, "last_event_id": seen.id, "follow": "false"}
    )
    rest = await finite.rest()
    rest_ids = [int(str(f.id)) for f in rest]
    assert rest_ids[:4] == ids
    assert rest_ids == sorted(set(rest_ids))
    assert len(rest) == 5
    assert rest[-1].data is not None
    assert rest[-1].data["run_id"] == live_run["id"]


async def test_the_experiment_filter(live: Live) -> None:
    a = await live.experiment("alice")
    b = await live.experiment("alice")
    c = await live.experiment("alice")
    stream = await live.stream("alice", params={"experiment": [a, f"{b}"]})
    await live.run("alice", c)
    in_b = await live.run("alice", b)
    await stream.event_of(in_b["id"])
    in_a = await live.run("alice", a)
    await stream.event_of(in_a["id"])
    commas = await live.stream("alice", params={"experiment": f"{c},{a}"})
    await live.run("alice", b)
    in_c = await live.run("alice", c)
    await commas.event_of(in_c["id"])


async def test_bad_requests_are_clear_errors(live: Live) -> None:
    bobs = await live.experiment("bob")
    for who in ("alice", None):
        r = await live.request("GET", "/events", who, params={"experiment": bobs})
        assert r.status_code == 404, r.text
        assert r.json()["code"] == "not_found"
    r = await live.request("GET", "/events", "alice", headers={"Last-Event-ID": "abc"})
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "Last-Event-ID"
    r = await live.request("GET", "/events", "alice", params={"last_event_id": "-1"})
    assert r.status_code == 422
    r = await live.request("GET", "/events", "alice", params={"experiment": ","})
    assert r.status_code == 422
    r = await live.request(
        "GET", "/events", "alice", params={"experiment": [str(i) for i in range(101)]}
    )
    assert r.status_code == 422
    r = await live.request("GET", "/events", headers={"Authorization": "Bearer nonsense"})
    assert r.status_code == 401


async def test_an_idle_stream_gets_keepalive_pings(live: Live) -> None:
    stream = await live.stream("alice")
    pings = 0
    while pings < 2:
        got = await stream.frame()
        assert got is not None
        assert got.event is None  # nothing happened: only pings
        if "ping" in got.comments:
            pings += 1


async def test_streams_over_the_limit_are_answered_503(live_factory: object) -> None:
    live: Live = await live_factory(events_max_streams=1)  # type: ignore[operator]
    await live.register("alice")
    first = await live.stream("alice")
    r = await live.request("GET", "/events", "alice")
    assert r.status_code == 503
    assert r.headers["retry-after"] == "5"
    assert r.json()["code"] == "service_unavailable"
    await first.response.aclose()
    for _ in range(300):  # until the server has seen the first one go
        if not live.hub.subscribers:
            break
        await asyncio.sleep(0.02)
    second = await live.stream("alice")
    assert second.response.status_code == 200
