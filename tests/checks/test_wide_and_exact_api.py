"""Wide and exact baselines through the API: a 10,000 x 1,000 reference stores and checks,
small references give scipy's exact results, and deleting a baseline removes its profile."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from drift_backend.baselines.ingest import arrow_stream
from drift_backend.store.database import connect
from scipy import stats as sps

from tests.checks.test_check_api import ARROW, arrow_bytes
from tests.checks.test_exact import SCIPY
from tests.conftest import Api


def _wide(seed: int, rows: int, columns: int) -> bytes:
    rng = np.random.default_rng(seed)
    data = rng.normal(0.0, 1.0, (columns, rows))
    return arrow_stream(pa.table({f"f{i:04d}": data[i] for i in range(columns)}))


async def _baseline(api: Api, exp: dict[str, Any], body: bytes) -> dict[str, Any]:
    r = await api.request(
        "POST",
        f"/api/v1/experiment/{exp['id']}/baseline",
        "alice",
        content=body,
        headers={"content-type": ARROW},
    )
    assert r.status_code == 201, r.text
    return dict(r.json())


async def _check(
    api: Api, exp: dict[str, Any], baseline: str, body: bytes, config: dict[str, Any] | None = None
) -> dict[str, Any]:
    params: dict[str, Any] = {"model": "m1", "baseline": baseline, "wait": 120}
    if config is not None:
        params["config"] = json.dumps(config)
    r = await api.request(
        "POST",
        f"/api/v1/experiment/{exp['id']}/check",
        "alice",
        params=params,
        content=body,
        headers={"content-type": ARROW},
    )
    assert r.status_code == 200, r.text
    run = r.json()
    assert run["job_status"] == "Completed", run
    report = await api.request(
        "GET", f"/api/v1/experiment/{exp['id']}/drift/{run['id']}/report", "alice"
    )
    assert report.status_code == 200, report.text
    return dict(report.json())


async def test_a_ten_thousand_by_thousand_baseline_stores_and_checks(worker_api: Api) -> None:
    # One profile document of this baseline was 26.7 MB, over MongoDB's 16 MB limit.
    api = worker_api
    exp = await api.experiment("alice")
    baseline = await _baseline(api, exp, _wide(1, 10_000, 1000))
    assert (baseline["row_count"], baseline["feature_count"]) == (10_000, 1000)
    assert len(baseline["features"]) == 1000
    assert all(f["exact_values"] for f in baseline["features"])
    assert baseline["stored_bytes"] > 16 * 1024 * 1024
    report = await _check(api, exp, baseline["id"], _wide(2, 200, 1000))
    assert len(report["features"]) == 1000
    assert report["n_tested"] == 1000
    assert all(f["exact"] for f in report["features"])
    url = f"/api/v1/experiment/{exp['id']}/baseline/{baseline['id']}/bins"
    bins = await api.request("GET", url, "alice")
    assert bins.status_code == 200
    assert len(bins.json()["features"]) == 1000


async def test_small_references_give_scipys_exact_results(worker_api: Api) -> None:
    api = worker_api
    exp = await api.experiment("alice")
    rng = np.random.default_rng(17)
    ref, cur = rng.normal(0.0, 1.0, 60), rng.normal(0.3, 1.1, 45)
    baseline = await _baseline(api, exp, arrow_bytes({"x": ref}))
    for name in sorted(SCIPY):  # raw mode (the tests on every value) and reduced mode alike
        config = {"numerical_test": name, "correction": "none"}
        report = await _check(api, exp, baseline["id"], arrow_bytes({"x": cur}), config)
        (feature,) = report["features"]
        assert (feature["test"], feature["exact"]) == (name, True)
        outcome = feature["p_value"] if feature["p_value"] is not None else feature["distance"]
        assert outcome == pytest.approx(SCIPY[name](ref, cur), rel=1e-9, abs=1e-12), name


async def test_above_the_exact_limit_the_result_says_it_is_approximate(worker_api: Api) -> None:
    api = worker_api
    exp = await api.experiment("alice")
    rng = np.random.default_rng(19)
    ref, cur = rng.normal(0.0, 1.0, 10_001), rng.normal(0.0, 1.0, 500)
    baseline = await _baseline(api, exp, arrow_bytes({"x": ref}))
    assert baseline["features"][0]["exact_values"] is False
    report = await _check(
        api, exp, baseline["id"], arrow_bytes({"x": cur}), {"numerical_test": "ks"}
    )
    (feature,) = report["features"]
    assert (feature["test"], feature["exact"]) == ("ks", False)
    # The grid's p-value stays within the documented bound of scipy's (docs/statistics.md).
    assert feature["statistic"] == pytest.approx(sps.ks_2samp(ref, cur).statistic, abs=2e-3)


async def test_the_exact_limit_is_a_setting(api_factory: Any) -> None:
    api: Api = await api_factory(exact_reference_rows=100)
    await api.register("alice")
    exp = await api.experiment("alice")
    kept = await _baseline(api, exp, arrow_bytes({"x": np.arange(100.0)}))
    over = await _baseline(api, exp, arrow_bytes({"x": np.arange(101.0)}))
    assert kept["features"][0]["exact_values"] is True
    assert over["features"][0]["exact_values"] is False


async def test_deleting_a_baseline_removes_its_stored_profile(worker_api: Api) -> None:
    api = worker_api
    exp = await api.experiment("alice")
    baseline = await _baseline(api, exp, arrow_bytes({"x": np.arange(500.0), "y": np.ones(500)}))
    client = connect(api.settings.mongodb_url.get_secret_value())
    db = client[api.settings.mongodb_database]
    try:
        doc = await db.baselines.find_one({"_id": baseline["id"]})
        assert doc is not None
        files = [doc["profile_file"], doc["values_file"]]
        assert await db["baseline_profiles.chunks"].count_documents({"files_id": {"$in": files}})
        url = f"/api/v1/experiment/{exp['id']}/baseline/{baseline['id']}"
        assert (await api.request("DELETE", url, "alice")).status_code == 204
        assert await db.baselines.count_documents({"_id": baseline["id"]}) == 0
        assert await db["baseline_profiles.files"].count_documents({"_id": {"$in": files}}) == 0
        assert (
            await db["baseline_profiles.chunks"].count_documents({"files_id": {"$in": files}}) == 0
        )
        assert (await api.request("GET", url, "alice")).status_code == 404
    finally:
        await client.close()


async def test_every_baseline_route_describes_its_response(api: Api) -> None:
    spec = (await api.request("GET", "/api/v1/openapi.json")).json()
    base = "/api/v1/experiment/{experiment_id}/baseline"
    expected = {
        (base, "post", "201"): "Baseline",
        (base, "get", "200"): "BaselineItem",
        (base + "/{baseline_id}", "get", "200"): "Baseline",
        (base + "/{baseline_id}/bins", "get", "200"): "Bins",
        (base + "/{baseline_id}/statistics.json", "get", "200"): "Statistics",
        (base + "/{baseline_id}/constraints.json", "get", "200"): "Constraints",
    }
    for (path, method, status), model in expected.items():
        schema = spec["paths"][path][method]["responses"][status]["content"]["application/json"]
        assert model in json.dumps(schema["schema"]), (path, method)
        assert model in spec["components"]["schemas"]
    feature = spec["components"]["schemas"]["FeatureSummary"]["properties"]
    assert "exact_values" in feature
