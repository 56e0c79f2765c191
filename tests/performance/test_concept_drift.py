"""A window that becomes degraded (or recovers) is recorded as a drift run with
``concept_drift``, which a v1 client reads like any run; once per change."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pyarrow as pa
from drift_backend.performance import concept
from drift_backend.store.database import connect

from tests.conftest import Api
from tests.support.uploads import post_table

PREFIX = "/api/v1"
DAY = datetime(2026, 5, 4, tzinfo=UTC)


def _rows(rng: np.random.Generator, n: int, accuracy: float) -> tuple[list[int], list[int]]:
    y = rng.integers(0, 2, n)
    wrong = rng.random(n) > accuracy
    return y.tolist(), np.where(wrong, 1 - y, y).tolist()


async def test_a_degraded_window_is_a_concept_drift_run(api: Api) -> None:
    await api.register("alice")
    exp = (await api.experiment("alice"))["id"]
    base = f"{PREFIX}/experiment/{exp}"
    rng = np.random.default_rng(8)

    async def post(route: str, table: pa.Table) -> Any:
        return await post_table(api, base + route, table, "m")

    async def runs() -> list[dict[str, Any]]:
        r = await api.request("POST", base + "/drift/search", "alice", json={})
        assert r.status_code == 200, r.text
        found: list[dict[str, Any]] = r.json()
        return sorted(found, key=lambda run: run["created_at"])

    y, pred = _rows(rng, 1000, 0.9)
    await post("/performance-reference", pa.table({"y_true": y, "y_pred": pred}))
    # Day 1 fine, day 2 after a concept shift.
    truth: dict[str, int] = {}
    predicted: dict[str, int] = {}
    for d, accuracy in enumerate([0.9, 0.6]):
        y, pred = _rows(rng, 400, accuracy)
        ids = [f"{d}-{i}" for i in range(400)]
        when = pa.array([DAY + timedelta(days=d, hours=3)] * 400, pa.timestamp("ms", tz="UTC"))
        await post("/predictions", pa.table({"id": ids, "y_pred": pred, "time": when}))
        truth.update(zip(ids, y, strict=True))
        predicted.update(zip(ids, pred, strict=True))
    assert await runs() == []  # no labels: nothing decided
    # The labels in two parts: the first leaves day 2 incomplete (no decision yet).
    ids = list(truth)
    await post(
        "/ground-truth", pa.table({"id": ids[:500], "y_true": [truth[i] for i in ids[:500]]})
    )
    assert await runs() == []  # day 1 not degraded: no news; day 2 incomplete
    await post(
        "/ground-truth", pa.table({"id": ids[500:], "y_true": [truth[i] for i in ids[500:]]})
    )
    [run] = await runs()
    # What a v1 client sees: GET the run.
    r = await api.request("GET", f"{base}/drift/{run['id']}", "alice")
    assert r.status_code == 200, r.text
    got = r.json()
    assert got["job_status"] == "Completed"
    assert got["model"] == "m"
    assert got["drift_detected"] is True
    assert got["data_drift"] is None
    assert got["tags"] == ["performance"]
    drift = got["concept_drift"]
    assert drift["drift"] is True
    parameters = drift["parameters"]
    assert parameters["metric"] == "accuracy"
    assert parameters["p_value"] < 0.001
    assert parameters["value"] < parameters["threshold"] < parameters["reference"]
    start = DAY + timedelta(days=1)
    assert parameters["window"] == {
        "length": "day",
        "start": start.isoformat(),
        "end": (start + timedelta(days=1)).isoformat(),
    }
    assert "accuracy" in parameters["degraded_metrics"]
    # The same labels again change nothing: no second run.
    await post(
        "/ground-truth", pa.table({"id": ids[500:], "y_true": [truth[i] for i in ids[500:]]})
    )
    assert len(await runs()) == 1

    # The labels of day 2 corrected to the predictions' (now all right): the window recovers.
    r = await api.request(
        "GET",
        base + "/performance",
        "alice",
        params={"model": "m", "from": DAY.isoformat(), "to": (DAY + timedelta(days=2)).isoformat()},
    )
    assert [w["decision"]["degraded"] for w in r.json()["windows"]] == [False, True]
    day2 = [i for i in ids if i.startswith("1-")]
    await post("/ground-truth", pa.table({"id": day2, "y_true": [predicted[i] for i in day2]}))
    first, second = await runs()
    assert first["id"] == run["id"]
    assert second["concept_drift"]["drift"] is False
    assert second["drift_detected"] is False
    assert "accuracy" in second["concept_drift"]["parameters"]["changed_metrics"]
    client = connect(api.settings.mongodb_url.get_secret_value())
    try:
        db = client[api.settings.mongodb_database]
        # One event per change on the stream, naming its run.
        events = [
            e
            async for e in db.events.find(
                {"experiment_id": exp, "type": "performance.decision_changed"}
            ).sort("_id", 1)
        ]
        assert [(e["run_id"], e["payload"]["degraded"]) for e in events] == [
            (run["id"], True),
            (second["id"], False),
        ]
        # The newest decided window, as the alert condition reads it.
        latest = await concept.latest(db, exp, "m", None)
        assert latest is not None
        metric, doc = latest
        assert metric == "accuracy"
        assert doc["start"] == start
        assert doc["state"]["accuracy"] is False
        # A writer that died between its decision and its run: the tick writes the run.
        await db.performance_decisions.update_one(
            {"_id": doc["_id"]},
            {"$set": {"pending_run": "lost-run", "updated_at": DAY}},
        )
        assert await concept.record_pending(db, datetime.now(UTC)) == 1
        assert await concept.record_pending(db, datetime.now(UTC)) == 0
        r = await api.request("GET", f"{base}/drift/lost-run", "alice")
        assert r.status_code == 200, r.text
        assert r.json()["concept_drift"]["drift"] is False
        assert r.json()["concept_drift"]["parameters"]["window"]["start"] == start.isoformat()
    finally:
        await client.close()
