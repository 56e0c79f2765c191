"""The per-model totals ``/metrics`` reads (``run_totals``): a model's newest check and newest
run follow checks stored late, retried and deleted; its runs by status equal counting them.
(Counts after every kind of state change: ``test_run_counts.py`` ``assert_totals_match``.)"""

from __future__ import annotations

from typing import Any

from drift_backend.charts import repository as charts
from drift_backend.charts import service as chart_service
from drift_backend.store.database import Database

from tests.charts.conftest import PREFIX, add_check, add_run, at, feature, report
from tests.charts.test_run_counts import assert_totals_match
from tests.conftest import Api


async def totals(db: Database, exp: str) -> dict[str, dict[str, Any]]:
    return {row["model"]: row for row in await chart_service.model_totals(db, exp)}


async def test_the_newest_check_follows_late_retried_and_deleted_checks(
    chart_api: Api, chart_db: Database
) -> None:
    api, db = chart_api, chart_db
    exp = (await api.experiment("alice"))["id"]
    clean = [feature("a", p=0.5)]
    older = await add_check(api, db, exp, "2026-01-01T00:00:00Z", clean)
    drifting = [feature("a", p=0.01, drifted=True)]
    newer = await add_check(api, db, exp, "2026-01-02T00:00:00Z", drifting)
    # A retried write of the older check, and a check stored late for an older run: the
    # newest stays the newest.
    await charts.record_check(db, older, report(clean))
    late = await add_check(api, db, exp, "2025-12-31T00:00:00Z", clean)
    other = await add_check(api, db, exp, "2026-01-01T12:00:00Z", clean, model="m2")
    found = await totals(db, exp)
    assert found["m1"]["check"]["run_id"] == newer["_id"]
    assert found["m1"]["check"]["dataset_drift"] is True
    assert found["m1"]["check"]["drift_share"] == 1.0
    assert found["m1"]["last_run_at"] == at("2026-01-02T00:00:00Z")
    assert found["m1"]["drift_detected"] is False  # the client's runs above: no drift
    assert found["m2"]["check"]["run_id"] == other["_id"]

    # A newer client run (no check) is the newest run, not the newest check.
    await add_run(api, exp, "2026-01-03T00:00:00Z", "Running")
    found = await totals(db, exp)
    assert found["m1"]["last_run_at"] == at("2026-01-03T00:00:00Z")
    assert found["m1"]["check"]["run_id"] == newer["_id"]

    # Deleting the newest check's run: the one before is the newest check again.
    r = await api.request("DELETE", f"{PREFIX}/experiment/{exp}/drift/{newer['_id']}", "alice")
    assert r.status_code == 204, r.text
    assert (await totals(db, exp))["m1"]["check"]["run_id"] == older["_id"]
    await assert_totals_match(db, exp)
    for run in (older, late, other):
        url = f"{PREFIX}/experiment/{exp}/drift/{run['_id']}"
        assert (await api.request("DELETE", url, "alice")).status_code == 204
    found = await totals(db, exp)
    assert found["m1"]["check"] is None
    assert found["m1"]["drift_detected"] is None  # only the Running run is left
    assert "m2" not in found  # no runs left
    await assert_totals_match(db, exp)


async def test_runs_by_status_equal_counting_the_runs(chart_api: Api, chart_db: Database) -> None:
    api, db = chart_api, chart_db
    exp = (await api.experiment("alice"))["id"]
    for i, status in enumerate(("Completed", "Failed", "Running", "Completed", "Running")):
        await add_run(api, exp, f"2026-02-01T0{i}:00:00Z", status, model=f"m{i % 2}")
    expected = {
        status: await db.drifts.count_documents({"job_status": status})
        for status in ("Running", "Completed", "Failed")
    }
    assert (
        await chart_service.runs_by_status(db)
        == expected
        == {
            "Running": 2,
            "Completed": 2,
            "Failed": 1,
        }
    )
