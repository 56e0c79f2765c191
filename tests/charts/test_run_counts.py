"""The timeline's run counts (``run_counts``, per 6 hours in day documents, hour and 10
minutes) against a direct count of the runs: equal after every kind of state change, each
counted exactly once however often it is retried; a failed count never fails the run's
write; rebuild repairs; the timeline route answers the same buckets from the counts as from
the runs."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from drift_backend.charts import cover, run_counts
from drift_backend.charts.buckets import window
from drift_backend.drifts import service as drifts
from drift_backend.drifts.timeline import run_counts as direct_counts
from drift_backend.store.database import Database

from tests.charts.conftest import PREFIX, add_run
from tests.conftest import Api

EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
HOUR = timedelta(hours=1)
FAR = datetime(2200, 1, 1, tzinfo=UTC)


def grain_bucket(grain: timedelta) -> dict[str, Any]:
    minutes = int(grain.total_seconds() // 60)
    return {
        "$dateTrunc": {
            "date": "$created_at",
            "unit": "minute",
            "binSize": minutes,
            "timezone": "UTC",
        }
    }


async def direct(
    db: Database, exp: str, model: str | None, grain: timedelta
) -> dict[Any, dict[str, int]]:
    """Runs per span of ``grain`` by state, counted from the runs themselves."""
    rows = await direct_counts(db, exp, model, EPOCH, FAR, grain_bucket(grain))
    return {
        row["_id"]: {s: row[s] for s in run_counts.STATES}
        for row in rows
        if any(row[s] for s in run_counts.STATES)
    }


def stored(grain: timedelta) -> timedelta:
    """The documents a grain's spans live in: 6 hours in their day's, 10 minutes in their
    hour's."""
    return run_counts.HELD[grain][0] if grain in run_counts.HELD else grain


def spans_of(doc: dict[str, Any], grain: timedelta) -> list[tuple[datetime, dict[str, Any]]]:
    """(span start, its counts) of a count document: a day's four quarters, an hour's six
    10-minute spans, or itself."""
    if grain == cover.QUARTER:
        return [(cover.quarter_start(doc["start"], f), c) for f, c in doc.get("q", {}).items()]
    if grain == cover.TEN_MINUTES:
        return [(cover.sixth_start(doc["start"], f), c) for f, c in doc.get("t", {}).items()]
    return [(doc["start"], doc)]


async def counted(
    db: Database, exp: str, model: str | None, grain: timedelta
) -> dict[Any, dict[str, int]]:
    """The same from the counts; checked against the per-run markers too."""
    query: dict[str, Any] = {"experiment_id": exp}
    if model is not None:
        query["model"] = model
    totals: dict[Any, Counter[str]] = {}
    async for doc in db.run_counts.find({**query, "grain": int(stored(grain).total_seconds())}):
        for start, counts in spans_of(doc, grain):
            totals.setdefault(start, Counter()).update(
                {s: counts.get(s, 0) for s in run_counts.STATES}
            )
    marked: dict[Any, Counter[str]] = {}
    async for mark in db.run_count_marks.find(query):
        start = run_counts.floor(mark["created_at"], grain)
        marked.setdefault(start, Counter())[mark["state"]] += 1
    found = {
        start: {s: c[s] for s in run_counts.STATES}
        for start, c in totals.items()
        if any(c.values())
    }
    assert found == {start: {s: c[s] for s in run_counts.STATES} for start, c in marked.items()}
    return found


async def assert_totals_match(db: Database, exp: str) -> None:
    """The per-model totals (``run_totals``, what ``/metrics`` reads) against the runs: the
    counts by state, the newest run's time and the newest Completed run's decision."""
    expected: dict[str, dict[str, Any]] = {}
    async for run in db.drifts.find({"experiment_id": exp}):
        row = expected.setdefault(
            run["model"], {**dict.fromkeys(run_counts.STATES, 0), "last": None, "completed": None}
        )
        row[run_counts.state_of(run)] += 1
        if row["last"] is None or run["created_at"] > row["last"]:
            row["last"] = run["created_at"]
        completed = row["completed"]
        if run["job_status"] == "Completed" and (
            completed is None or run["created_at"] > completed["created_at"]
        ):
            row["completed"] = {"created_at": run["created_at"], "drift": run["drift_detected"]}
    found = {
        doc["model"]: {
            **{s: doc.get(s, 0) for s in run_counts.STATES},
            "last": doc.get("last_run_at"),
            "completed": doc.get("completed"),
        }
        async for doc in db.run_totals.find({"experiment_id": exp})
        if any(doc.get(s, 0) for s in run_counts.STATES)
    }
    assert found == expected


async def assert_counts_match(db: Database, exp: str) -> None:
    for grain in run_counts.GRAINS:
        for model in (None, "m1", "m2"):
            assert await counted(db, exp, model, grain) == await direct(db, exp, model, grain)
    await assert_totals_match(db, exp)


def drift_url(exp: str, run: str = "") -> str:
    return f"{PREFIX}/experiment/{exp}/drift" + (f"/{run}" if run else "")


async def test_counts_follow_every_state_change_once(chart_api: Api, chart_db: Database) -> None:
    api, db = chart_api, chart_db
    exp = (await api.experiment("alice"))["id"]
    running = [
        await add_run(api, exp, f"2026-01-01T0{h}:{m}0:00Z", "Running", model=f"m{1 + h % 2}")
        for h in range(3)
        for m in range(3)
    ]
    await add_run(api, exp, "2026-01-01T00:15:00Z", drift=True)
    await add_run(api, exp, "2026-01-01T05:15:00Z", "Failed", model="m2")
    await assert_counts_match(db, exp)

    # An update that keeps a run Running moves nothing; finishing moves it once, and an
    # identical retry of the finish (200, the same run) moves nothing more.
    put = {"model": "m1", "job_status": "Running", "tags": ["x"]}
    assert (
        await api.request("PUT", drift_url(exp, running[0]["id"]), "alice", json=put)
    ).is_success
    finish = {"model": "m1", "job_status": "Completed", "drift_detected": True}
    for _ in range(2):
        r = await api.request("PUT", drift_url(exp, running[0]["id"]), "alice", json=finish)
        assert r.status_code == 200, r.text
    failed = {"model": "m2", "job_status": "Failed", "error": {"type": "E", "message": "x"}}
    assert (
        await api.request("PUT", drift_url(exp, running[1]["id"]), "alice", json=failed)
    ).is_success
    # A Running run whose model changes moves to the other model's counts (twice: once).
    moved = {"model": "m2", "job_status": "Running"}
    for _ in range(2):
        r = await api.request("PUT", drift_url(exp, running[7]["id"]), "alice", json=moved)
        assert r.status_code == 200, r.text
    # Back to Running is refused, and counts nothing.
    back = await api.request("PUT", drift_url(exp, running[1]["id"]), "alice", json=put)
    assert back.status_code == 409
    await assert_counts_match(db, exp)

    # The server's own transitions, each tried twice (a retried job): counted once.
    for _ in range(2):
        await drifts.complete_check(db, running[2]["id"], dataset_drift=False, summary={})
        await drifts.fail(db, running[3]["id"], {"type": "Boom", "message": "x"})
    await assert_counts_match(db, exp)

    # The sweeper: two stale runs fail once, however often it sweeps.
    stale = datetime.now(UTC) - timedelta(days=1)
    ids = [running[4]["id"], running[5]["id"]]
    await db.drifts.update_many({"_id": {"$in": ids}}, {"$set": {"updated_at": stale}})
    assert await drifts.fail_stale_runs(db, 3600) == 2
    assert await drifts.fail_stale_runs(db, 3600) == 0
    await assert_counts_match(db, exp)

    # Deleting runs (Running and finished); a second delete is a 404 and counts nothing.
    for run in (running[6], running[0]):
        assert (await api.request("DELETE", drift_url(exp, run["id"]), "alice")).status_code == 204
        assert (await api.request("DELETE", drift_url(exp, run["id"]), "alice")).status_code == 404
    await assert_counts_match(db, exp)

    # The counting itself repeated (as a retried caller would): nothing changes.
    doc = await db.drifts.find_one({"_id": running[2]["id"]})
    assert doc is not None
    before = await counted(db, exp, None, HOUR)
    await run_counts.record_created(db, doc)
    await run_counts.record_changed(db, doc)
    await run_counts.record_changed(db, doc)
    assert await counted(db, exp, None, HOUR) == before
    await assert_counts_match(db, exp)


async def test_concurrent_runs_of_one_hour_are_all_counted(
    chart_api: Api, chart_db: Database
) -> None:
    api, db = chart_api, chart_db
    exp = (await api.experiment("alice"))["id"]
    made = await asyncio.gather(
        *(add_run(api, exp, f"2026-02-01T10:{i:02d}:00Z", "Running") for i in range(12))
    )
    finish = {"model": "m1", "job_status": "Completed"}
    await asyncio.gather(
        *(
            api.request("PUT", drift_url(exp, run["id"]), "alice", json=finish)
            for run in made
            for _ in range(2)  # each finish sent twice at once
        )
    )
    await assert_counts_match(db, exp)
    assert (await counted(db, exp, None, HOUR))[datetime(2026, 2, 1, 10, tzinfo=UTC)][
        "not_drifted"
    ] == 12


async def test_runs_created_at_once_are_each_counted_and_announced_once(
    chart_api: Api, chart_db: Database
) -> None:
    """Concurrent creations share their follow-up writes (``drifts/announce.py``): runs of
    two models and every state, in one hour and across hours, counted as one by one."""
    api, db = chart_api, chart_db
    exp = (await api.experiment("alice"))["id"]
    states = ("Running", "Completed", "Failed")
    made = await asyncio.gather(
        *(
            add_run(
                api,
                exp,
                f"2026-04-01T{10 + i % 3:02d}:{i:02d}:00Z",
                states[i % 3],
                drift=i % 4 == 0,
                model=f"m{1 + i % 2}",
            )
            for i in range(40)
        )
    )
    await assert_counts_match(db, exp)
    created = [
        doc
        async for doc in db.events.find({"experiment_id": exp, "type": "run.created"}).sort("_id")
    ]
    assert sorted(doc["run_id"] for doc in created) == sorted(run["id"] for run in made)
    numbers = [doc["_id"] for doc in created]
    assert len(set(numbers)) == len(numbers) == 40

    # Their finishes at once too, each sent twice (the second finds it finished: 200, no
    # second count and no second event), and updates of runs kept Running.
    running = [run for run in made if run["job_status"] == "Running"]
    finish = {"model": "m1", "job_status": "Completed", "drift_detected": True}
    update = {"model": "m2", "job_status": "Running", "tags": ["later"]}
    answers = await asyncio.gather(
        *(
            api.request("PUT", drift_url(exp, run["id"]), "alice", json=finish)
            for run in running[:8]
            for _ in range(2)
        ),
        *(
            api.request("PUT", drift_url(exp, run["id"]), "alice", json=update)
            for run in running[8:]
        ),
    )
    assert {r.status_code for r in answers} == {200}
    await assert_counts_match(db, exp)
    later = {"experiment_id": exp, "type": {"$ne": "run.created"}}
    announced = Counter([(doc["type"], doc["run_id"]) async for doc in db.events.find(later)])
    assert announced == {
        **{("run.finished", run["id"]): 1 for run in made if run["job_status"] != "Running"},
        **{("run.finished", run["id"]): 1 for run in running[:8]},
        **{("run.updated", run["id"]): 1 for run in running[8:]},
    }


async def test_a_failed_count_never_fails_the_write_and_rebuild_repairs(
    chart_api: Api, chart_db: Database
) -> None:
    api, db = chart_api, chart_db
    exp = (await api.experiment("alice"))["id"]
    await add_run(api, exp, "2026-03-01T08:00:00Z")
    # Break the hour's counts documents: their counts are no longer numbers, so every $inc
    # of them fails in the database.
    broken = dict.fromkeys(run_counts.STATES, "broken")
    await db.run_counts.update_many({"experiment_id": exp}, {"$set": broken})
    run = await add_run(api, exp, "2026-03-01T08:30:00Z", "Running")  # still 201
    r = await api.request(
        "PUT", drift_url(exp, run["id"]), "alice", json={"model": "m1", "job_status": "Failed"}
    )
    assert r.status_code == 200, r.text
    assert (await api.request("DELETE", drift_url(exp, run["id"]), "alice")).status_code == 204
    await add_run(api, exp, "2026-03-01T09:00:00Z", drift=True)

    await run_counts.rebuild(db, exp)
    await assert_counts_match(db, exp)
    # A rebuild of everything gives the same, and drops hours whose runs are gone.
    await db.drifts.delete_many(
        {"experiment_id": exp, "created_at": {"$gte": datetime(2026, 3, 1, 9, tzinfo=UTC)}}
    )
    await run_counts.rebuild(db)
    await assert_counts_match(db, exp)
    assert (
        await db.run_counts.count_documents({"experiment_id": exp}) == 2
    )  # the 08:00 run: its day (its 6 hours), hour (its 10 minutes)


async def test_start_up_counts_runs_stored_before_the_counts_existed(
    chart_api: Api, chart_db: Database
) -> None:
    api, db = chart_api, chart_db
    exp = (await api.experiment("alice"))["id"]
    for h in range(4):
        await add_run(api, exp, f"2026-04-01T0{h}:00:00Z", "Failed" if h == 2 else "Completed")
    await db.run_counts.delete_many({})  # a deployment from before the counts
    await run_counts.prepare(db)
    await assert_counts_match(db, exp)
    await db.run_totals.delete_many({})  # one from before the per-model totals
    await run_counts.prepare(db)
    await assert_counts_match(db, exp)
    written = await db.run_counts.count_documents({})
    await run_counts.prepare(db)  # counts exist now: nothing to do
    assert await db.run_counts.count_documents({}) == written


async def test_deleting_the_experiment_deletes_its_counts(
    chart_api: Api, chart_db: Database
) -> None:
    api, db = chart_api, chart_db
    exp = (await api.experiment("alice"))["id"]
    await add_run(api, exp, "2026-05-01T00:00:00Z")
    # day (its 6 hours), hour (its 10 minutes)
    assert await db.run_counts.count_documents({"experiment_id": exp}) == 2
    r = await api.request("DELETE", f"{PREFIX}/experiment/{exp}", "alice")
    assert r.status_code == 204, r.text
    assert await db.run_counts.count_documents({"experiment_id": exp}) == 0
    assert await db.run_count_marks.count_documents({"experiment_id": exp}) == 0
    assert await db.run_totals.count_documents({"experiment_id": exp}) == 0


@pytest.mark.parametrize(
    ("start", "end", "buckets"),
    [
        ("2026-06-01T00:30:00Z", "2026-06-04T05:45:00Z", 30),  # 3-hour buckets, ragged edges
        ("2026-06-01T00:00:00Z", "2026-06-30T00:00:00Z", 200),  # 6-hour buckets, whole hours
        ("2026-05-20T07:10:00Z", "2026-07-01T00:00:00Z", 10),  # 7-day buckets
        ("2026-06-02T00:00:00Z", "2026-06-02T06:00:00Z", 200),  # minute buckets: runs alone
        ("2026-06-01T01:10:00Z", "2026-06-03T23:20:00Z", 30),  # 2-hour buckets: hours, runs
        ("2026-05-31T22:00:00Z", "2026-06-04T01:00:00Z", 120),  # 1-hour buckets
        ("2026-06-01T03:07:00Z", "2026-06-02T03:07:00Z", 200),  # 10 minutes: spans, runs
        ("2026-06-01T00:00:00Z", "2026-06-04T00:00:00Z", 200),  # 30 minutes: 10-min spans
        # 30 days off the day edges (6-hour buckets): day documents' quarters, edge days
        # partly, hours, 10 minutes, runs
        ("2026-05-31T13:37:00Z", "2026-06-30T13:37:00Z", 200),
        ("2026-05-20T05:00:00Z", "2026-07-19T05:00:00Z", 200),  # 12-hour buckets
        ("2026-05-25T09:00:00Z", "2026-06-24T09:00:00Z", 40),  # 1-day buckets, off the edges
        ("2026-06-02T00:00:00Z", "2026-06-03T00:00:00Z", 4),  # 6-hour buckets of one day
    ],
)
async def test_the_timeline_from_counts_equals_counting_the_runs(
    chart_api: Api, chart_db: Database, start: str, end: str, buckets: int
) -> None:
    api, db = chart_api, chart_db
    exp = (await api.experiment("alice"))["id"]
    for i in range(40):
        when = datetime(2026, 6, 1, tzinfo=UTC) + timedelta(minutes=97 * i)
        status = ("Completed", "Failed", "Running", "Completed")[i % 4]
        await add_run(api, exp, when.isoformat(), status, drift=i % 3 == 0, model=f"m{1 + i % 2}")
    # At a day's edge: the last millisecond of one day, the first of the next.
    await add_run(api, exp, "2026-06-01T23:59:59.999Z", drift=True)
    await add_run(api, exp, "2026-06-02T00:00:00Z", "Failed")
    await assert_counts_match(db, exp)
    params = {"from": start, "to": end, "buckets": buckets}
    r = await api.request(
        "GET", f"{PREFIX}/experiment/{exp}/charts/timeline", "alice", params=params
    )
    assert r.status_code == 200, r.text
    got = r.json()["buckets"]
    w = window(datetime.fromisoformat(start), datetime.fromisoformat(end), buckets, FAR)
    rows = await direct_counts(db, exp, None, w.start, w.end, w.expression("created_at"))
    expected = [
        {"start": row["_id"].isoformat(), **{s: row[s] for s in run_counts.STATES}} for row in rows
    ]
    assert got == expected
    assert sum(sum(b[s] for s in run_counts.STATES) for b in got) > 0


async def test_a_30_day_timeline_reads_the_day_documents(
    chart_api: Api, chart_db: Database
) -> None:
    # Counts changed behind the timeline's back in the day documents alone show in a 30-day
    # window (6-hour buckets): its whole 6-hour spans come from the days' quarters, one
    # document per day (the hour documents and the runs say otherwise).
    api, db = chart_api, chart_db
    exp = (await api.experiment("alice"))["id"]
    for when in ("2026-06-10T01:00:00Z", "2026-06-10T13:00:00Z", "2026-06-20T23:59:59Z"):
        await add_run(api, exp, when)
    days = [doc async for doc in db.run_counts.find({"experiment_id": exp, "grain": 86400})]
    assert len(days) == 2
    assert await db.run_counts.count_documents({"experiment_id": exp, "grain": 21600}) == 0
    for doc in days:
        quarters = {f"q.{field}.not_drifted": 100 for field in doc["q"]}
        await db.run_counts.update_one({"_id": doc["_id"]}, {"$set": quarters})
    params = {"from": "2026-06-01T03:00:00Z", "to": "2026-07-01T03:00:00Z"}
    r = await api.request(
        "GET", f"{PREFIX}/experiment/{exp}/charts/timeline", "alice", params=params
    )
    assert r.status_code == 200, r.text
    assert (r.json()["window"]["unit"], r.json()["window"]["bin_size"]) == ("hour", 6)
    assert [(b["start"], b["not_drifted"]) for b in r.json()["buckets"]] == [
        ("2026-06-10T00:00:00+00:00", 100),
        ("2026-06-10T12:00:00+00:00", 100),
        ("2026-06-20T18:00:00+00:00", 100),
    ]


async def test_a_1_day_timeline_reads_the_hours_10_minute_spans(
    chart_api: Api, chart_db: Database
) -> None:
    # Counts changed in the hour documents' 10-minute fields alone show in a 1-day window
    # (10-minute buckets): one document per hour, not one per 10 minutes.
    api, db = chart_api, chart_db
    exp = (await api.experiment("alice"))["id"]
    for when in ("2026-06-10T01:05:00Z", "2026-06-10T01:47:00Z", "2026-06-10T13:00:00Z"):
        await add_run(api, exp, when)
    hours = [doc async for doc in db.run_counts.find({"experiment_id": exp, "grain": 3600})]
    assert len(hours) == 2
    assert await db.run_counts.count_documents({"experiment_id": exp, "grain": 600}) == 0
    for doc in hours:
        sixths = {f"t.{field}.not_drifted": 100 for field in doc["t"]}
        await db.run_counts.update_one({"_id": doc["_id"]}, {"$set": sixths})
    params = {"from": "2026-06-10T00:00:00Z", "to": "2026-06-11T00:00:00Z"}
    r = await api.request(
        "GET", f"{PREFIX}/experiment/{exp}/charts/timeline", "alice", params=params
    )
    assert r.status_code == 200, r.text
    assert (r.json()["window"]["unit"], r.json()["window"]["bin_size"]) == ("minute", 10)
    assert [(b["start"], b["not_drifted"]) for b in r.json()["buckets"]] == [
        ("2026-06-10T01:00:00+00:00", 100),
        ("2026-06-10T01:40:00+00:00", 100),
        ("2026-06-10T13:00:00+00:00", 100),
    ]


async def to_old_layout(db: Database, grain: timedelta) -> None:
    """Turn the ``grain`` spans held in larger documents into documents of their own, as
    counts were kept before session 8: a day keeps nothing else (it goes), an hour keeps
    its own counts (only its 10-minute field goes)."""
    holder, field, _ = run_counts.HELD[grain]
    async for doc in db.run_counts.find({"grain": int(holder.total_seconds())}):
        for start, counts in spans_of(doc, grain):
            old = {"experiment_id": doc["experiment_id"], "model": doc["model"], **counts}
            old.update({"grain": int(grain.total_seconds()), "start": start})
            old["_id"] = cover.span_key({**old, "created_at": start}, grain)
            await db.run_counts.insert_one(old)
        if holder == cover.DAY:
            await db.run_counts.delete_one({"_id": doc["_id"]})
        else:
            await db.run_counts.update_one({"_id": doc["_id"]}, {"$unset": {field: ""}})


async def test_start_up_replaces_10_minute_documents_of_their_own(
    chart_api: Api, chart_db: Database
) -> None:
    # Counts from before the hours held their 10-minute spans: start-up recounts them into
    # the hours, and the 10-minute documents are gone.
    api, db = chart_api, chart_db
    exp = (await api.experiment("alice"))["id"]
    for i in range(9):
        when = datetime(2026, 7, 1, tzinfo=UTC) + timedelta(minutes=17 * i)
        await add_run(api, exp, when.isoformat(), ("Completed", "Failed")[i % 2])
    ten = cover.TEN_MINUTES
    live = await counted(db, exp, None, ten)
    await to_old_layout(db, ten)
    assert await run_counts.outdated(db)
    await run_counts.prepare(db)
    assert not await run_counts.outdated(db)
    assert await db.run_counts.count_documents({"grain": 600}) == 0
    assert await counted(db, exp, None, ten) == live
    await assert_counts_match(db, exp)


async def test_start_up_replaces_counts_from_before_the_day_documents(
    chart_api: Api, chart_db: Database
) -> None:
    # A deployment whose counts have 6-hour documents of their own (before session 8):
    # start-up finds no day document and recounts; then the days equal what was counted
    # live, the 6-hour documents are gone, and a second start-up does nothing.
    api, db = chart_api, chart_db
    exp = (await api.experiment("alice"))["id"]
    for i in range(12):
        when = datetime(2026, 7, 1, tzinfo=UTC) + timedelta(minutes=331 * i)
        await add_run(api, exp, when.isoformat(), ("Completed", "Failed")[i % 2], model=f"m{i % 2}")

    async def snapshot() -> list[Any]:
        return [
            await counted(db, exp, model, grain)
            for grain in run_counts.GRAINS
            for model in (None, "m0", "m1")
        ]

    live = await snapshot()
    assert live[0]  # 6-hour spans (from the days)
    await to_old_layout(db, cover.QUARTER)
    assert await run_counts.outdated(db)
    await run_counts.prepare(db)
    assert not await run_counts.outdated(db)
    assert await snapshot() == live
    assert await db.run_counts.count_documents({"grain": 21600}) == 0
    await assert_counts_match(db, exp)
    written = await db.run_counts.count_documents({})
    await run_counts.prepare(db)
    assert await db.run_counts.count_documents({}) == written
