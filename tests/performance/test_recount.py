"""A batch whose applier dies after storing it (or halfway through its windows) is applied
by the next request for its model, or by the workers' tick, exactly once; a recount rebuilds
windows that something else changed; predictions expire. Each compared with a model that
received the same data whole, and with scikit-learn."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from drift_backend.performance import recount, repository
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


class Died(Exception):
    """The applier's process ends here."""


async def _die(*args: Any, **kwargs: Any) -> None:
    raise Died


def _halfway(write: Any) -> Any:
    """``add_to_windows`` that writes half the hours, then dies."""

    async def half(*args: Any, **kwargs: Any) -> None:
        db, experiment_id, model, found, *rest = args
        assert len(found) > 1
        await write(
            db, experiment_id, model, dict(list(found.items())[: len(found) // 2]), *rest, **kwargs
        )
        raise Died

    return half


async def _dying(api: Api, exp: str, model: str, route: str, table: pa.Table) -> None:
    """Send a batch whose applier dies (the patched step raises): the request fails."""
    with contextlib.suppress(Died):
        r = await api.request(
            "POST",
            f"{PREFIX}/experiment/{exp}{route}",
            "alice",
            params={"model": model},
            content=_ipc(table),
            headers={"Content-Type": "application/vnd.apache.arrow.stream"},
        )
        assert r.status_code == 500, r.text


def _ipc(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return bytes(sink.getvalue())


def _same(mine: list[dict[str, Any]], whole: list[dict[str, Any]]) -> None:
    assert len(mine) == len(whole)
    for got, want in zip(mine, whole, strict=True):
        for key in ("start", "n_predicted", "n_labelled", "coverage", "complete"):
            assert got[key] == want[key], key
        assert got["confusion_matrix"] == want["confusion_matrix"]
        assert got["label_lag"] == pytest.approx(want["label_lag"])
        for name, metric in want["metrics"].items():
            assert got["metrics"][name]["value"] == pytest.approx(metric["value"]), name
        if want["estimated"] is not None:  # the prediction side (score counts) too
            assert got["estimated"]["accuracy"] == pytest.approx(want["estimated"]["accuracy"])


async def test_what_a_dead_applier_left_is_applied_by_the_next_request(
    api: Api, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    await api.register("alice")
    exp = (await api.experiment("alice"))["id"]
    n = 600
    d = _data(n)
    # The batch computation: a model that received everything, whole.
    await _post(api, exp, "whole", "/predictions", _predictions(d, slice(0, n)))
    await _post(api, exp, "whole", "/ground-truth", _labels(d, slice(0, 500)))

    await _post(api, exp, "m", "/predictions", _predictions(d, slice(0, 550)))
    # Predictions 550.. stored, then the applier died before any window.
    with monkeypatch.context() as patch:
        patch.setattr(repository, "add_to_windows", _die)
        await _dying(api, exp, "m", "/predictions", _predictions(d, slice(550, n)))
    # Labels 0..49 first sent wrong; 50..299 fine.
    await _post(api, exp, "m", "/ground-truth", _labels(d, slice(0, 50), 1 - d["true"][:50]))
    await _post(api, exp, "m", "/ground-truth", _labels(d, slice(50, 300)))
    # Labels 300..499 stored and added to half their hours, then the applier died: the next
    # applier applies the batch again, and adds nothing to the hours it reached.
    with monkeypatch.context() as patch:
        patch.setattr(repository, "add_to_windows", _halfway(repository.add_to_windows))
        await _dying(api, exp, "m", "/ground-truth", _labels(d, slice(300, 500)))
    model = await repository.get_model(db, exp, "m")
    assert model is not None
    assert model["stored"] > model["applied"]
    # The next batch (the corrections of 0..49) applies what was left first.
    r = await send(api, exp, "m", "/ground-truth", _labels(d, slice(0, 50)))
    assert r["changed"] == 50
    model = await repository.get_model(db, exp, "m")
    assert model is not None
    assert model["stored"] == model["applied"]
    assert model["lease"] is None
    mine = await _windows(api, exp, "m")
    whole = await _windows(api, exp, "whole")
    _same(mine, whole)
    assert sum(w["n_predicted"] for w in mine) == n
    assert sum(w["n_labelled"] for w in mine) == 500
    # ... and the batch computation is scikit-learn's on the joined rows.
    first = [i for i in range(500) if d["t"][i] < DAY + timedelta(days=1)]
    y_true, p1 = d["true"][first], d["p1"][first]
    assert mine[0]["metrics"]["accuracy"]["value"] == pytest.approx(
        skm.accuracy_score(y_true, d["pred"][first])
    )
    assert mine[0]["metrics"]["roc_auc"]["value"] == pytest.approx(skm.roc_auc_score(y_true, p1))
    assert mine[0]["metrics"]["log_loss"]["value"] == pytest.approx(
        skm.log_loss(y_true, np.column_stack([1 - p1, p1]))
    )


async def send(api: Api, exp: str, model: str, route: str, table: pa.Table) -> Any:
    return await post_table(api, f"{PREFIX}/experiment/{exp}{route}", table, model)


async def test_the_tick_applies_what_a_dead_applier_left(
    api: Api, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    await api.register("alice")
    exp = (await api.experiment("alice"))["id"]
    d = _data(200)
    for model in ("whole", "m"):
        await _post(api, exp, model, "/predictions", _predictions(d, slice(0, 200)))
    await _post(api, exp, "whole", "/ground-truth", _labels(d, slice(0, 200)))
    with monkeypatch.context() as patch:
        patch.setattr(repository, "add_to_windows", _die)
        await _dying(api, exp, "m", "/ground-truth", _labels(d, slice(0, 200)))
    assert sum(w["n_labelled"] for w in await _windows(api, exp, "m")) == 0
    key = repository.model_key(exp, "m")
    assert await recount.tick(db) == [key]
    assert await recount.tick(db) == []  # nothing left
    _same(await _windows(api, exp, "m"), await _windows(api, exp, "whole"))


async def test_a_recount_rebuilds_changed_windows(
    api: Api, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``drift-monitor-server recount-performance`` repairs an experiment's models."""
    import asyncio

    from click.testing import CliRunner
    from drift_backend.cli import main

    await api.register("alice")
    exp = (await api.experiment("alice"))["id"]
    d = _data(300)
    for model in ("whole", "m"):
        await _post(api, exp, model, "/predictions", _predictions(d, slice(0, 300)))
        await _post(
            api, exp, model, "/ground-truth", _labels(d, slice(0, 200), 1 - d["true"][:200])
        )
        await _post(api, exp, model, "/ground-truth", _labels(d, slice(0, 250)))
    # Something other than the applier changed the windows (a restored backup, a bug).
    await db[repository.WINDOWS].update_many(
        {"experiment_id": exp, "model": "m"}, {"$inc": {"n_lab": 7, "s.cm.1.1": 3, "v": 1}}
    )
    assert sum(w["n_labelled"] for w in await _windows(api, exp, "m")) != 250
    monkeypatch.setenv("DRIFT_MONGODB_URL", api.settings.mongodb_url.get_secret_value())
    monkeypatch.setenv("DRIFT_MONGODB_DATABASE", api.settings.mongodb_database)
    args = ["recount-performance", "--experiment", exp, "--model", "m"]
    result = await asyncio.to_thread(CliRunner().invoke, main, args)
    assert result.exit_code == 0, result.output
    assert "m: recounted: 300 predictions, 250 labelled" in result.output
    _same(await _windows(api, exp, "m"), await _windows(api, exp, "whole"))
    # A later batch still counts once.
    for model in ("whole", "m"):
        await _post(api, exp, model, "/ground-truth", _labels(d, slice(250, 300)))
    _same(await _windows(api, exp, "m"), await _windows(api, exp, "whole"))


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
            api, exp, model, "/ground-truth", pa.table({"id": ids, "y_true": y, "time": labelled})
        )
    await db[repository.WINDOWS].update_many(
        {"experiment_id": exp, "model": "m"}, {"$set": {"s": {}, "n_lab": 0}}
    )
    done = await recount.recount(db, exp, "m")
    assert (done.predictions, done.labelled) == (n, n)
    [mine] = await _windows(api, exp, "m")
    [batch] = await _windows(api, exp, "whole")
    assert mine["n_labelled"] == batch["n_labelled"] == n
    for name, metric in batch["metrics"].items():
        assert mine["metrics"][name]["value"] == pytest.approx(metric["value"]), name
    assert mine["metrics"]["rmse"]["value"] == pytest.approx(skm.root_mean_squared_error(y, pred))


async def test_unlabelled_predictions_expire(api_factory: Any) -> None:
    """After ``DRIFT_PERFORMANCE_UNLABELLED_TTL_SECONDS`` an unlabelled prediction is gone:
    its label is unknown and its id may be predicted anew; labelled ones stay, and their
    label can still change. The windows keep counting what expired."""
    import asyncio

    api: Api = await api_factory(performance_unlabelled_ttl_seconds=1.0)
    await api.register("alice")
    exp = (await api.experiment("alice"))["id"]
    d = _data(40)
    await _post(api, exp, "m", "/predictions", _predictions(d, slice(0, 40)))
    first = await send(api, exp, "m", "/ground-truth", _labels(d, slice(0, 20)))
    assert first["labelled"] == 20
    await asyncio.sleep(1.5)
    late = await send(
        api, exp, "m", "/ground-truth", _labels(d, slice(10, 40), 1 - d["true"][10:40])
    )
    assert (late["changed"], late["labelled"], late["unknown"]) == (10, 0, 20)
    assert late["unknown_ids"] == d["ids"][20:40]
    again = await send(api, exp, "m", "/predictions", _predictions(d, slice(15, 40)))
    assert (again["recorded"], again["duplicates"]) == (20, 5)
    windows = await _windows(api, exp, "m")
    assert sum(w["n_predicted"] for w in windows) == 60
    assert sum(w["n_labelled"] for w in windows) == 20
