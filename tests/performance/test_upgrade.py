"""A deployment from before the batches kept one document per prediction: start-up moves them
into batches, and their late labels still join."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from drift_backend.performance import repository, stored, upgrade
from drift_backend.performance.columns import decode_joined, decode_predictions
from drift_backend.schemas import utcnow
from drift_backend.store.database import Database, Document, connect

from tests.conftest import Api
from tests.performance.test_recount import (
    _data,
    _labels,
    _post,
    _predictions,
    _same,
    _windows,
    send,
)


@pytest.fixture
async def db(api: Api) -> AsyncIterator[Database]:
    client = connect(api.settings.mongodb_url.get_secret_value())
    yield client[api.settings.mongodb_database]
    await client.close()


async def to_old_layout(db: Database, exp: str, model: str) -> int:
    """The model's batches as the documents versions before them kept: one per prediction,
    labelled ones with their label."""
    key = repository.model_key(exp, model)
    docs: dict[str, Document] = {}
    model_doc = await repository.get_model(db, exp, model)
    assert model_doc is not None
    async for batch in stored.read(db, key, 0, int(model_doc["applied"])):
        if batch["kind"] == "p":
            rows = decode_predictions(batch["ids"], batch["data"], False, 2)
            assert rows.proba is not None
            for i, prediction_id in enumerate(rows.ids):
                docs.setdefault(
                    prediction_id,
                    {
                        "_id": f"{key}:{prediction_id}",
                        "experiment_id": exp,
                        "model": model,
                        "time": rows.times[i].astype(object),
                        "y": rows.y[i],
                        "p": rows.proba[i].tolist(),
                        "expires_at": utcnow() + timedelta(days=30),
                    },
                )
        else:
            joined = decode_joined(batch["joined"], False, 2)
            for i, prediction_id in enumerate(joined.ids):
                doc = docs[prediction_id]
                doc.pop("expires_at", None)
                doc.update({"t": joined.y_true[i], "lt": joined.label_times[i].astype(object)})
    await db.predictions.insert_many(list(docs.values()))
    await stored.delete_for_experiment(db, exp)
    await db[repository.MODELS].update_one({"_id": key}, {"$unset": {"applied": "", "stored": ""}})
    return len(docs)


async def test_start_up_moves_old_predictions_into_batches(api: Api, db: Database) -> None:
    await api.register("alice")
    exp = (await api.experiment("alice"))["id"]
    d = _data(300)
    for model in ("whole", "m"):
        await _post(api, exp, model, "/predictions", _predictions(d, slice(0, 300)))
        await _post(api, exp, model, "/ground-truth", _labels(d, slice(0, 200)))
    assert await to_old_layout(db, exp, "m") == 300
    assert await upgrade.prepare(db) == 300
    assert await db.predictions.count_documents({}) == 0
    assert await upgrade.prepare(db) == 0  # the next start-up: nothing to do
    # Old labels change, new ones join old predictions, re-sent ids are duplicates: as for
    # the model that never left the batches.
    answers: dict[str, list[Any]] = {}
    for model in ("whole", "m"):
        changed = _labels(d, slice(0, 50), 1 - d["true"][:50])
        answers[model] = [
            await send(api, exp, model, "/ground-truth", changed),
            await send(api, exp, model, "/ground-truth", _labels(d, slice(200, 300))),
            await send(api, exp, model, "/predictions", _predictions(d, slice(0, 10))),
        ]
    assert answers["m"] == answers["whole"]
    assert [[a.get("changed"), a.get("labelled"), a.get("duplicates")] for a in answers["m"]] == [
        [50, 0, None],
        [0, 100, None],
        [None, None, 10],
    ]
    _same(await _windows(api, exp, "m"), await _windows(api, exp, "whole"))
    assert sum(w["n_labelled"] for w in await _windows(api, exp, "m")) == 300
