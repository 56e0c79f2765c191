"""What checks add to the charts, counted as they land (``violation_counts`` per hour and 6
hours, ``feature_counts`` per 6 hours, the 6 hours in day documents), against aggregating the check runs and feature
results themselves: equal after checks, retries (the same report, and a different one after
a partial attempt), deletions and a rebuild; each check counted exactly once; the routes
answer from the counts what they answered from the documents."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from drift_backend.charts import check_counts, cover, feature_counts, queries, run_counts
from drift_backend.charts import repository as charts
from drift_backend.charts.buckets import window
from drift_backend.charts.cover import floor
from drift_backend.store.database import Database

from tests.charts.conftest import PREFIX, add_check, add_run, feature, report
from tests.charts.test_run_counts import spans_of, stored
from tests.conftest import Api

FAR = datetime(2200, 1, 1, tzinfo=UTC)
KINDS = ["completeness_check", "data_type_check", "odd.kind$name"]


def features(i: int) -> list[dict[str, Any]]:
    return [
        feature("a", p=round(0.01 * (i % 7 + 1), 3), drifted=i % 3 == 0),
        feature("b", distance=round(0.05 * (i % 5), 3), threshold=0.1 + i % 2, test="wasserstein"),
        *([feature("c.d$e", p=0.3)] if i % 2 else []),  # "." and "$" in a field name
    ]


async def naive_violations(db: Database, exp: str, grain: timedelta) -> dict[Any, Any]:
    """Per (model, span): checks, total, kinds, from the check runs."""
    found: dict[Any, Any] = {}
    async for check in db.check_runs.find({"experiment_id": exp}):
        row = found.setdefault(
            (check["model"], floor(check["created_at"], grain)),
            {"checks": 0, "total": 0, "kinds": {}},
        )
        row["checks"] += 1
        row["total"] += check["violation_total"]
        for item in check["violations"]:
            row["kinds"][item["kind"]] = row["kinds"].get(item["kind"], 0) + item["count"]
    return found


async def counted_violations(db: Database, exp: str, grain: timedelta) -> dict[Any, Any]:
    found = {}
    query = {"experiment_id": exp, "grain": int(stored(grain).total_seconds())}
    async for doc in db.violation_counts.find(query):
        for start, counts in spans_of(doc, grain):
            if not counts["checks"]:
                continue
            kinds = {
                check_counts.unescape(k): n for k, n in (counts.get("kinds") or {}).items() if n
            }
            found[(doc["model"], start)] = {
                "checks": counts["checks"],
                "total": counts["total"],
                "kinds": kinds,
            }
    return found


async def naive_features(db: Database, exp: str) -> dict[Any, Any]:
    """Per (model, feature, 6 hours): what the history shows, from the results."""
    found: dict[Any, Any] = {}
    async for r in db.feature_results.find({"experiment_id": exp}):
        row = found.setdefault(
            (r["model"], r["feature"], floor(r["created_at"], feature_counts.GRAIN)),
            {"runs": 0, "drifted": 0},
        )
        row["runs"] += 1
        row["drifted"] += int(r["drifted"])
        for name, field in feature_counts.MINIMA:
            if r.get(field) is not None:
                row[name] = min(row.get(name, r[field]), r[field])
        for name, field in feature_counts.MAXIMA:
            if r.get(field) is not None:
                row[name] = max(row.get(name, r[field]), r[field])
    return found


async def counted_features(db: Database, exp: str) -> dict[Any, Any]:
    """The same from the blocks: each feature in the block its name hashes to."""
    found = {}
    async for doc in db.feature_counts.find({"experiment_id": exp}):
        assert doc["grain"] == feature_counts.DAY_GRAIN
        for field, spans in doc.get("f", {}).items():
            name = check_counts.unescape(field)
            assert doc["block"] == feature_counts.block_of(name)
            for quarter, entry in spans.items():
                found[(doc["model"], name, cover.quarter_start(doc["start"], quarter))] = entry
    return found


async def assert_counts_match(db: Database, exp: str) -> None:
    for grain in check_counts.GRAINS:
        assert await counted_violations(db, exp, grain) == await naive_violations(db, exp, grain)
    assert await counted_features(db, exp) == await naive_features(db, exp)
    marks = {doc["_id"] async for doc in db.check_count_marks.find({"experiment_id": exp})}
    checks = {doc["_id"] async for doc in db.check_runs.find({"experiment_id": exp})}
    assert marks == checks


async def seed(api: Api, db: Database, exp: str, n: int = 16) -> list[dict[str, Any]]:
    """``n`` checks over two days, two models, some with violations (one kind with "." and
    "$" in it)."""
    runs = []
    for i in range(n):
        when = datetime(2026, 3, 1, tzinfo=UTC) + timedelta(minutes=173 * i)
        kinds = [KINDS[k % 3] for k in range(i % 4)]
        runs.append(
            await add_check(api, db, exp, when.isoformat(), features(i), kinds, model=f"m{i % 2}")
        )
    return runs


async def test_counts_follow_checks_retries_and_deletions_once(
    chart_api: Api, chart_db: Database
) -> None:
    api, db = chart_api, chart_db
    exp = (await api.experiment("alice"))["id"]
    runs = await seed(api, db, exp)
    await assert_counts_match(db, exp)

    # A retried check job writes the same report again (twice at once, too): counted once.
    again = report(features(0))
    await asyncio.gather(*(charts.record_check(db, runs[0], again) for _ in range(3)))
    await assert_counts_match(db, exp)

    # A retry that stored a different report (an attempt died half-way): corrected once.
    changed = [feature("a", p=0.9), feature("b", distance=0.9, threshold=0.1, drifted=True)]
    for _ in range(2):
        await charts.record_check(db, runs[1], report(changed, ["data_type_check"] * 2))
    await assert_counts_match(db, exp)

    # Deleting runs deletes their reports and chart data: subtracted once.
    for run in (runs[2], runs[5], runs[6]):
        url = f"{PREFIX}/experiment/{exp}/drift/{run['_id']}"
        assert (await api.request("DELETE", url, "alice")).status_code == 204
    await charts.delete_for_runs(db, [runs[2]["_id"]])  # again: nothing left to subtract
    await assert_counts_match(db, exp)


async def test_rebuild_equals_the_incremental_counts(chart_api: Api, chart_db: Database) -> None:
    api, db = chart_api, chart_db
    exp = (await api.experiment("alice"))["id"]
    runs = await seed(api, db, exp, 10)
    url = f"{PREFIX}/experiment/{exp}/drift/{runs[3]['_id']}"
    assert (await api.request("DELETE", url, "alice")).status_code == 204

    async def snapshot() -> tuple[Any, ...]:
        return (
            await counted_violations(db, exp, timedelta(hours=1)),
            await counted_violations(db, exp, timedelta(hours=6)),
            await counted_features(db, exp),
            sorted([d async for d in db.check_count_marks.find({"experiment_id": exp})], key=str),
        )

    incremental = await snapshot()
    await check_counts.rebuild(db, exp)
    assert await snapshot() == incremental
    await check_counts.rebuild(db)  # all experiments: the same
    assert await snapshot() == incremental
    # A deployment from before the counts: start-up counts its checks once.
    for collection in ("violation_counts", "check_count_marks", "feature_counts"):
        await db[collection].delete_many({})
    assert await check_counts.missing(db)
    await run_counts.prepare(db)
    assert await snapshot() == incremental
    assert not await check_counts.missing(db)


async def test_deleting_the_experiment_deletes_its_counts(
    chart_api: Api, chart_db: Database
) -> None:
    api, db = chart_api, chart_db
    exp = (await api.experiment("alice"))["id"]
    await seed(api, db, exp, 3)
    assert await db.feature_counts.count_documents({"experiment_id": exp}) > 0
    r = await api.request("DELETE", f"{PREFIX}/experiment/{exp}", "alice")
    assert r.status_code == 204, r.text
    for collection in ("violation_counts", "check_count_marks", "feature_counts"):
        assert await db[collection].count_documents({"experiment_id": exp}) == 0


@pytest.mark.parametrize(
    ("start", "end", "buckets"),
    [
        ("2026-02-28T00:00:00Z", "2026-03-30T00:00:00Z", 200),  # 6-hour buckets: 6-hour spans
        ("2026-03-01T01:10:00Z", "2026-03-03T23:20:00Z", 30),  # 3-hour buckets: hours, edges
        ("2026-02-20T07:10:00Z", "2026-04-01T00:00:00Z", 10),  # 7-day buckets, ragged edges
        ("2026-03-01T00:00:00Z", "2026-03-02T00:00:00Z", 25),  # 1-hour buckets
        ("2026-03-01T02:00:00Z", "2026-03-01T08:00:00Z", 200),  # minute buckets: documents
        # 30 days off the day edges (6-hour buckets): days' quarters, edge days partly
        ("2026-02-14T13:37:00Z", "2026-03-16T13:37:00Z", 200),
        ("2026-02-10T05:00:00Z", "2026-04-11T05:00:00Z", 200),  # 12-hour buckets
        ("2026-02-15T09:00:00Z", "2026-03-17T09:00:00Z", 40),  # 1-day buckets, off the edges
        ("2026-03-02T00:00:00Z", "2026-03-03T00:00:00Z", 4),  # 6-hour buckets of one day
    ],
)
async def test_routes_from_counts_equal_aggregating_the_documents(
    chart_api: Api, chart_db: Database, start: str, end: str, buckets: int
) -> None:
    api, db = chart_api, chart_db
    exp = (await api.experiment("alice"))["id"]
    runs = await seed(api, db, exp)
    # At a day's edge: the last millisecond of one day, the first of the next; and one
    # deleted (its day's quarter recomputed from the results left).
    for when in ("2026-03-01T23:59:59.999Z", "2026-03-02T00:00:00Z"):
        await add_check(api, db, exp, when, features(5), ["completeness_check"], model="m1")
    url = f"{PREFIX}/experiment/{exp}/drift/{runs[7]['_id']}"
    assert (await api.request("DELETE", url, "alice")).status_code == 204
    await assert_counts_match(db, exp)
    w = window(datetime.fromisoformat(start), datetime.fromisoformat(end), buckets, FAR)
    params = {"from": start, "to": end, "buckets": buckets}
    base = f"{PREFIX}/experiment/{exp}/charts"
    for model in (None, "m1"):
        query = params if model is None else {**params, "model": model}

        r = await api.request("GET", f"{base}/violations", "alice", params=query)
        assert r.status_code == 200, r.text
        raw = await queries.violations(db, exp, model, w, w.start, w.end)
        kinds: dict[Any, dict[str, int]] = {}
        for row in raw["kinds"]:
            kinds.setdefault(row["_id"]["bucket"], {})[row["_id"]["kind"]] = row["count"]
        expected = [
            {
                "start": row["_id"].isoformat(),
                "checks": row["checks"],
                "total": row["total"],
                "kinds": dict(sorted(kinds.get(row["_id"], {}).items())),
            }
            for row in sorted(raw["checks"], key=lambda row: row["_id"])
        ]
        assert r.json()["buckets"] == expected
        assert sum(b["checks"] for b in expected) > 0

        for name in ("a", "b", "c.d$e"):
            r = await api.request("GET", f"{base}/features/{name}", "alice", params=query)
            assert r.status_code == 200, r.text
            rows = await queries.feature_history(db, exp, name, model, w, w.start, w.end)
            assert r.json()["buckets"] == [
                {"start": row.pop("_id").isoformat(), **row} for row in rows
            ]


async def test_whole_spans_are_read_from_the_counts(chart_api: Api, chart_db: Database) -> None:
    # Counts changed behind the charts' back show in a 30-day window (6-hour buckets): its
    # whole spans come from the counts, not from the check runs and results.
    api, db = chart_api, chart_db
    exp = (await api.experiment("alice"))["id"]
    await seed(api, db, exp, 4)
    # Only the day documents are changed: the 6-hour spans are read from them.
    days = {"experiment_id": exp, "grain": 86400}
    async for doc in db.violation_counts.find(days):
        totals = {f"q.{quarter}.total": 100 for quarter in doc["q"]}
        await db.violation_counts.update_one({"_id": doc["_id"]}, {"$set": totals})
    async for doc in db.feature_counts.find(days):
        runs = {f"f.{field}.{q}.runs": 100 for field in doc["f"] for q in doc["f"][field]}
        await db.feature_counts.update_one({"_id": doc["_id"]}, {"$set": runs})
    params = {"from": "2026-02-28T00:00:00Z", "to": "2026-03-30T00:00:00Z"}
    base = f"{PREFIX}/experiment/{exp}/charts"
    r = await api.request("GET", f"{base}/violations", "alice", params=params)
    # (100 per model's span in a bucket: one model or both)
    assert {b["total"] for b in r.json()["buckets"]} <= {100, 200}
    r = await api.request("GET", f"{base}/features/a", "alice", params=params)
    assert {b["runs"] for b in r.json()["buckets"]} <= {100, 200}


async def test_heatmap_from_the_runs_cells_equals_reading_the_results(
    chart_api: Api, chart_db: Database
) -> None:
    # Check runs carry their heatmap cells; ones stored before they did (no cells) are read
    # from feature_results: both give the same heatmap.
    api, db = chart_api, chart_db
    exp = (await api.experiment("alice"))["id"]
    await seed(api, db, exp, 8)
    url = f"{PREFIX}/experiment/{exp}/charts/heatmap"
    cases: list[dict[str, Any]] = [
        {"runs": 5, "features": 1},
        {"runs": 50, "features": 30},
        {"model": "m0"},
    ]

    async def heatmaps() -> list[Any]:
        found = []
        for params in cases:
            r = await api.request("GET", url, "alice", params=params)
            assert r.status_code == 200, r.text
            found.append(r.json())
        return found

    from_cells = await heatmaps()
    assert all(h["cells"] for h in from_cells)
    await db.check_runs.update_many({"experiment_id": exp}, {"$unset": {"cells": ""}})
    assert await heatmaps() == from_cells


async def test_concurrent_checks_of_one_span_are_all_counted(
    chart_api: Api, chart_db: Database
) -> None:
    # Checks landing at once in the same 6 hours write the same feature blocks: each
    # write is conditional on the block's version, so none is lost.
    api, db = chart_api, chart_db
    exp = (await api.experiment("alice"))["id"]
    runs = []
    for i in range(6):
        run = await add_run(api, exp, f"2026-05-01T01:{i:02d}:00Z")
        doc = await db.drifts.find_one({"_id": run["id"]})
        assert doc is not None
        runs.append(doc)
    await asyncio.gather(
        *(charts.record_check(db, run, report(features(i))) for i, run in enumerate(runs))
    )
    await assert_counts_match(db, exp)
    assert sum(e["runs"] for e in (await counted_features(db, exp)).values()) == 6 * 2 + 3


async def test_start_up_replaces_check_counts_from_before_the_day_documents(
    chart_api: Api, chart_db: Database
) -> None:
    # Violations and feature blocks counted per 6 hours in documents of their own (before
    # session 8), the run counts already per day: start-up recounts the checks, and the
    # days hold what was counted live.
    api, db = chart_api, chart_db
    exp = (await api.experiment("alice"))["id"]
    await seed(api, db, exp, 10)
    quarter = cover.QUARTER
    live = (
        await counted_violations(db, exp, quarter),
        await counted_violations(db, exp, timedelta(hours=1)),
        await counted_features(db, exp),
    )
    assert live[0]
    assert live[2]
    async for day in db.violation_counts.find({"grain": 86400}):
        for start, counts in spans_of(day, quarter):
            old = {**day, **counts, "grain": 21600, "start": start}
            del old["q"]
            old["_id"] = f"{day['experiment_id']}|{day['model']}|21600|{start.isoformat()}"
            await db.violation_counts.insert_one(old)
        await db.violation_counts.delete_one({"_id": day["_id"]})
    async for day in db.feature_counts.find({}):
        blocks: dict[datetime, dict[str, Any]] = {}
        for field, spans in day["f"].items():
            for q, entry in spans.items():
                blocks.setdefault(cover.quarter_start(day["start"], q), {})[field] = entry
        for start, entries in blocks.items():
            key = f"{day['experiment_id']}|{start.isoformat()}|{day['block']}|{day['model']}"
            fields = ("experiment_id", "model", "block", "v")
            old = {"_id": key, **{f: day[f] for f in fields}, "start": start, "f": entries}
            await db.feature_counts.insert_one(old)
        await db.feature_counts.delete_one({"_id": day["_id"]})
    assert await check_counts.outdated(db)
    assert not await run_counts.outdated(db)
    await run_counts.prepare(db)
    assert not await check_counts.outdated(db)
    assert await db.violation_counts.count_documents({"grain": 21600}) == 0
    assert await db.feature_counts.count_documents({"grain": {"$ne": 86400}}) == 0
    assert (
        await counted_violations(db, exp, quarter),
        await counted_violations(db, exp, timedelta(hours=1)),
        await counted_features(db, exp),
    ) == live
    await assert_counts_match(db, exp)

    # Feature blocks alone from before (a crash between the two rebuilds) are found too.
    async for day in db.feature_counts.find({}):
        await db.feature_counts.update_one({"_id": day["_id"]}, {"$unset": {"grain": ""}})
    assert await check_counts.outdated(db)
    await run_counts.prepare(db)
    assert await counted_features(db, exp) == live[2]


async def test_the_day_documents_are_read_on_an_index(chart_api: Api, chart_db: Database) -> None:
    # Each query of a window's 6-hour (and the timeline's 10-minute) spans plans an index
    # scan, of every model or one (a filter field outside the index made SecantusDB scan
    # the whole collection).
    api, db = chart_api, chart_db
    exp = (await api.experiment("alice"))["id"]
    await seed(api, db, exp, 4)
    start, end = datetime(2026, 2, 28, 6, tzinfo=UTC), datetime(2026, 3, 30, tzinfo=UTC)
    for model in (None, "m1"):
        for collection, flt in (
            ("run_counts", run_counts.held_filter(exp, model, cover.QUARTER, start, end)),
            ("run_counts", run_counts.held_filter(exp, model, cover.TEN_MINUTES, start, end)),
            ("violation_counts", check_counts.quarters_filter(exp, model, start, end)),
            ("feature_counts", feature_counts.spans_filter(exp, "a", model, start, end)),
        ):
            assert await db[collection].count_documents(flt) > 0
            explained = await db.command("explain", {"find": collection, "filter": flt})
            plan = str(explained["queryPlanner"]["winningPlan"])
            assert "IXSCAN" in plan, (collection, plan)
            assert "COLLSCAN" not in plan, (collection, plan)
