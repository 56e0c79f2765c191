"""Feature results written by the check job: one document per (run, feature), rewritten (not
added) by a retried attempt, and gone with their run or experiment."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import numpy as np
import pytest
from drift_backend.charts import repository as charts
from drift_backend.devstack.services import ManagedProcess
from drift_backend.store.database import Database, connect

from tests.conftest import Api, in_process_backend

PREFIX = "/api/v1"


@pytest.fixture(scope="module")
async def worker_api(
    mongodb: ManagedProcess, issuer: Any, oidc_provider: ManagedProcess
) -> AsyncIterator[tuple[Api, Database]]:
    async with in_process_backend(
        mongodb, issuer, oidc_provider, embedded_worker=True, job_lease_seconds=5
    ) as api:
        await api.register("alice")
        client = connect(api.settings.mongodb_url.get_secret_value())
        try:
            yield api, client[api.settings.mongodb_database]
        finally:
            await client.close()


def columns(seed: int, n: int, shift: float = 0.0) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    return {
        "x": rng.normal(shift, 1.0, n).tolist(),
        "y": rng.exponential(2.0, n).tolist(),
        "c": rng.choice(["a", "b", "c"], size=n).tolist(),
    }


async def checked_experiment(api: Api) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """An experiment with a baseline and two finished checks (the second drifted in x)."""
    exp = await api.experiment("alice")
    r = await api.request(
        "POST",
        f"{PREFIX}/experiment/{exp['id']}/baseline",
        "alice",
        params={"model": "m1"},
        json={"columns": columns(1, 2000)},
    )
    assert r.status_code == 201, r.text
    runs = []
    for seed, shift in ((2, 0.0), (3, 1.0)):
        r = await api.request(
            "POST",
            f"{PREFIX}/experiment/{exp['id']}/check",
            "alice",
            params={"model": "m1", "wait": 60},
            json={"columns": columns(seed, 1000, shift)},
        )
        assert r.status_code == 200, r.text
        assert r.json()["job_status"] == "Completed"
        runs.append(r.json())
    return exp, runs


async def test_a_finished_check_has_one_result_per_feature(
    worker_api: tuple[Api, Database],
) -> None:
    api, db = worker_api
    exp, runs = await checked_experiment(api)
    for run in runs:
        report = (
            await api.request(
                "GET", f"{PREFIX}/experiment/{exp['id']}/drift/{run['id']}/report", "alice"
            )
        ).json()
        stored = {
            doc["feature"]: doc async for doc in db.feature_results.find({"run_id": run["id"]})
        }
        assert set(stored) == {"x", "y", "c"}
        for item in report["features"]:
            doc = stored[item["feature"]]
            assert doc["experiment_id"] == exp["id"]
            assert doc["model"] == "m1"
            for key in ("test", "p_value", "p_value_adjusted", "threshold", "distance"):
                assert doc[key] == item[key], key
            assert doc["drifted"] is item["drifted"]
            assert doc["exact"] is item["exact"]
    heatmap = (
        await api.request("GET", f"{PREFIX}/experiment/{exp['id']}/charts/heatmap", "alice")
    ).json()
    assert [run["run_id"] for run in heatmap["runs"]] == [runs[1]["id"], runs[0]["id"]]
    assert heatmap["features"][0] == {"feature": "x", "drifted_runs": 1}
    assert len(heatmap["cells"]) == 6


async def test_a_retried_job_does_not_duplicate_results(
    worker_api: tuple[Api, Database],
) -> None:
    api, db = worker_api
    exp, runs = await checked_experiment(api)
    run_doc = await db.drifts.find_one({"_id": runs[1]["id"]})
    report = await db.reports.find_one({"_id": runs[1]["id"]}, {"_id": 0, "created_at": 0})
    assert run_doc is not None
    assert report is not None
    before = [doc async for doc in db.feature_results.find({"experiment_id": exp["id"]})]
    summary_before = await db.check_runs.find_one({"_id": runs[1]["id"]})
    # What a second attempt of the job does with the stored report, twice over.
    await charts.record_check(db, run_doc, report)
    await charts.record_check(db, run_doc, report)
    after = [doc async for doc in db.feature_results.find({"experiment_id": exp["id"]})]
    assert sorted(after, key=lambda d: d["_id"]) == sorted(before, key=lambda d: d["_id"])
    assert len(after) == 6
    assert await db.check_runs.count_documents({"experiment_id": exp["id"]}) == 2
    assert await db.check_runs.find_one({"_id": runs[1]["id"]}) == summary_before


async def test_deleting_a_run_or_the_experiment_removes_its_results(
    worker_api: tuple[Api, Database],
) -> None:
    api, db = worker_api
    exp, runs = await checked_experiment(api)
    other, _ = await checked_experiment(api)
    r = await api.request(
        "DELETE", f"{PREFIX}/experiment/{exp['id']}/drift/{runs[0]['id']}", "alice"
    )
    assert r.status_code == 204
    assert await db.feature_results.count_documents({"run_id": runs[0]["id"]}) == 0
    assert await db.check_runs.count_documents({"_id": runs[0]["id"]}) == 0
    assert await db.feature_results.count_documents({"run_id": runs[1]["id"]}) == 3

    r = await api.request("DELETE", f"{PREFIX}/experiment/{exp['id']}", "alice")
    assert r.status_code == 204
    assert await db.feature_results.count_documents({"experiment_id": exp["id"]}) == 0
    assert await db.check_runs.count_documents({"experiment_id": exp["id"]}) == 0
    # Another experiment's are untouched.
    assert await db.feature_results.count_documents({"experiment_id": other["id"]}) == 6
    assert await db.check_runs.count_documents({"experiment_id": other["id"]}) == 2
