"""Estimated accuracy before labels (CBPE): on calibrated synthetic data the estimate's band
holds the realised accuracy in at least 90 % of windows; the isotonic calibration is fitted
where it helps and left out where it does not; on a concept shift the realised accuracy
departs from the estimate."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pyarrow as pa
import pytest
from drift_backend.baselines.ingest import ARROW_STREAM, arrow_stream
from drift_backend.performance import cbpe
from sklearn.isotonic import IsotonicRegression

from tests.conftest import Api

PREFIX = "/api/v1"


def test_isotonic_equals_sklearn() -> None:
    rng = np.random.default_rng(1)
    x = np.round(rng.random(300), 2)  # ties
    y = (rng.random(300) < x**2).astype(float)
    xs, ys = cbpe.isotonic(x, y)
    grid = np.linspace(0, 1, 101)
    expected = IsotonicRegression(out_of_bounds="clip").fit(x, y).predict(grid)
    assert np.interp(grid, xs, ys) == pytest.approx(expected, abs=1e-12)


def test_calibration_is_used_only_where_it_helps() -> None:
    rng = np.random.default_rng(2)
    p = rng.random(4000)
    calibrated_y = (rng.random(4000) < p).astype(float)
    assert cbpe.fit(calibrated_y, p)["used"] is False
    skewed_y = (rng.random(4000) < p**3).astype(float)  # the scores are overconfident
    fitted = cbpe.fit(skewed_y, p)
    assert fitted["used"] is True
    after = cbpe.calibration_error(skewed_y, cbpe.calibrate(fitted, p))
    assert after < cbpe.calibration_error(skewed_y, p)


async def test_estimates_hold_the_realised_accuracy(api: Api) -> None:
    await api.register("alice")
    exp = (await api.experiment("alice"))["id"]
    base = f"{PREFIX}/experiment/{exp}"
    rng = np.random.default_rng(5)

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

    def scored(n: int) -> tuple[np.ndarray, np.ndarray]:
        raw = rng.random(n)
        return raw, (rng.random(n) < raw**2).astype(int)  # raw scores overconfident

    raw, y = scored(4000)
    await post(
        "/performance-reference",
        pa.table(
            {"y_true": y, "y_pred": (raw > 0.5).astype(int), "proba_0": 1 - raw, "proba_1": raw}
        ),
    )
    start = datetime(2026, 6, 1, tzinfo=UTC)
    hours, per_hour = 20, 300
    ids: list[str] = []
    truth: list[int] = []
    for h in range(hours):
        raw, y = scored(per_hour)
        if h >= hours - 2:
            y = 1 - y  # a concept shift: the last two hours' labels flip
        names = [f"{h}-{i}" for i in range(per_hour)]
        when = pa.array([start + timedelta(hours=h)] * per_hour, pa.timestamp("ms", tz="UTC"))
        await post(
            "/predictions",
            pa.table(
                {
                    "id": names,
                    "y_pred": (raw > 0.5).astype(int),
                    "proba_0": 1 - raw,
                    "proba_1": raw,
                    "time": when,
                }
            ),
        )
        ids += names
        truth += y.tolist()
    await post("/ground-truth", pa.table({"id": ids, "y_true": truth}))
    r = await api.request(
        "GET",
        base + "/performance",
        "alice",
        params={
            "model": "m",
            "window": "hour",
            "from": start.isoformat(),
            "to": (start + timedelta(hours=hours)).isoformat(),
        },
    )
    assert r.status_code == 200, r.text
    windows = r.json()["windows"]
    assert len(windows) == hours
    inside = []
    for w in windows:
        estimate = w["estimated"]["accuracy"]
        assert w["estimated"]["calibrated"] is True
        realised = w["metrics"]["accuracy"]["value"]
        inside.append(estimate["low"] <= realised <= estimate["high"])
    assert sum(inside[:-2]) >= 0.9 * (hours - 2)
    # After the shift the realised accuracy leaves the band, and the decision says so.
    assert inside[-2:] == [False, False]
    assert [w["decision"]["degraded"] for w in windows[-2:]] == [True, True]
