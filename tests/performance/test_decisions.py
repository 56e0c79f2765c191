"""The "degraded" decision: a one-sided two-proportion test against the reference, with a
tolerance; on a concept shift the realised accuracy departs and the answer says so."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import numpy as np
import pyarrow as pa
import pytest
from drift_backend.baselines.ingest import ARROW_STREAM, arrow_stream
from drift_backend.performance.decisions import below_reference
from scipy.stats import norm

from tests.conftest import Api

PREFIX = "/api/v1"


def test_the_test_statistic() -> None:
    decision = below_reference(80, 100, 900, 1000, tolerance=0.02, alpha=0.05)
    se = math.sqrt(0.8 * 0.2 / 100 + 0.9 * 0.1 / 1000)
    assert decision.p_value == pytest.approx(norm.sf((0.9 - 0.02 - 0.8) / se))
    assert decision.degraded is True


def test_a_small_or_tolerated_gap_is_not_degraded() -> None:
    assert below_reference(8, 10, 900, 1000, 0.02, 0.05).degraded is False  # too few rows
    assert below_reference(890, 1000, 900, 1000, 0.02, 0.05).degraded is False  # within
    assert below_reference(895, 1000, 900, 1000, 0.0, 0.05).degraded is False
    assert below_reference(0, 0, 900, 1000, 0.02, 0.05).degraded is None
    certain = below_reference(0, 50, 100, 100, 0.02, 0.05)
    assert certain.degraded is True
    assert certain.p_value == 0.0


async def test_a_concept_shift_is_reported_as_degraded(api: Api) -> None:
    await api.register("alice")
    exp = (await api.experiment("alice"))["id"]
    base = f"{PREFIX}/experiment/{exp}"
    rng = np.random.default_rng(21)

    def rows(n: int, accuracy: float) -> tuple[list[int], list[int]]:
        y = rng.integers(0, 2, n)
        wrong = rng.random(n) > accuracy
        return y.tolist(), np.where(wrong, 1 - y, y).tolist()

    async def post(route: str, table: pa.Table) -> None:
        r = await api.request(
            "POST",
            base + route,
            "alice",
            params={"model": "m"},
            content=arrow_stream(table),
            headers={"Content-Type": ARROW_STREAM},
        )
        assert r.status_code == 200, r.text

    y, pred = rows(1000, 0.9)
    await post("/performance-reference", pa.table({"y_true": y, "y_pred": pred}))
    day = datetime(2026, 5, 4, tzinfo=UTC)
    truth: dict[str, int] = {}
    # Day 0 as the reference; days 1 and 2 after a concept shift, day 2 half labelled.
    for d, (accuracy, labelled) in enumerate([(0.9, 1.0), (0.6, 1.0), (0.6, 0.5)]):
        y, pred = rows(400, accuracy)
        ids = [f"{d}-{i}" for i in range(400)]
        when = pa.array([day + timedelta(days=d, hours=1)] * 400, pa.timestamp("ms", tz="UTC"))
        await post("/predictions", pa.table({"id": ids, "y_pred": pred, "time": when}))
        truth.update(dict(list(zip(ids, y, strict=True))[: int(400 * labelled)]))
    await post("/ground-truth", pa.table({"id": list(truth), "y_true": list(truth.values())}))
    r = await api.request(
        "GET",
        base + "/performance",
        "alice",
        params={"model": "m", "from": day.isoformat(), "to": (day + timedelta(days=3)).isoformat()},
    )
    assert r.status_code == 200, r.text
    decisions = [w["decision"] for w in r.json()["windows"]]
    assert [d["degraded"] for d in decisions] == [False, True, None]
    assert decisions[1]["p_value"] < 0.001
    assert decisions[2]["reason"] == "incomplete window: coverage too low"
