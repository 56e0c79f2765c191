"""Metrics per drift run: predictions recorded with ``run=`` add to that run's document as
they add to their hours, and late labels (two parts, out of order, one changed) follow. At
every step each run's metrics equal scikit-learn's on the joined data of that run's
predictions; predictions without a run count in the windows only."""

from __future__ import annotations

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
from tests.support.uploads import post_table, send_table

PREFIX = "/api/v1"
DAY = datetime(2026, 5, 4, tzinfo=UTC)
MULTI = ["a", "b", "c"]


@pytest.fixture
async def alice_api(api: Api) -> Api:
    await api.register("alice")
    return api


@pytest.fixture
async def db(api: Api) -> AsyncIterator[Database]:
    client = connect(api.settings.mongodb_url.get_secret_value())
    yield client[api.settings.mongodb_database]
    await client.close()


async def _run(api: Api, exp: str, model: str) -> str:
    r = await api.request(
        "POST",
        f"{PREFIX}/experiment/{exp}/drift",
        "alice",
        json={"model": model, "job_status": "Running"},
    )
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


async def _runs(api: Api, exp: str, model: str, **params: Any) -> Any:
    r = await api.request(
        "GET",
        f"{PREFIX}/experiment/{exp}/performance/runs",
        "alice",
        params={"model": model, **params},
    )
    assert r.status_code == 200, r.text
    return r.json()


class Data:
    """Seeded predictions of one task, their labels and their ids."""

    def __init__(self, task: str, n: int, seed: int) -> None:
        rng = np.random.default_rng(seed)
        self.task = task
        self.ids = [f"r{i}" for i in range(n)]
        self.times = [DAY + timedelta(minutes=int(m)) for m in rng.integers(0, 3 * 60, n)]
        self.proba: np.ndarray | None = None
        if task == "regression":
            self.truth: np.ndarray = rng.normal(10.0, 3.0, n)
            self.pred: np.ndarray = self.truth + rng.normal(0.5, 1.0, n)
            return
        classes = ["0", "1"] if task == "binary" else MULTI
        k = len(classes)
        y = rng.integers(0, k, n)
        logits = rng.normal(size=(n, k))
        logits[np.arange(n), y] += 1.2
        p = np.exp(logits)
        p /= p.sum(axis=1, keepdims=True)
        # On the score grid (0.001), so ROC AUC is exactly scikit-learn's.
        p[:, : k - 1] = np.round(p[:, : k - 1] * 1000) / 1000
        p[:, k - 1] = np.round((1.0 - p[:, : k - 1].sum(axis=1)) * 1000) / 1000
        self.classes = classes
        self.proba = p
        self.truth = np.array([classes[i] for i in y], dtype=object)
        self.pred = np.array([classes[i] for i in p.argmax(axis=1)], dtype=object)

    def predictions(self, rows: np.ndarray) -> pa.Table:
        columns: dict[str, Any] = {"id": [self.ids[i] for i in rows]}
        if self.task == "regression":
            columns["y_pred"] = pa.array(self.pred[rows], pa.float64())
        else:
            assert self.proba is not None
            columns["y_pred"] = list(self.pred[rows])
            for k, cls in enumerate(self.classes):
                columns[f"proba_{cls}"] = self.proba[rows, k]
        columns["time"] = pa.array([self.times[i] for i in rows], pa.timestamp("ms", tz="UTC"))
        return pa.table(columns)

    def labels(self, rows: np.ndarray, values: np.ndarray) -> pa.Table:
        y_true = pa.array(values, pa.float64()) if self.task == "regression" else list(values)
        return pa.table(
            {
                "id": [self.ids[i] for i in rows],
                "y_true": y_true,
                "time": pa.array(
                    [DAY + timedelta(days=2)] * len(rows), pa.timestamp("ms", tz="UTC")
                ),
            }
        )

    def changed(self, value: Any) -> Any:
        if self.task == "regression":
            return value + 4.0
        classes = self.classes
        return classes[(classes.index(value) + 1) % len(classes)]


def _assert_like_sklearn(data: Data, run: dict[str, Any], rows: np.ndarray, y: np.ndarray) -> None:
    """``run``'s metrics against scikit-learn on the joined rows (``y``: current labels)."""
    m = run["metrics"]
    if data.task == "regression":
        yp = data.pred[rows]
        assert m["mae"]["value"] == pytest.approx(skm.mean_absolute_error(y, yp))
        assert m["rmse"]["value"] == pytest.approx(np.sqrt(skm.mean_squared_error(y, yp)))
        assert m["r2"]["value"] == pytest.approx(skm.r2_score(y, yp))
        assert m["mape"]["value"] == pytest.approx(skm.mean_absolute_percentage_error(y, yp))
        assert m["mean_error"]["value"] == pytest.approx(float(np.mean(yp - y)))
        return
    assert data.proba is not None
    yp, p = data.pred[rows], data.proba[rows]
    assert m["accuracy"]["value"] == pytest.approx(skm.accuracy_score(y, yp))
    assert m["f1_macro"]["value"] == pytest.approx(skm.f1_score(y, yp, average="macro"))
    assert m["log_loss"]["value"] == pytest.approx(skm.log_loss(y, p, labels=data.classes))
    matrix = run["confusion_matrix"]
    assert matrix["matrix"] == skm.confusion_matrix(y, yp, labels=matrix["labels"]).tolist()
    if data.task == "binary":
        positive = (y == "1").astype(int)
        assert m["f1"]["value"] == pytest.approx(skm.f1_score(y, yp, pos_label="1"))
        assert m["roc_auc"]["value"] == pytest.approx(skm.roc_auc_score(positive, p[:, 1]))
        assert m["brier"]["value"] == pytest.approx(skm.brier_score_loss(positive, p[:, 1]))
    else:
        assert m["roc_auc"]["value"] == pytest.approx(
            skm.roc_auc_score(y, p, multi_class="ovr", labels=data.classes), abs=1e-12
        )


@pytest.mark.parametrize(("task", "seed"), [("binary", 1), ("multiclass", 2), ("regression", 3)])
async def test_run_metrics_follow_late_labels(alice_api: Api, task: str, seed: int) -> None:
    api = alice_api
    exp = (await api.experiment("alice"))["id"]
    base = f"{PREFIX}/experiment/{exp}"
    n = 360
    data = Data(task, n, seed)
    first_run, second_run = await _run(api, exp, "m"), await _run(api, exp, "m")
    # 200 predictions of the first run, 100 of the second, 60 without a run.
    members = {first_run: np.arange(0, 200), second_run: np.arange(200, 300)}
    answer = await post_table(
        api, base + "/predictions", data.predictions(members[first_run]), model="m", run=first_run
    )
    assert answer["recorded"] == 200
    await post_table(
        api, base + "/predictions", data.predictions(members[second_run]), model="m", run=second_run
    )
    await post_table(api, base + "/predictions", data.predictions(np.arange(300, n)), model="m")
    # A repeated batch keeps the first predictions and adds nothing to the run.
    again = await post_table(
        api, base + "/predictions", data.predictions(np.arange(0, 10)), model="m", run=first_run
    )
    assert again["duplicates"] == 10

    listed = await _runs(api, exp, "m")
    # Newest first; predictions without a run make no run document.
    assert [r["run_id"] for r in listed["runs"]] == [second_run, first_run]
    assert (listed["next"], listed["previous"]) == (None, None)
    for run in listed["runs"]:
        assert run["n_predicted"] == len(members[run["run_id"]])
        assert (run["n_labelled"], run["coverage"], run["complete"]) == (0, 0.0, False)
    if task == "binary":
        # Estimated before any label, as for windows.
        assert listed["runs"][0]["estimated"]["accuracy"]["value"] is not None
    # Every prediction is in the hour windows, with or without a run.
    r = await api.request(
        "GET",
        base + "/performance",
        "alice",
        params={
            "model": "m",
            "window": "day",
            "from": DAY.isoformat(),
            "to": (DAY + timedelta(days=1)).isoformat(),
        },
    )
    assert r.status_code == 200, r.text
    assert r.json()["windows"][0]["n_predicted"] == n

    current = data.truth.copy()
    labelled = np.zeros(n, dtype=bool)

    async def check() -> None:
        runs = {r["run_id"]: r for r in (await _runs(api, exp, "m"))["runs"]}
        for run_id, rows in members.items():
            run = runs[run_id]
            done = rows[labelled[rows]]
            assert run["n_labelled"] == len(done)
            assert run["coverage"] == pytest.approx(len(done) / len(rows))
            assert run["complete"] is bool(len(done) / len(rows) >= 0.8)
            if len(done) >= 2:
                _assert_like_sklearn(data, run, done, current[done])

    rng = np.random.default_rng(seed + 100)
    order = rng.permutation(n)  # out of order, across runs and rows without a run
    part1, part2 = order[: n // 2], order[n // 2 :]
    await post_table(api, base + "/ground-truth", data.labels(part2, data.truth[part2]), model="m")
    labelled[part2] = True
    await check()
    # One changed label (a row of the first run already labelled).
    row = int(next(i for i in part2 if i < 200))
    current[row] = data.changed(data.truth[row])
    changed = await post_table(
        api, base + "/ground-truth", data.labels(np.array([row]), current[row : row + 1]), model="m"
    )
    assert changed["changed"] == 1
    await check()
    await post_table(api, base + "/ground-truth", data.labels(part1, data.truth[part1]), model="m")
    labelled[part1] = True
    await check()

    # One run's metrics, by its own route.
    r = await api.request("GET", f"{base}/drift/{first_run}/performance", "alice")
    assert r.status_code == 200, r.text
    one = r.json()
    assert one["model"] == "m"
    assert one["run"] == {r["run_id"]: r for r in (await _runs(api, exp, "m"))["runs"]}[first_run]
    assert one["run"]["complete"] is True
    # Paged.
    page = await _runs(api, exp, "m", limit=1)
    assert [r["run_id"] for r in page["runs"]] == [second_run]
    page = await _runs(api, exp, "m", limit=1, after=page["next"])
    assert ([r["run_id"] for r in page["runs"]], page["next"]) == ([first_run], None)


async def test_unknown_run_is_refused(alice_api: Api) -> None:
    api = alice_api
    exp = (await api.experiment("alice"))["id"]
    other_exp = (await api.experiment("alice"))["id"]
    base = f"{PREFIX}/experiment/{exp}"
    data = Data("binary", 4, 5)
    table = data.predictions(np.arange(4))
    r = await send_table(api, base + "/predictions", table, model="m", run="no-such-run")
    assert r.status_code == 404, r.text
    # The one error shape, naming the field (clients match on it, not on the message).
    assert r.json() == {
        "code": "not_found",
        "status": 404,
        "message": "run: no drift run 'no-such-run' in this experiment",
        "errors": [{"field": "run", "reason": "no drift run 'no-such-run' in this experiment"}],
    }
    # A run of another experiment is not one of this one.
    elsewhere = await _run(api, other_exp, "m")
    r = await send_table(api, base + "/predictions", table, model="m", run=elsewhere)
    assert r.status_code == 404, r.text
    assert [e["field"] for e in r.json()["errors"]] == ["run"]
    # A run of another model.
    other_model = await _run(api, exp, "other")
    r = await send_table(api, base + "/predictions", table, model="m", run=other_model)
    assert r.status_code == 422, r.text
    assert [e["field"] for e in r.json()["errors"]] == ["run"]
    # Nothing was stored: the model has no predictions.
    r = await api.request("GET", base + "/performance/runs", "alice", params={"model": "m"})
    assert r.status_code == 404, r.text
    assert [e["field"] for e in r.json()["errors"]] == ["model"]
    r = await api.request("GET", f"{base}/drift/{other_model}/performance", "alice")
    assert r.status_code == 404, r.text
    assert [e["field"] for e in r.json()["errors"]] == ["run"]
    r = await api.request("GET", f"{base}/drift/nope/performance", "alice")
    assert r.status_code == 404, r.text
    assert [e["field"] for e in r.json()["errors"]] == ["run"]
    # A 404 about the experiment itself names no field.
    r = await send_table(
        api, f"{PREFIX}/experiment/no-such-exp/predictions", table, model="m", run="no-such-run"
    )
    assert r.status_code == 404, r.text
    assert "errors" not in r.json()
    r = await api.request(
        "GET", base + "/performance/runs", "alice", params={"model": "m", "limit": 101}
    )
    assert r.status_code == 422, r.text


async def test_a_deleted_runs_metrics_go_with_it(alice_api: Api) -> None:
    api = alice_api
    exp = (await api.experiment("alice"))["id"]
    base = f"{PREFIX}/experiment/{exp}"
    data = Data("binary", 20, 6)
    run = await _run(api, exp, "m")
    await post_table(
        api, base + "/predictions", data.predictions(np.arange(20)), model="m", run=run
    )
    assert len((await _runs(api, exp, "m"))["runs"]) == 1
    r = await api.request("DELETE", f"{base}/drift/{run}", "alice")
    assert r.status_code == 204, r.text
    assert (await _runs(api, exp, "m"))["runs"] == []
    # Its predictions' labels still count in the windows, and make no run document.
    labels = await post_table(
        api, base + "/ground-truth", data.labels(np.arange(20), data.truth), model="m"
    )
    assert labels["labelled"] == 20
    assert (await _runs(api, exp, "m"))["runs"] == []


async def test_recount_repairs_run_documents(alice_api: Api, db: Database) -> None:
    api = alice_api
    exp = (await api.experiment("alice"))["id"]
    base = f"{PREFIX}/experiment/{exp}"
    data = Data("binary", 120, 8)
    run = await _run(api, exp, "m")
    rows = np.arange(100)
    await post_table(
        api, base + "/predictions", data.predictions(np.arange(120)), model="m", run=run
    )
    await post_table(
        api, base + "/ground-truth", data.labels(rows[:80], data.truth[:80]), model="m"
    )
    whole = (await _runs(api, exp, "m"))["runs"][0]
    # The run document damaged (20 predictions and 5 labels lost: a restored backup, a bug).
    await db[repository.RUNS].update_one(
        {"_id": repository.run_key(exp, "m", run)}, {"$inc": {"n_pred": -20, "n_lab": -5, "v": 1}}
    )
    broken = (await _runs(api, exp, "m"))["runs"][0]
    assert (broken["n_predicted"], broken["n_labelled"]) == (100, 75)

    found = await recount.recount(db, exp, "m")
    assert found.predictions == 120
    repaired = (await _runs(api, exp, "m"))["runs"][0]
    assert (repaired["n_predicted"], repaired["n_labelled"]) == (120, 80)
    for name, metric in whole["metrics"].items():  # summed in another order
        assert repaired["metrics"][name]["value"] == pytest.approx(metric["value"]), name
    _assert_like_sklearn(data, repaired, rows[:80], data.truth[:80])


async def test_deleting_the_experiment_deletes_its_run_documents(
    alice_api: Api, db: Database
) -> None:
    api = alice_api
    exp = (await api.experiment("alice"))["id"]
    base = f"{PREFIX}/experiment/{exp}"
    run = await _run(api, exp, "m")
    await post_table(
        api,
        base + "/predictions",
        Data("binary", 5, 9).predictions(np.arange(5)),
        model="m",
        run=run,
    )
    assert await db[repository.RUNS].count_documents({"experiment_id": exp}) == 1
    r = await api.request("DELETE", base, "alice")
    assert r.status_code == 204, r.text
    assert await db[repository.RUNS].count_documents({"experiment_id": exp}) == 0


async def test_a_run_says_whether_predictions_were_recorded_with_it(
    alice_api: Api, db: Database
) -> None:
    api = alice_api
    exp = (await api.experiment("alice"))["id"]
    base = f"{PREFIX}/experiment/{exp}"
    data = Data("binary", 10, 9)
    run, other = await _run(api, exp, "m"), await _run(api, exp, "m")

    async def drift(drift_id: str) -> Any:
        r = await api.request("GET", f"{base}/drift/{drift_id}", "alice")
        assert r.status_code == 200, r.text
        return r.json()

    before = await drift(run)
    assert before["has_predictions"] is False
    await post_table(
        api, base + "/predictions", data.predictions(np.arange(10)), model="m", run=run
    )
    after = await drift(run)
    assert after["has_predictions"] is True
    # Not a change of the run: its updated_at (the stale-run sweeper's clock) stays.
    assert after["updated_at"] == before["updated_at"]
    # Kept by a PUT (the client's full replace of its own fields).
    r = await api.request(
        "PUT", f"{base}/drift/{run}", "alice", json={"model": "m", "job_status": "Completed"}
    )
    assert r.status_code == 200, r.text
    assert r.json()["has_predictions"] is True
    # A batch of ids already recorded (with another run) records nothing for this one.
    again = await post_table(
        api, base + "/predictions", data.predictions(np.arange(10)), model="m", run=other
    )
    assert again["recorded"] == 0
    assert (await drift(other))["has_predictions"] is False
    # A run whose flag is missing (recorded before the flag existed) gets it from a recount.
    await db.drifts.update_one({"_id": run}, {"$unset": {"has_predictions": ""}})
    assert (await drift(run))["has_predictions"] is False
    await recount.recount(db, exp, "m")
    assert (await drift(run))["has_predictions"] is True
    assert (await drift(other))["has_predictions"] is False
