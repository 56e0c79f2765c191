"""drift-watch's ``POST .../drift/search`` (page numbers, ``X-Pagination`` total) on its fast
paths: the total of the whole experiment or of one model read from the per-model totals
(``run_totals``), other filters counted; newest-first pages read by keyset windows. Both
equal counting and sorting the runs themselves, after deletes, state and model changes."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from drift_backend.api import listing
from drift_backend.charts import run_counts
from drift_backend.store.database import Database

from tests.charts.conftest import PREFIX, add_run
from tests.conftest import Api

FILTERS: list[dict[str, Any]] = [
    {},
    {"model": "m1"},
    {"model": {"$eq": "m2"}},
    {"job_status": "Running"},
    {"model": {"$in": ["m1"]}},
    {"model": "m1", "job_status": "Completed"},
]


def matches(run: dict[str, Any], flt: dict[str, Any]) -> bool:
    """``flt`` (one of :data:`FILTERS`) applied in Python."""
    for field, want in flt.items():
        if isinstance(want, dict) and "$eq" in want:
            want = want["$eq"]
        if isinstance(want, dict) and "$in" in want:
            if run[field] not in want["$in"]:
                return False
        elif run[field] != want:
            return False
    return True


async def expected(db: Database, exp: str, flt: dict[str, Any]) -> list[str]:
    """The matching runs' ids, newest first (ties by id, descending)."""
    runs = [run async for run in db.drifts.find({"experiment_id": exp})]
    runs = [run for run in runs if matches(run, flt)]
    runs.sort(key=lambda run: (run["created_at"], run["_id"]), reverse=True)
    return [run["_id"] for run in runs]


async def search(
    api: Api, exp: str, flt: dict[str, Any], **params: Any
) -> tuple[list[str], dict[str, Any]]:
    r = await api.request(
        "POST", f"{PREFIX}/experiment/{exp}/drift/search", "alice", json=flt, params=params
    )
    assert r.status_code == 200, r.text
    return [run["id"] for run in r.json()], json.loads(r.headers["x-pagination"])


async def all_pages(api: Api, exp: str, flt: dict[str, Any], **params: Any) -> list[str]:
    ids, meta = await search(api, exp, flt, page_size=4, **params)
    for page in range(2, meta.get("total_pages", 0) + 1):
        ids += (await search(api, exp, flt, page=page, page_size=4, **params))[0]
    return ids


async def assert_search_matches(api: Api, db: Database, exp: str) -> None:
    for flt in FILTERS:
        want = await expected(db, exp, flt)
        ids, meta = await search(api, exp, flt, page_size=4)
        assert meta["total"] == len(want), flt
        assert ids == want[:4], flt
        assert await all_pages(api, exp, flt) == want, flt
        # Oldest first (the database sorts): the same runs reversed.
        assert await all_pages(api, exp, flt, order_by="asc") == want[::-1], flt


@pytest.fixture
async def seeded(chart_api: Api, chart_db: Database) -> tuple[Api, Database, str, list[Any]]:
    """Runs of two models and every state: some in the last hour, some days and a year
    back (the keyset windows widen), three at one instant (ties broken by id)."""
    api, db = chart_api, chart_db
    exp = (await api.experiment("alice"))["id"]
    now = datetime.now(UTC).replace(microsecond=0)
    ages = [timedelta(minutes=m) for m in (1, 5, 30, 90, 600, 3000, 20000, 500000)]
    runs = []
    for i, age in enumerate(ages):
        status = ("Completed", "Failed", "Running")[i % 3]
        runs.append(await add_run(api, exp, (now - age).isoformat(), status, model=f"m{1 + i % 2}"))
    tie = (now - timedelta(hours=3)).isoformat()
    runs += [await add_run(api, exp, tie, model=f"m{1 + i % 2}") for i in range(3)]
    return api, db, exp, runs


async def test_totals_and_pages_equal_counting_and_sorting_the_runs(
    seeded: tuple[Api, Database, str, list[Any]],
) -> None:
    api, db, exp, runs = seeded
    await assert_search_matches(api, db, exp)

    # Deleted runs, a Running run finished, a Running run moved to the other model.
    url = f"{PREFIX}/experiment/{exp}/drift"
    for run in (runs[0], runs[9]):
        assert (await api.request("DELETE", f"{url}/{run['id']}", "alice")).status_code == 204
    running = [run for run in runs if run["job_status"] == "Running"]
    finish = {"model": running[0]["model"], "job_status": "Completed", "drift_detected": True}
    r = await api.request("PUT", f"{url}/{running[0]['id']}", "alice", json=finish)
    assert r.status_code == 200, r.text
    other = "m2" if running[1]["model"] == "m1" else "m1"
    r = await api.request(
        "PUT", f"{url}/{running[1]['id']}", "alice", json={"model": other, "job_status": "Running"}
    )
    assert r.status_code == 200, r.text
    await assert_search_matches(api, db, exp)


async def test_the_experiment_and_model_totals_are_read_not_counted(
    seeded: tuple[Api, Database, str, list[Any]],
) -> None:
    # The per-model totals changed behind the route's back: the whole experiment's and a
    # model's totals follow them; any other filter is still counted.
    api, db, exp, _ = seeded
    m1 = len(await expected(db, exp, {"model": "m1"}))
    everything = len(await expected(db, exp, {}))
    await db.run_totals.update_one({"experiment_id": exp, "model": "m1"}, {"$inc": {"failed": 50}})
    assert (await search(api, exp, {}))[1]["total"] == everything + 50
    assert (await search(api, exp, {"model": "m1"}))[1]["total"] == m1 + 50
    assert (await search(api, exp, {"model": {"$eq": "m1"}}))[1]["total"] == m1 + 50
    assert (await search(api, exp, {"model": "m9"}))[1]["total"] == 0
    failed = {"job_status": "Failed"}
    assert (await search(api, exp, failed))[1]["total"] == len(await expected(db, exp, failed))
    await run_counts.rebuild(db, exp)  # the repair puts them right
    assert (await search(api, exp, {}))[1]["total"] == everything


async def test_pages_deeper_than_the_keyset_depth_are_sorted_by_the_database(
    seeded: tuple[Api, Database, str, list[Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    api, db, exp, _ = seeded
    want = await expected(db, exp, {})
    by_windows = await all_pages(api, exp, {})
    monkeypatch.setattr(listing, "KEYSET_DEPTH", 6)  # pages 2.. past it
    assert await all_pages(api, exp, {}) == by_windows == want
