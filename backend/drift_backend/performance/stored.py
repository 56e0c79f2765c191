"""The ``performance_batches`` collection (owned here, with :mod:`.repository`): every
accepted predictions or labels batch of a model, one insert-only document each, in the
order its model's applier applies them.

``_id`` is the model's key and the batch's ``seq`` (zero-padded, so the primary index
holds a model's batches in order); ``kind`` ``"p"`` (predictions) or ``"l"`` (labels);
``ids`` and ``data`` the batch as Arrow IPC (:mod:`.columns`); a prediction batch's ``run``
(the drift run it was recorded with, or None) and ``expires_at`` (when its unlabelled
predictions expire: a TTL index removes the document then); once applied, ``outcome``
(what the request answered), a prediction batch's ``dups`` (the rows not recorded: ids
recorded before) and a label batch's ``joined`` rows.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any

from drift_backend.store.database import Database, Document

BATCHES = "performance_batches"
#: Batches read per round trip while an applier catches up or rebuilds its index.
READ_BATCH = 16


def batch_key(model_key: str, seq: int) -> str:
    return f"{model_key}:{seq:012d}"


def _range(model_key: str, after: int, upto: int | None) -> Document:
    high = batch_key(model_key, upto) if upto is not None else f"{model_key};"
    return {
        "_id": {"$gt": batch_key(model_key, after), "$lte" if upto is not None else "$lt": high}
    }


async def insert(db: Database, doc: Document) -> None:
    await db[BATCHES].insert_one(doc)


async def read(
    db: Database,
    model_key: str,
    after: int,
    upto: int | None = None,
    fields: Mapping[str, Any] | None = None,
) -> AsyncIterator[Document]:
    """The model's batches with ``after < seq <= upto`` in order (``fields``: a projection)."""
    cursor = (
        db[BATCHES]
        .find(_range(model_key, after, upto), dict(fields) if fields else None)
        .sort("_id", 1)
        .batch_size(READ_BATCH)
    )
    async for doc in cursor:
        yield doc


async def get(
    db: Database, model_key: str, seq: int, fields: Mapping[str, Any] | None = None
) -> Document | None:
    return await db[BATCHES].find_one(
        {"_id": batch_key(model_key, seq)}, dict(fields) if fields else None
    )


async def get_many(
    db: Database, model_key: str, seqs: list[int], fields: Mapping[str, Any] | None = None
) -> list[Document]:
    keys = [batch_key(model_key, seq) for seq in seqs]
    cursor = db[BATCHES].find({"_id": {"$in": keys}}, dict(fields) if fields else None)
    return [doc async for doc in cursor]


async def set_applied(db: Database, model_key: str, seq: int, fields: Document) -> None:
    """Record what applying the batch gave (its outcome, duplicate rows, joined rows)."""
    await db[BATCHES].update_one({"_id": batch_key(model_key, seq)}, {"$set": fields})


async def any_migrated(db: Database, model_key: str) -> bool:
    """Whether the model has batches an upgrade made (``performance/upgrade.py``)."""
    query = {**_range(model_key, 0, None), "migrated": True}
    return await db[BATCHES].find_one(query, {"_id": 1}) is not None


async def delete_for_experiment(db: Database, experiment_id: str) -> None:
    # By _id prefix (every key starts "<experiment>:"; ';' follows ':'): the primary index.
    await db[BATCHES].delete_many(
        {"_id": {"$gte": f"{experiment_id}:", "$lt": f"{experiment_id};"}}
    )
