"""A batch that dies between its writes and its window increments leaves rows
stored but uncounted; the recount finds it by its marker and repairs the windows to what a
batch computation of the stored data gives."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from drift_backend.performance import recount, repository
from drift_backend.schemas import utcnow
from drift_backend.store.database import Database, connect
from sklearn import metrics as skm

from tests.conftest import Api
from tests.support.uploads import post_table

PREFIX = "/api/v1"
DAY = datetime(2026, 7, 6, tzinfo=UTC)
LABELLED_AT = DAY + timedelta(days=2)


@pytest.fixture
async def db(api: Api) -> AsyncIterator[Database]:
    client = connect(api.settings.mongodb_url.get_secret_value())
    yield client[api.settings.mongodb_database]
    await client.close()


def _data(n: int) -> dict[str, Any]:
    rng = np.random.default_rng(17)
    p1 = np.round(rng.random(n), 3)
    y_pred = (p1 > 0.5).astype(int)
    y_true = np.where(rng.random(n) < 0.8, y_pred, 1 - y_pred)
    times = [DAY + timedelta(hours=int(h)) for h in rng.integers(0, 30, n)]
    return {
        "ids": [f"id{i}" for i in range(n)],
        "p1": p1,
        "pred": y_pred,
        "true": y_true,
        "t": times,
    }


async def _post(api: Api, exp: str, model: str, route: str, table: pa.Table) -> None:
    await post_table(api, f"{PREFIX}/experiment/{exp}{route}", table, model)


def _predictions(d: dict[str, Any], rows: slice) -> pa.Table:
    return pa.table(
        {
            "id": d["ids"][rows],
            "y_pred": d["pred"][rows],
            "proba_0": 1 - d["p1"][rows],
            "proba_1": d["p1"][rows],
            "time": pa.array(d["t"][rows], pa.timestamp("ms", tz="UTC")),
        }
    )


def _labels(d: dict[str, Any], rows: slice, y: np.ndarray | None = None) -> pa.Table:
    y = d["true"][rows] if y is None else y
    return pa.table(
        {
            "id": d["ids"][rows],
            "y_true": y,
            "time": pa.array([LABELLED_AT] * len(y), pa.timestamp("ms", tz="UTC")),
        }
    )


async def _windows(api: Api, exp: str, model: str) -> list[dict[str, Any]]:
    r = await api.request(
        "GET",
        f"{PREFIX}/experiment/{exp}/performance",
        "alice",
        params={
            "model": model,
            "window": "day",
            "from": DAY.isoformat(),
            "to": (DAY + timedelta(days=2)).isoformat(),
        },
    )
    assert r.status_code == 200, r.text
    return list(r.json()["windows"])


async def _crash_labels(db: Database, exp: str, model: str, ids: list[str], y: list[Any]) -> None:
    """What record_labels does up to its window increments, and then no more."""
    await recount.mark(db, repository.model_key(exp, model))
    # Labels as the service stores them: classification ones as strings, regression floats.
    keys = {
        repository.prediction_key(exp, model, i): v if isinstance(v, float) else str(v)
        for i, v in zip(ids, y, strict=True)
    }
    found = await repository.find_predictions(db, list(keys))
    updates = []
    for prediction in found:
        old = {"t": prediction["t"], "lt": prediction["lt"]} if "t" in prediction else None
        label_time = LABELLED_AT.replace(tzinfo=None)
        updates.append(
            repository.label_update(
                prediction["_id"], old, keys[prediction["_id"]], label_time, "crash"
            )
        )
    assert await repository.set_labels(db, updates) == len(ids)


async def _crash_predictions(
    db: Database, exp: str, model: str, d: dict[str, Any], rows: range
) -> None:
    """What record_predictions does up to its window increments."""
    await recount.mark(db, repository.model_key(exp, model))
    docs = [
        {
            "_id": repository.prediction_key(exp, model, d["ids"][i]),
            "experiment_id": exp,
            "model": model,
            "time": d["t"][i],
            "y": str(d["pred"][i]),
            "expires_at": utcnow() + timedelta(days=30),
            "p": [1 - float(d["p1"][i]), float(d["p1"][i])],
        }
        for i in rows
    ]
    assert await repository.insert_predictions(db, docs) == set()


async def test_a_recount_repairs_what_a_dead_batch_left_uncounted(api: Api, db: Database) -> None:
    await api.register("alice")
    exp = (await api.experiment("alice"))["id"]
    n = 600
    d = _data(n)
    # The batch computation: a model that received everything, whole.
    await _post(api, exp, "whole", "/predictions", _predictions(d, slice(0, n)))
    await _post(api, exp, "whole", "/ground-truth", _labels(d, slice(0, 500)))

    # The same data, with batches that died: predictions 550.. never counted; labels
    # 300..499 stored but not counted; and labels 0..49 first sent wrong, then corrected by
    # a batch that died (the windows still count the wrong ones).
    await _post(api, exp, "m", "/predictions", _predictions(d, slice(0, 550)))
    await _crash_predictions(db, exp, "m", d, range(550, n))
    await _post(api, exp, "m", "/ground-truth", _labels(d, slice(0, 50), 1 - d["true"][:50]))
    await _post(api, exp, "m", "/ground-truth", _labels(d, slice(50, 300)))
    await _crash_labels(db, exp, "m", d["ids"][300:500], d["true"][300:500].tolist())
    await _crash_labels(db, exp, "m", d["ids"][:50], d["true"][:50].tolist())

    whole = await _windows(api, exp, "whole")
    broken = await _windows(api, exp, "m")
    assert sum(w["n_labelled"] for w in broken) == 300 != sum(w["n_labelled"] for w in whole)
    assert sum(w["n_predicted"] for w in broken) == 550

    done = await recount.recount_stale(db, grace_seconds=0.0)
    assert [(r.model, r.predictions, r.labelled, r.raced, r.busy) for r in done] == [
        ("m", n, 500, False, False)
    ]
    model = await repository.get_model(db, exp, "m")
    assert model is not None
    assert model["pending"] == []  # the markers are cleared
    assert await recount.recount_stale(db, grace_seconds=0.0) == []  # nothing left

    repaired = await _windows(api, exp, "m")
    assert len(repaired) == len(whole) == 2
    for mine, batch in zip(repaired, whole, strict=True):
        for key in (
            "start",
            "n_predicted",
            "n_labelled",
            "coverage",
            "complete",
            "confusion_matrix",
        ):
            assert mine[key] == batch[key], key
        assert mine["label_lag"] == pytest.approx(batch["label_lag"])
        for name, metric in batch["metrics"].items():
            assert mine["metrics"][name]["value"] == pytest.approx(metric["value"]), name
        # The estimator's score counts (the prediction side) too.
        assert mine["estimated"]["accuracy"] == pytest.approx(batch["estimated"]["accuracy"])
    # ... and the batch computation is scikit-learn's on the joined rows.
    first = [i for i in range(500) if d["t"][i] < DAY + timedelta(days=1)]
    y_true, p1 = d["true"][first], d["p1"][first]
    assert repaired[0]["metrics"]["accuracy"]["value"] == pytest.approx(
        skm.accuracy_score(y_true, d["pred"][first])
    )
    assert repaired[0]["metrics"]["roc_auc"]["value"] == pytest.approx(
        skm.roc_auc_score(y_true, p1)
    )
    assert repaired[0]["metrics"]["log_loss"]["value"] == pytest.approx(
        skm.log_loss(y_true, np.column_stack([1 - p1, p1]))
    )


async def test_a_batch_in_flight_is_not_recounted_under_it(api: Api, db: Database) -> None:
    await api.register("alice")
    exp = (await api.experiment("alice"))["id"]
    d = _data(50)
    await _post(api, exp, "m", "/predictions", _predictions(d, slice(0, 50)))
    await recount.mark(db, repository.model_key(exp, "m"))  # a batch writing now
    # The tick waits for the grace; an explicit recount sees the batch as busy.
    assert await recount.recount_stale(db, grace_seconds=600.0) == []
    found = await recount.recount(db, exp, "m", in_flight_after=utcnow() - timedelta(seconds=600))
    assert found.busy


async def test_the_recount_command(api: Api, db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    """``drift-monitor-server recount-performance`` repairs an experiment's models."""
    import asyncio

    from click.testing import CliRunner
    from drift_backend.cli import main

    await api.register("alice")
    exp = (await api.experiment("alice"))["id"]
    d = _data(40)
    await _post(api, exp, "m", "/predictions", _predictions(d, slice(0, 40)))
    await _crash_labels(db, exp, "m", d["ids"][:40], d["true"][:40].tolist())
    monkeypatch.setenv("DRIFT_MONGODB_URL", api.settings.mongodb_url.get_secret_value())
    monkeypatch.setenv("DRIFT_MONGODB_DATABASE", api.settings.mongodb_database)
    # The batch looks in flight (its marker is fresh): refused without --force.
    args = ["recount-performance", "--experiment", exp]
    result = await asyncio.to_thread(CliRunner().invoke, main, args)
    assert result.exit_code == 0, result.output
    assert "m: busy" in result.output
    result = await asyncio.to_thread(CliRunner().invoke, main, [*args, "--force"])
    assert result.exit_code == 0, result.output
    assert "m: recounted: 40 predictions, 40 labelled" in result.output
    assert sum(w["n_labelled"] for w in await _windows(api, exp, "m")) == 40


async def test_a_regression_model_is_recounted_too(api: Api, db: Database) -> None:
    await api.register("alice")
    exp = (await api.experiment("alice"))["id"]
    rng = np.random.default_rng(2)
    n = 200
    ids = [f"r{i}" for i in range(n)]
    y = rng.normal(50, 5, n)
    pred = y + rng.normal(0, 2, n)
    when = pa.array(
        [DAY + timedelta(hours=int(h)) for h in rng.integers(0, 20, n)],
        pa.timestamp("ms", tz="UTC"),
    )
    labelled = pa.array([LABELLED_AT] * n, pa.timestamp("ms", tz="UTC"))
    for model in ("whole", "m"):
        await _post(
            api, exp, model, "/predictions", pa.table({"id": ids, "y_pred": pred, "time": when})
        )
    await _post(
        api, exp, "whole", "/ground-truth", pa.table({"id": ids, "y_true": y, "time": labelled})
    )
    await _post(
        api,
        exp,
        "m",
        "/ground-truth",
        pa.table({"id": ids[:100], "y_true": y[:100], "time": labelled[:100]}),
    )
    await _crash_labels(db, exp, "m", ids[100:], y[100:].tolist())
    [done] = await recount.recount_stale(db, grace_seconds=0.0)
    assert (done.predictions, done.labelled) == (n, n)
    [mine] = await _windows(api, exp, "m")
    [batch] = await _windows(api, exp, "whole")
    assert mine["n_labelled"] == batch["n_labelled"] == n
    for name, metric in batch["metrics"].items():
        assert mine["metrics"][name]["value"] == pytest.approx(metric["value"]), name
    assert mine["metrics"]["rmse"]["value"] == pytest.approx(skm.root_mean_squared_error(y, pred))
