"""Chart tests: a backend whose runs may be backdated to fixed dates (so buckets are known),
a raw handle on its database, and seeding through the real writers."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from typing import Any

import pytest
from drift_backend.charts import repository as charts
from drift_backend.store.database import Database, connect

from tests.conftest import Api

PREFIX = "/api/v1"


@pytest.fixture
async def chart_api(api_factory: Any) -> Api:
    built: Api = await api_factory(max_backdate_days=100_000)
    await built.register("alice")
    await built.register("bob")
    return built


@pytest.fixture
async def chart_db(chart_api: Api) -> AsyncIterator[Database]:
    client = connect(chart_api.settings.mongodb_url.get_secret_value())
    yield client[chart_api.settings.mongodb_database]
    await client.close()


def at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


async def add_run(
    api: Api,
    experiment_id: str,
    when: str,
    status: str = "Completed",
    *,
    drift: bool = False,
    model: str = "m1",
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": model,
        "job_status": status,
        "drift_detected": drift,
        "created_at": when,
    }
    if status == "Failed":
        body["error"] = {"type": "Boom", "message": "failed"}
    r = await api.request("POST", f"{PREFIX}/experiment/{experiment_id}/drift", "alice", json=body)
    assert r.status_code == 201, r.text
    return dict(r.json())


def feature(
    name: str,
    *,
    p: float | None = None,
    distance: float | None = None,
    threshold: float = 0.05,
    drifted: bool = False,
    test: str = "ks",
) -> dict[str, Any]:
    """One feature of a report (``checks.engine.FeatureReport`` as stored)."""
    return {
        "feature": name,
        "kind": "numerical",
        "test": test,
        "statistic": 0.1,
        "p_value": p,
        "p_value_adjusted": None if p is None else min(1.0, p * 2),
        "distance": distance,
        "threshold": threshold,
        "drifted": drifted,
        "n_reference": 100,
        "n_current": 100,
        "missing_share": 0.0,
        "exact": True,
    }


def report(features: list[dict[str, Any]], violations: Sequence[str] = ()) -> dict[str, Any]:
    drifted = [f["feature"] for f in features if f["drifted"]]
    return {
        "mode": "raw",
        "dataset_drift": bool(drifted),
        "drift_share": len(drifted) / max(1, len(features)),
        "drifted_features": drifted,
        "n_tested": len(features),
        "correction": "bh",
        "alpha": 0.05,
        "features": features,
        "violations": [
            {"feature_name": "x", "constraint_check_type": kind, "description": "d"}
            for kind in violations
        ],
    }


async def add_check(
    api: Api,
    db: Database,
    experiment_id: str,
    when: str,
    features: list[dict[str, Any]],
    violations: Sequence[str] = (),
    model: str = "m1",
) -> dict[str, Any]:
    """A finished check run: the run through the API, its chart data through the writer
    the check job calls."""
    run = await add_run(api, experiment_id, when, model=model)
    doc = await db.drifts.find_one({"_id": run["id"]})
    assert doc is not None
    await charts.record_check(db, doc, report(features, violations))
    return doc
