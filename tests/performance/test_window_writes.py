"""Concurrent writers of one hour: label batches large enough to be added by
compare-and-swap, racing each other and a batch of predictions (added by ``$inc``), still
count every row exactly once."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import numpy as np
import pyarrow as pa
import pytest
from drift_backend.performance import repository
from drift_backend.store.database import connect
from sklearn import metrics as skm

from tests.conftest import Api
from tests.support.uploads import post_table

PREFIX = "/api/v1"
HOUR = datetime(2026, 2, 2, 10, tzinfo=UTC)
CLASSES = [str(k) for k in range(6)]


def predictions(ids: list[str], proba: np.ndarray) -> pa.Table:
    return pa.table(
        {
            "id": ids,
            "y_pred": [CLASSES[k] for k in proba.argmax(axis=1)],
            **{f"proba_{c}": proba[:, k] for k, c in enumerate(CLASSES)},
            "time": pa.array([HOUR + timedelta(minutes=5)] * len(ids), pa.timestamp("ms", "UTC")),
        }
    )


async def test_concurrent_label_batches_of_one_hour_count_each_row_once(patient: Api) -> None:
    api = patient
    await api.register("alice")
    exp = (await api.experiment("alice"))["id"]
    base = f"{PREFIX}/experiment/{exp}"
    rng = np.random.default_rng(3)
    n, parts = 900, 3
    proba = rng.dirichlet(np.ones(len(CLASSES)), n)
    ids = [f"r{i}" for i in range(n)]
    truth = np.array([CLASSES[k] for k in rng.integers(0, len(CLASSES), n)], dtype=object)
    late = 150  # predicted while the first label batches are written
    await post_table(api, base + "/predictions", predictions(ids[:-late], proba[:-late]), model="m")

    def labels(rows: range) -> pa.Table:
        return pa.table({"id": [ids[i] for i in rows], "y_true": list(truth[list(rows)])})

    size = (n - late) // parts
    batches = [labels(range(k * size, (k + 1) * size)) for k in range(parts)]
    answers = await asyncio.gather(
        *(post_table(api, base + "/ground-truth", b, model="m") for b in batches),
        post_table(api, base + "/predictions", predictions(ids[-late:], proba[-late:]), model="m"),
    )
    assert [a["labelled"] for a in answers[:parts]] == [size] * parts
    await post_table(api, base + "/ground-truth", labels(range(n - late, n)), model="m")

    r = await api.request(
        "GET",
        base + "/performance",
        "alice",
        params={
            "model": "m",
            "window": "hour",
            "from": HOUR.isoformat(),
            "to": (HOUR + timedelta(hours=1)).isoformat(),
        },
    )
    assert r.status_code == 200, r.text
    (window,) = r.json()["windows"]
    assert window["n_predicted"] == n
    assert window["n_labelled"] == n
    y_pred = np.array([CLASSES[k] for k in proba.argmax(axis=1)], dtype=object)
    order = window["confusion_matrix"]["labels"]
    expected = skm.confusion_matrix(list(truth), list(y_pred), labels=order)
    assert window["confusion_matrix"]["matrix"] == expected.tolist()
    truth_codes = np.array([CLASSES.index(t) for t in truth])
    assert window["metrics"]["log_loss"]["value"] == pytest.approx(
        skm.log_loss(truth_codes, proba, labels=list(range(len(CLASSES))))
    )


async def test_swapped_and_incremented_additions_to_an_hour_are_all_kept(api: Api) -> None:
    """Large additions (compare-and-swap) and small ones (``$inc``) to one hour, all at
    once: the hour holds their sum."""
    client = connect(api.settings.mongodb_url.get_secret_value())
    try:
        db = client[api.settings.mongodb_database]
        large = {f"s.h.{k}": 1 for k in range(repository.INC_PATHS + 10)}
        writes = [
            repository.add_to_windows(db, "exp-cas", "m", {7: large if i % 2 else {"n_pred": 1}})
            for i in range(12)
        ]
        await asyncio.gather(*writes)
        doc = await db[repository.WINDOWS].find_one(
            {"_id": repository.window_key("exp-cas", "m", 7)}
        )
        assert doc is not None
        assert doc["n_pred"] == 6
        assert doc["s"]["h"] == {str(k): 6 for k in range(repository.INC_PATHS + 10)}
        assert doc["v"] == 12
    finally:
        await client.close()


async def test_concurrent_first_batches_of_a_new_model_and_hour_are_all_taken(patient: Api) -> None:
    api = patient
    """The model's document and its hour's are made by whichever batch comes first; the
    others add to them (an upsert that loses the race is not an error)."""
    await api.register("alice")
    exp = (await api.experiment("alice"))["id"]
    base = f"{PREFIX}/experiment/{exp}"
    rng = np.random.default_rng(4)
    parts, size = 6, 20
    proba = rng.dirichlet(np.ones(len(CLASSES)), parts * size)
    ids = [f"c{i}" for i in range(parts * size)]
    answers = await asyncio.gather(
        *(
            post_table(
                api, base + "/predictions", predictions(ids[k::parts], proba[k::parts]), model="m"
            )
            for k in range(parts)
        )
    )
    assert [a["recorded"] for a in answers] == [size] * parts
