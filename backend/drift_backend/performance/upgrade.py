"""At start-up: move predictions stored one document each (versions before the batches) into
stored batches, so their late labels still join.

An old prediction document: ``_id`` the model's key and the prediction id, ``time``, ``y``,
``p`` (probabilities in the model's class order), ``run``; once labelled ``t`` (the label)
and ``lt`` (its time); unlabelled ones ``expires_at``. Their windows were counted when they
were recorded, so the batches made here are stored as applied and add nothing to them: per
model, predictions batches of at most ``BATCH`` rows (in ``_id`` order, each expiring with
its latest unlabelled prediction) and one label batch holding the labelled ones' joined rows,
after any batch the model has; then the old documents go. A start-up that dies halfway
finds the model's batches marked ``migrated`` and only deletes what is left.
"""

from __future__ import annotations

import itertools
import logging
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from bson.binary import Binary

from drift_backend.performance import applier, repository, stored
from drift_backend.performance.columns import Joined, Labels, Predictions, ids_table, to_ipc
from drift_backend.schemas import utcnow
from drift_backend.store.database import Database, Document

log = logging.getLogger(__name__)

OLD = "predictions"
BATCH = 10_000


def _naive_ms(moment: datetime) -> np.datetime64:
    return np.datetime64(moment.replace(tzinfo=None), "ms")


async def prepare(db: Database) -> int:
    """Move every model's old prediction documents; how many moved."""
    moved = 0
    while (some := await db[OLD].find_one({}, {"experiment_id": 1, "model": 1})) is not None:
        model_doc = await repository.get_model(db, some["experiment_id"], some["model"])
        key = repository.model_key(some["experiment_id"], some["model"])
        scope = {"_id": {"$gte": f"{key}:", "$lt": f"{key};"}}
        if model_doc is None:  # nothing can read them
            await db[OLD].delete_many(scope)
            continue
        async with applier.session(db, model_doc) as model_applier:
            if not await stored.any_migrated(db, key):
                docs = [doc async for doc in db[OLD].find(scope).sort("_id", 1)]
                await _move(db, model_applier, key, docs)
                moved += len(docs)
            await db[OLD].delete_many(scope)
    if moved:
        log.info("moved %d predictions stored one document each into batches", moved)
    return moved


async def _move(
    db: Database, model_applier: applier.Applier, key: str, docs: list[Document]
) -> None:
    regression = model_applier.regression
    n_classes = len(model_applier.classes)
    target: Any = np.float64 if regression else object
    prefix = len(key) + 1
    labelled = [doc for doc in docs if "t" in doc]
    seq = model_applier.applied
    # A batch has one drift run: the predictions grouped by theirs.
    by_run = sorted(docs, key=lambda doc: (doc.get("run") or "", doc["_id"]))
    parts = [
        chunk[start : start + BATCH]
        for _, group in itertools.groupby(by_run, key=lambda doc: doc.get("run") or "")
        for chunk in [list(group)]
        for start in range(0, len(chunk), BATCH)
    ]
    for part in parts:
        ids = np.array([doc["_id"][prefix:] for doc in part], dtype=object)
        proba = None
        if n_classes and any(doc.get("p") is not None for doc in part):
            proba = np.array(
                [doc.get("p") or [np.nan] * n_classes for doc in part], dtype=np.float64
            )
        batch = Predictions(
            ids=ids,
            times=np.array([_naive_ms(doc["time"]) for doc in part], dtype="datetime64[ms]"),
            y=np.array([doc["y"] for doc in part], dtype=target),
            proba=proba,
        )
        expiring = [doc["expires_at"] for doc in part if doc.get("expires_at") is not None]
        seq += 1
        await _insert(
            db,
            model_applier,
            seq,
            "p",
            ids,
            batch.encode(regression),
            {
                "run": part[0].get("run"),
                "run_created_at": None,
                "expires_at": max(expiring) if expiring else utcnow() + timedelta(days=36500),
                "outcome": {"received": len(part), "recorded": len(part), "duplicates": 0},
                "dups": Binary(b""),
            },
        )
    if labelled:
        ids = np.array([doc["_id"][prefix:] for doc in labelled], dtype=object)
        labels = Labels(
            ids=ids,
            y=np.array([doc["t"] for doc in labelled], dtype=target),
            times=np.array([_naive_ms(doc["lt"]) for doc in labelled], dtype="datetime64[ms]"),
        )
        proba = None
        if n_classes:
            proba = np.array(
                [doc.get("p") or [np.nan] * n_classes for doc in labelled], dtype=np.float64
            )
        joined = Joined(
            ids=ids,
            y_true=labels.y,
            label_times=labels.times,
            times=np.array([_naive_ms(doc["time"]) for doc in labelled], dtype="datetime64[ms]"),
            y_pred=np.array([doc["y"] for doc in labelled], dtype=target),
            proba=proba,
            runs=np.array([doc.get("run") or "" for doc in labelled], dtype=object),
        )
        seq += 1
        await _insert(
            db,
            model_applier,
            seq,
            "l",
            ids,
            labels.encode(regression),
            {
                "outcome": {"received": len(ids), "labelled": len(ids)},
                "joined": Binary(joined.encode(regression)),
                "jids": Binary(to_ipc(ids_table(ids))),
            },
        )
    await repository.note_applied(db, key, seq)
    await repository.new_generation(db, key)


async def _insert(
    db: Database,
    model_applier: applier.Applier,
    seq: int,
    kind: str,
    ids: np.ndarray,
    data: bytes,
    extra: Document,
) -> None:
    await repository.note_stored(db, model_applier.key, seq)
    document = model_applier.document(seq, kind, ids, data, {"migrated": True, **extra})
    await stored.insert(db, document)
