"""The performance routes' limits and bad input: clear 4xx naming the field; the labelled
reference; the largest documented batch."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from drift_backend.performance import repository, stored
from drift_backend.performance.batches import MAX_BATCH_PROBABILITIES, MAX_ID_LENGTH
from drift_backend.store.database import connect
from sklearn import metrics as skm

from tests.conftest import Api
from tests.support.uploads import send_table

PREFIX = "/api/v1"


@pytest.fixture
async def setup(api: Api) -> tuple[Api, str]:
    await api.register("alice")
    exp = await api.experiment("alice")
    return api, f"{PREFIX}/experiment/{exp['id']}"


async def post(api: Api, url: str, body: pa.Table | dict[str, Any], model: str = "m") -> Any:
    if isinstance(body, pa.Table):
        return await send_table(api, url, body, model)
    return await api.request("POST", url, "alice", params={"model": model}, json=body)


def problem(response: Any, status: int) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["status"] == status
    return str(body["errors"][0]["field"]) if "errors" in body else str(body["message"])


async def test_bad_prediction_batches_name_the_field(setup: tuple[Api, str]) -> None:
    api, base = setup
    url = base + "/predictions"
    cases: list[tuple[dict[str, Any], str]] = [
        ({"id": ["a", "a"], "y_pred": [1, 0]}, "id"),
        ({"id": ["x" * (MAX_ID_LENGTH + 1)], "y_pred": [1]}, "id"),
        ({"id": [""], "y_pred": [1]}, "id"),
        ({"id": ["a", None], "y_pred": [1, 0]}, "id"),
        ({"id": ["a"]}, "y_pred"),
        ({"y_pred": [1]}, "id"),
        ({"id": ["a"], "y_pred": [1], "proba_0": [0.5], "proba_1": [0.6]}, "proba_*"),
        ({"id": ["a"], "y_pred": [1], "proba_0": [-0.1], "proba_1": [1.1]}, "proba_0"),
        ({"id": ["a"], "y_pred": [1], "proba_1": [1.0]}, "proba_1"),
        ({"id": ["a"], "y_pred": [1.5], "proba_0": [0.5], "proba_1": [0.5]}, "y_pred"),
        ({"id": ["a"], "y_pred": [1], "colour": ["red"]}, "colour"),
        ({"id": ["a"], "y_pred": [1], "time": ["yesterday"]}, "time"),
    ]
    for columns, field in cases:
        assert problem(await post(api, url, {"columns": columns}), 422) == field, columns
    # An id of exactly the limit is fine.
    ok = await post(api, url, {"columns": {"id": ["x" * MAX_ID_LENGTH], "y_pred": [1]}})
    assert ok.status_code == 200, ok.text
    # The model is a classification now: a regression batch is refused, naming y_pred.
    r = await post(api, url, {"columns": {"id": ["b"], "y_pred": [0.25]}})
    assert problem(r, 422) == "y_pred"
    assert "classification" in r.json()["message"]
    # Probabilities for other classes than the model's first ones.
    first = {"id": ["p1"], "y_pred": ["u"], "proba_u": [0.5], "proba_v": [0.5]}
    assert (await post(api, url, {"columns": first}, model="p")).status_code == 200
    other = {"id": ["p2"], "y_pred": ["u"], "proba_u": [0.5], "proba_w": [0.5]}
    assert problem(await post(api, url, {"columns": other}, model="p"), 422) == "proba_*"


async def test_unknown_model_and_bad_labels(setup: tuple[Api, str]) -> None:
    api, base = setup
    r = await post(api, base + "/ground-truth", {"columns": {"id": ["a"], "y_true": [1]}})
    assert r.status_code == 404
    assert "model" in r.json()["message"]
    r = await api.request("GET", base + "/performance", "alice", params={"model": "m"})
    assert r.status_code == 404
    assert "'m'" in r.json()["message"]
    r = await api.request("GET", base + "/performance", "alice")
    assert problem(r, 422) == "model"

    await post(api, base + "/predictions", {"columns": {"id": ["a"], "y_pred": [2.5]}})
    bad: dict[str, Any] = {"id": ["a"], "y_true": ["high"]}
    assert problem(await post(api, base + "/ground-truth", {"columns": bad}), 422) == "y_true"
    bad = {"id": ["a"], "y_true": [1.0], "proba_x": [1.0]}
    assert problem(await post(api, base + "/ground-truth", {"columns": bad}), 422) == "proba_x"


async def test_bad_ranges(setup: tuple[Api, str]) -> None:
    api, base = setup
    await post(api, base + "/predictions", {"columns": {"id": ["a"], "y_pred": [1]}})
    url = base + "/performance"
    cases = [
        ({"from": "2026-01-02T00:00:00Z", "to": "2026-01-01T00:00:00Z"}, "from"),
        ({"window": "hour", "from": "2020-01-01T00:00:00Z", "to": "2026-01-01T00:00:00Z"}, "from"),
        ({"window": "month"}, "window"),
        ({"from": "2026-01-01T00:00:00"}, "from"),  # no offset: ambiguous
    ]
    for params, field in cases:
        r = await api.request("GET", url, "alice", params={"model": "m", **params})
        assert problem(r, 422) == field, params


async def test_labelled_reference_is_shown_beside_the_windows(setup: tuple[Api, str]) -> None:
    api, base = setup
    rng = np.random.default_rng(11)
    y = rng.integers(0, 2, 400)
    score = np.round(np.clip(rng.normal(0.35 + 0.3 * y, 0.2), 0, 1), 3)
    pred = (score > 0.5).astype(int)
    table = pa.table({"y_true": y, "y_pred": pred, "proba_0": 1 - score, "proba_1": score})
    r = await post(api, base + "/performance-reference", table)
    assert r.status_code == 200, r.text
    reference = r.json()
    assert reference["n"] == 400
    assert reference["metrics"]["accuracy"]["value"] == pytest.approx(skm.accuracy_score(y, pred))
    assert reference["metrics"]["f1"]["value"] == pytest.approx(skm.f1_score(y, pred))
    assert reference["metrics"]["roc_auc"]["value"] == pytest.approx(skm.roc_auc_score(y, score))
    assert reference["confusion_matrix"]["matrix"] == skm.confusion_matrix(y, pred).tolist()

    await post(api, base + "/predictions", {"columns": {"id": ["a"], "y_pred": [1]}})
    r = await api.request("GET", base + "/performance", "alice", params={"model": "m"})
    answer = r.json()
    assert answer["reference"]["metrics"] == reference["metrics"]
    assert answer["classes"] == ["0", "1"]
    assert answer["min_coverage"] == api.settings.performance_min_coverage
    assert answer["windows"][0]["n_predicted"] == 1


async def test_a_batch_at_the_row_limit(patient: Api) -> None:
    """``DRIFT_PERFORMANCE_MAX_BATCH_ROWS`` rows with ten probability columns are taken;
    one more row is refused, naming the limit (the default). On the patient backend: what
    is tested is that the limit is taken, not how fast the single-threaded test database
    writes 10,000 predictions and labels (CI once saw one of its chunks pass 5 s)."""
    api = patient
    await api.register("alice")
    base = f"{PREFIX}/experiment/{(await api.experiment('alice'))['id']}"
    rows = api.settings.performance_max_batch_rows
    rng = np.random.default_rng(0)
    proba = rng.dirichlet(np.ones(10), rows)
    columns: dict[str, Any] = {
        "id": pa.array(np.arange(rows).astype(str)),
        "y_pred": proba.argmax(axis=1),
        **{f"proba_{k}": proba[:, k] for k in range(10)},
    }
    r = await post(api, base + "/predictions", pa.table(columns))
    assert r.status_code == 200, r.text
    assert r.json()["recorded"] == rows
    labels = pa.table({"id": columns["id"], "y_true": rng.integers(0, 10, rows)})
    r = await post(api, base + "/ground-truth", labels)
    assert r.status_code == 200, r.text
    assert r.json()["labelled"] == rows

    one_more = pa.table({"id": [str(i) for i in range(rows + 1)], "y_pred": np.zeros(rows + 1)})
    assert problem(await post(api, base + "/predictions", one_more), 413) == "max_rows"


def _many_classes(n_classes: int, rows: int, seed: int = 0) -> pa.Table:
    rng = np.random.default_rng(seed)
    proba = rng.dirichlet(np.ones(n_classes), rows)
    classes = np.array([f"c{k}" for k in range(n_classes)])
    return pa.table(
        {
            "id": pa.array(np.arange(rows).astype(str)),
            "y_pred": classes[proba.argmax(axis=1)],
            **{f"proba_{cls}": proba[:, k] for k, cls in enumerate(classes)},
            "time": pa.array(
                np.datetime64("2026-03-02T00:00")
                + rng.integers(0, 86_400, rows).astype("timedelta64[s]")
            ),
        }
    )


async def test_a_batch_at_the_class_limit(patient: Api) -> None:
    """``DRIFT_PERFORMANCE_MAX_CLASSES`` classes in a batch of the most rows: predictions,
    their labels and the day's window (its hours keep a cell per label pair and ROC score
    counts per class in one document each); one class more, or one distinct label more in
    a batch, is refused naming the column. (More classes once answered 500: the stored
    batch passed MongoDB's 16 MB.)"""
    api = patient
    await api.register("alice")
    base = f"{PREFIX}/experiment/{(await api.experiment('alice'))['id']}"
    n_classes, rows = api.settings.performance_max_classes, api.settings.performance_max_batch_rows
    batch = _many_classes(n_classes, rows)
    r = await post(api, base + "/predictions", batch)
    assert r.status_code == 200, r.text
    assert r.json()["recorded"] == rows
    rng = np.random.default_rng(1)
    y_true = np.array([f"c{k}" for k in rng.integers(0, n_classes, rows)])
    r = await post(api, base + "/ground-truth", pa.table({"id": batch["id"], "y_true": y_true}))
    assert r.status_code == 200, r.text
    assert r.json()["labelled"] == rows
    r = await api.request(
        "GET",
        base + "/performance",
        "alice",
        params={
            "model": "m",
            "window": "day",
            "from": "2026-03-02T00:00:00Z",
            "to": "2026-03-03T00:00:00Z",
        },
    )
    assert r.status_code == 200, r.text
    (day,) = r.json()["windows"]
    assert day["n_labelled"] == rows
    accuracy = skm.accuracy_score(y_true, batch["y_pred"].to_numpy())
    assert day["metrics"]["accuracy"]["value"] == pytest.approx(accuracy, abs=1e-12)

    wider = _many_classes(n_classes + 1, 1)
    assert problem(await post(api, base + "/predictions", wider, "m2"), 422) == "proba_*"
    labels = np.array([f"l{k}" for k in range(n_classes + 1)])
    ids = pa.array(np.arange(n_classes + 1).astype(str))
    plain = pa.table({"id": ids, "y_pred": labels})
    assert problem(await post(api, base + "/predictions", plain, "m3"), 422) == "y_pred"
    unlabelled = pa.table({"id": ids, "y_true": labels})
    assert problem(await post(api, base + "/ground-truth", unlabelled), 422) == "y_true"


async def test_a_models_labels_are_bounded_across_batches(setup: tuple[Api, str]) -> None:
    """Batches that each have few labels cannot together give a model more than
    ``DRIFT_PERFORMANCE_MAX_CLASSES`` (an hour's confusion matrix would outgrow its
    document); a refused batch records nothing."""
    api, base = setup
    most = api.settings.performance_max_classes

    def batch(first: int, last: int, column: str = "y_pred", prefix: str = "p") -> pa.Table:
        numbers = np.arange(first, last)
        return pa.table(
            {
                "id": pa.array([f"{prefix}{n}" for n in numbers]),
                column: pa.array([f"l{n}" for n in numbers]),
            }
        )

    assert (await post(api, base + "/predictions", batch(0, 60))).status_code == 200
    assert (await post(api, base + "/predictions", batch(40, most))).status_code == 200
    refused = await post(api, base + "/predictions", batch(most - 1, most + 1, prefix="q"))
    assert problem(refused, 422) == "y_pred"
    assert "1 labels new" in refused.json()["errors"][0]["reason"]
    again = batch(most - 1, most, prefix="q")  # the refused batch's known row: not recorded
    assert (await post(api, base + "/predictions", again)).json()["recorded"] == 1

    truth = await post(api, base + "/ground-truth", batch(0, 10, "y_true"))
    assert truth.json()["labelled"] == 10
    new_truth = pa.table({"id": ["p10"], "y_true": ["never predicted as"]})
    assert problem(await post(api, base + "/ground-truth", new_truth), 422) == "y_true"


async def test_a_batch_holds_at_most_a_million_probabilities(api_factory: Any) -> None:
    """With the row limit raised, a many-class batch is bounded by its probabilities (one
    document holds a batch, and a label batch's joined rows), predictions and labels alike,
    with the rows it may have."""
    api: Api = await api_factory(performance_max_batch_rows=20_000, mongodb_timeout_seconds=60)
    await api.register("alice")
    base = f"{PREFIX}/experiment/{(await api.experiment('alice'))['id']}"
    assert MAX_BATCH_PROBABILITIES == 1_000_000
    r = await post(api, base + "/predictions", _many_classes(100, 10_001))
    assert problem(r, 413) == "max_rows"
    assert "at most 10000 rows" in r.json()["errors"][0]["reason"]
    assert (await post(api, base + "/predictions", _many_classes(100, 10))).status_code == 200
    ids = pa.array(np.arange(10_001).astype(str))
    labels = pa.table({"id": ids, "y_true": np.full(10_001, "c1")})
    assert problem(await post(api, base + "/ground-truth", labels), 413) == "max_rows"


async def test_deleting_the_experiment_deletes_its_performance_data(
    setup: tuple[Api, str],
) -> None:
    api, base = setup
    await post(api, base + "/predictions", {"columns": {"id": ["a", "b"], "y_pred": [1, 0]}})
    await post(api, base + "/ground-truth", {"columns": {"id": ["a"], "y_true": [1]}})
    await post(api, base + "/performance-reference", {"columns": {"y_true": [1], "y_pred": [1]}})
    client = connect(api.settings.mongodb_url.get_secret_value())
    try:
        db = client[api.settings.mongodb_database]
        experiment_id = base.rsplit("/", 1)[1]
        collections = ("performance_batches", "performance_windows", "performance_models")
        for name in collections:
            assert await db[name].count_documents({"experiment_id": experiment_id}) > 0
        r = await api.request("DELETE", base, "alice")
        assert r.status_code == 204, r.text
        for name in collections:
            assert await db[name].count_documents({"experiment_id": experiment_id}) == 0
    finally:
        await client.close()


async def test_an_experiments_deletion_leaves_ids_that_share_its_prefix(
    setup: tuple[Api, str],
) -> None:
    """Batches are deleted by their ``_id`` prefix ("<experiment>:"): experiments whose
    ids begin with the deleted one's, or that it begins with, keep theirs."""
    api, _ = setup
    ids = ("e1", "e1-2", "e10", "e1;", "e")
    models = ("m", "m;", ":")  # model names with the key's separators stay inside the range
    docs = [
        {"_id": stored.batch_key(repository.model_key(e, m), seq), "experiment_id": e, "model": m}
        for e in ids
        for m in models
        for seq in (1, 2, 10)
    ]
    client = connect(api.settings.mongodb_url.get_secret_value())
    try:
        db = client[api.settings.mongodb_database]
        await db[stored.BATCHES].insert_many(docs)
        await stored.delete_for_experiment(db, "e1")
        found = db[stored.BATCHES].find({"experiment_id": {"$in": ids}})
        left = {d["experiment_id"] async for d in found}
        assert left == set(ids) - {"e1"}
        for e in ids[1:]:
            assert await db[stored.BATCHES].count_documents({"experiment_id": e}) == 9
    finally:
        await client.close()


async def test_deleting_one_experiment_keeps_anothers_predictions(setup: tuple[Api, str]) -> None:
    api, base = setup
    other = f"{PREFIX}/experiment/{(await api.experiment('alice'))['id']}"
    for url in (base, other):
        await post(api, url + "/predictions", {"columns": {"id": ["a", "b"], "y_pred": [1, 0]}})
    r = await api.request("DELETE", base, "alice")
    assert r.status_code == 204, r.text
    client = connect(api.settings.mongodb_url.get_secret_value())
    try:
        db = client[api.settings.mongodb_database]
        gone, kept = base.rsplit("/", 1)[1], other.rsplit("/", 1)[1]
        batches = db[stored.BATCHES]
        assert await batches.count_documents({"experiment_id": gone}) == 0
        assert await batches.count_documents({"experiment_id": kept}) == 1
    finally:
        await client.close()
