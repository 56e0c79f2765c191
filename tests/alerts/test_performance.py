"""The condition "performance below threshold" (``performance_degraded``) with
the embedded worker: a window that becomes degraded fires, its recovery resolves, and the
other conditions ignore the server's performance runs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pyarrow as pa
from drift_backend.notify import service as notify
from drift_backend.store.database import Database

from tests.alerts.conftest import evaluated, sent
from tests.conftest import Api
from tests.support.uploads import post_table

PROMPT = {"group_wait": 0, "group_interval": 0, "repeat_interval": 3600}
DAY = datetime(2026, 6, 1, tzinfo=UTC)


async def _post(api: Api, base: str, route: str, table: pa.Table) -> None:
    await post_table(api, base + route, table, "m")


async def _rule(api: Api, exp: str, condition: dict[str, Any]) -> Any:
    return await api.request(
        "POST",
        f"/api/v1/experiment/{exp}/alert-rules",
        "alice",
        json={"name": condition["type"], "condition": condition, **PROMPT},
    )


async def _runs(api: Api, base: str) -> list[dict[str, Any]]:
    r = await api.request("POST", base + "/drift/search", "alice", json={})
    assert r.status_code == 200, r.text
    return sorted(r.json(), key=lambda run: run["created_at"])


async def test_a_degraded_window_fires_and_its_recovery_resolves(
    alerts_api: Api, alerts_db: Database
) -> None:
    api, db = alerts_api, alerts_db
    exp = (await api.experiment("alice"))["id"]
    base = f"/api/v1/experiment/{exp}"
    r = await _rule(api, exp, {"type": "performance_degraded", "metric": "f1"})
    assert r.status_code == 422, r.text
    assert "metric" in str(r.json()["errors"][0]["field"])
    r = await _rule(api, exp, {"type": "performance_degraded"})
    assert r.status_code == 201, r.text
    rule = r.json()
    assert rule["condition"] == {"type": "performance_degraded", "metric": None}
    # These say nothing of the server's performance runs.
    for other in ({"type": "dataset_drift"}, {"type": "run_failed"}):
        assert (await _rule(api, exp, other)).status_code == 201

    rng = np.random.default_rng(4)
    y = rng.integers(0, 2, 1000)
    pred = np.where(rng.random(1000) > 0.9, 1 - y, y)
    await _post(api, base, "/performance-reference", pa.table({"y_true": y, "y_pred": pred}))
    y = rng.integers(0, 2, 400)
    pred = np.where(rng.random(400) > 0.6, 1 - y, y)  # a concept shift: 60 % right
    ids = [f"p{i}" for i in range(400)]
    when = pa.array([DAY + timedelta(hours=5)] * 400, pa.timestamp("ms", tz="UTC"))
    await _post(api, base, "/predictions", pa.table({"id": ids, "y_pred": pred, "time": when}))
    await _post(api, base, "/ground-truth", pa.table({"id": ids, "y_true": y}))

    [degraded] = await _runs(api, base)
    [firing] = await sent(db, exp, 1)
    assert firing["status"] == "firing"
    assert firing["rule_id"] == rule["id"]
    assert firing["model"] == "m"
    assert firing["run_id"] == degraded["id"]
    assert "accuracy degraded in the day from 2026-06-01" in firing["summary"]
    values = firing["values"]
    assert values["value"] < values["threshold"] < values["reference"]
    assert values["p_value"] < 0.001

    # The labels corrected (every prediction right): the window recovers, the alert resolves.
    await _post(api, base, "/ground-truth", pa.table({"id": ids, "y_true": pred}))
    first, recovered = await _runs(api, base)
    assert first["id"] == degraded["id"]
    assert recovered["concept_drift"]["drift"] is False
    docs = await sent(db, exp, 2)
    assert [d["status"] for d in docs] == ["firing", "resolved"]
    assert docs[1]["run_id"] == recovered["id"]
    await evaluated(db, recovered["id"])
    # Neither dataset_drift (drift_detected was true on the first run) nor run_failed spoke.
    assert len(await notify.notifications(db, exp)) == 2
    r = await api.request("GET", f"{base}/alerts", "alice")
    assert [a["condition"] for a in r.json()] == ["performance_degraded"]
