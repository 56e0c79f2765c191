"""Late labels through the API: predictions on day 1, labels on day 3 in two parts, out of
order and repeated (some changed). At every step each window equals a batch computation on
the joined data, and the coverage is right."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from sklearn import metrics as skm

from tests.conftest import Api
from tests.support.uploads import post_table

PREFIX = "/api/v1"
DAY1 = datetime(2026, 1, 1, tzinfo=UTC)
DAY3 = DAY1 + timedelta(days=2)
CLASSES = ["a", "b", "c"]


async def performance(api: Api, exp: str, model: str, window: str) -> Any:
    r = await api.request(
        "GET",
        f"{PREFIX}/experiment/{exp}/performance",
        "alice",
        params={
            "model": model,
            "window": window,
            "from": DAY1.isoformat(),
            "to": (DAY1 + timedelta(days=4)).isoformat(),
        },
    )
    assert r.status_code == 200, r.text
    return r.json()


@pytest.fixture
async def alice_api(api: Api) -> Api:
    await api.register("alice")
    return api


def _proba(rng: np.random.Generator, y: np.ndarray) -> np.ndarray:
    logits = rng.normal(size=(len(y), 3))
    logits[np.arange(len(y)), y] += 1.0
    p = np.exp(logits)
    p /= p.sum(axis=1, keepdims=True)
    # On the AUC grid: the windows' ROC AUC is then exactly scikit-learn's.
    p[:, :2] = np.round(p[:, :2] * 1000) / 1000
    p[:, 2] = np.round((1.0 - p[:, 0] - p[:, 1]) * 1000) / 1000
    return p


async def test_classification_windows_follow_late_labels(alice_api: Api) -> None:
    api = alice_api
    exp = (await api.experiment("alice"))["id"]
    rng = np.random.default_rng(7)
    n = 600
    truth = rng.integers(0, 3, n)
    proba = _proba(rng, truth)
    pred = proba.argmax(axis=1)
    times = [DAY1 + timedelta(minutes=int(m)) for m in rng.integers(0, 24 * 60, n)]
    ids = [f"p{i}" for i in range(n)]
    table = pa.table(
        {
            "id": ids,
            "y_pred": [CLASSES[k] for k in pred],
            **{f"proba_{c}": proba[:, k] for k, c in enumerate(CLASSES)},
            "time": pa.array(times, pa.timestamp("ms", tz="UTC")),
        }
    )
    base = f"{PREFIX}/experiment/{exp}"
    answer = await post_table(api, base + "/predictions", table, model="m")
    assert answer == {
        "received": n,
        "recorded": n,
        "duplicates": 0,
        "task": "classification",
        "classes": CLASSES,
    }
    # A repeated batch keeps the first predictions.
    again = await post_table(api, base + "/predictions", table.slice(0, 10), model="m")
    assert again["recorded"] == 0
    assert again["duplicates"] == 10

    day = (await performance(api, exp, "m", "day"))["windows"]
    assert len(day) == 1
    assert day[0]["n_predicted"] == n
    assert day[0]["n_labelled"] == 0
    assert day[0]["coverage"] == 0.0
    assert day[0]["complete"] is False
    assert day[0]["metrics"]["accuracy"] == {
        "value": None,
        "reason": "no labelled predictions",
        "bound": None,
    }

    order = rng.permutation(n)  # out of order
    first, second = order[: n // 2], order[n // 2 :]
    labels = np.array([CLASSES[k] for k in truth], dtype=object)
    labelled = np.zeros(n, dtype=bool)
    current = labels.copy()

    async def send(rows: np.ndarray, values: np.ndarray, hours: float) -> Any:
        body = pa.table(
            {
                "id": [ids[i] for i in rows],
                "y_true": list(values),
                "time": pa.array(
                    [DAY3 + timedelta(hours=hours)] * len(rows), pa.timestamp("ms", tz="UTC")
                ),
            }
        )
        return await post_table(api, base + "/ground-truth", body, model="m")

    async def check() -> None:
        day = (await performance(api, exp, "m", "day"))["windows"][0]
        mask = labelled
        assert day["n_labelled"] == int(mask.sum())
        assert day["coverage"] == pytest.approx(mask.sum() / n)
        assert day["complete"] is bool(mask.sum() / n >= 0.8)
        y, yp, p = current[mask], np.array(CLASSES, dtype=object)[pred[mask]], proba[mask]
        m = day["metrics"]
        assert m["accuracy"]["value"] == pytest.approx(skm.accuracy_score(y, yp))
        assert m["f1_macro"]["value"] == pytest.approx(skm.f1_score(y, yp, average="macro"))
        assert m["precision_weighted"]["value"] == pytest.approx(
            skm.precision_score(y, yp, average="weighted", zero_division=0)
        )
        assert m["log_loss"]["value"] == pytest.approx(skm.log_loss(y, p, labels=CLASSES))
        assert m["brier"]["value"] == pytest.approx(skm.brier_score_loss(y, p, labels=CLASSES))
        assert m["roc_auc"]["value"] == pytest.approx(
            skm.roc_auc_score(y, p, multi_class="ovr", labels=CLASSES), abs=1e-12
        )
        matrix = day["confusion_matrix"]
        assert matrix["matrix"] == skm.confusion_matrix(y, yp, labels=matrix["labels"]).tolist()
        # The hours add up to the day.
        hours = (await performance(api, exp, "m", "hour"))["windows"]
        assert sum(h["n_labelled"] for h in hours) == day["n_labelled"]
        assert sum(h["n_predicted"] for h in hours) == n

    # Part 1 (the later half of the order first), then its repeat with some labels changed.
    a1 = await send(second, labels[second], 1)
    assert a1["labelled"] == len(second)
    assert a1["unknown"] == 0
    labelled[second] = True
    await check()
    changed = second[:25]
    flipped = np.array([CLASSES[(CLASSES.index(v) + 1) % 3] for v in labels[changed]], dtype=object)
    a2 = await send(second[:50], np.concatenate([flipped, labels[second[25:50]]]), 2)
    assert (a2["labelled"], a2["changed"], a2["unchanged"]) == (0, 25, 25)
    current[changed] = flipped
    await check()
    # Part 2, with two ids never predicted (counted, not an error).
    body = pa.table(
        {"id": [ids[i] for i in first] + ["nope-1", "nope-2"], "y_true": [*labels[first], "a", "b"]}
    )
    a3 = await post_table(api, base + "/ground-truth", body, model="m")
    assert a3["labelled"] == len(first)
    assert a3["unknown"] == 2
    assert a3["unknown_ids"] == ["nope-1", "nope-2"]
    labelled[first] = True
    await check()
    # The changed labels corrected back: the windows follow.
    await send(changed, labels[changed], 3)
    current[changed] = labels[changed]
    await check()
    day = (await performance(api, exp, "m", "day"))["windows"][0]
    assert day["complete"] is True
    assert day["coverage"] == 1.0
    assert day["label_lag"]["max_seconds"] >= 2 * 86400 - 24 * 3600

    # Each batch that changed windows told the event stream which hours.
    r = await api.request(
        "GET", f"{PREFIX}/events", "alice", params={"experiment": exp, "follow": "false"}
    )
    assert r.status_code == 200, r.text
    updates = [
        json.loads(line.removeprefix("data:"))
        for line in r.text.splitlines()
        if line.startswith("data:") and "performance.window_updated" in line
    ]
    causes = [u["payload"]["cause"] for u in updates]
    # predictions (the repeated batch changed nothing), then four label batches
    assert causes == ["predictions", "labels", "labels", "labels", "labels"]
    assert updates[0]["payload"]["n_hours"] == 24
    assert updates[0]["payload"]["hours"][0] == "2026-01-01T00:00:00+00:00"


async def test_regression_windows(alice_api: Api) -> None:
    api = alice_api
    exp = (await api.experiment("alice"))["id"]
    rng = np.random.default_rng(8)
    y = rng.normal(50.0, 10.0, 200)
    pred = y + rng.normal(0.0, 3.0, 200)
    ids = list(range(200))  # integer ids are read as strings
    times = [DAY1 + timedelta(hours=int(h)) for h in rng.integers(0, 48, 200)]
    base = f"{PREFIX}/experiment/{exp}"
    answer = await post_table(
        api,
        base + "/predictions",
        pa.table({"id": ids, "y_pred": pred, "time": pa.array(times, pa.timestamp("ms"))}),
        model="r",
    )
    assert answer["task"] == "regression"
    await post_table(
        api, base + "/ground-truth", pa.table({"id": ids[::-1], "y_true": y[::-1]}), model="r"
    )
    windows = (await performance(api, exp, "r", "week"))["windows"]
    assert len(windows) == 1
    assert windows[0]["start"] == "2025-12-29T00:00:00+00:00"  # the Monday
    m = windows[0]["metrics"]
    assert m["mae"]["value"] == pytest.approx(skm.mean_absolute_error(y, pred))
    assert m["rmse"]["value"] == pytest.approx(skm.root_mean_squared_error(y, pred))
    assert m["r2"]["value"] == pytest.approx(skm.r2_score(y, pred))
    assert m["mape"]["value"] == pytest.approx(skm.mean_absolute_percentage_error(y, pred))
    assert windows[0]["confusion_matrix"] is None
    days = (await performance(api, exp, "r", "day"))["windows"]
    assert [d["n_predicted"] for d in days] == [
        sum(t.date() == DAY1.date() for t in times),
        sum(t.date() != DAY1.date() for t in times),
    ]
