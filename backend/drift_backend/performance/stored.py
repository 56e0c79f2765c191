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
#: Batch numbers asked for per query while reading a model's batches in order (SecantusDB
#: holds every batch a query finds in memory at once: 64 label batches are about 100 MB).
READ_KEYS = 64


def batch_key(model_key: str, seq: int) -> str:
    return f"{model_key}:{seq:012d}"


def _scope(model_key: str) -> Document:
    # Every key of the model starts "<model key>:"; ';' follows ':'.
    return {"_id": {"$gt": f"{model_key}:", "$lt": f"{model_key};"}}


async def insert(db: Database, doc: Document) -> None:
    await db[BATCHES].insert_one(doc)


async def read(
    db: Database,
    model_key: str,
    after: int,
    upto: int,
    fields: Mapping[str, Any] | None = None,
) -> AsyncIterator[Document]:
    """The model's batches with ``after < seq <= upto`` in order (``fields``: a projection).

    By their keys (``$in``, ``READ_KEYS`` at a time), not by a range of ``_id``: SecantusDB plans
    an ``_id`` range as a collection scan, decoding every batch of every model on each
    read (a third of its CPU time in the 1,000,000-row benchmark); exact keys are index
    look-ups everywhere. Numbers with no batch (expired, or never stored) cost nothing."""
    for low in range(after + 1, upto + 1, READ_KEYS):
        keys = [batch_key(model_key, seq) for seq in range(low, min(low + READ_KEYS, upto + 1))]
        cursor = (
            db[BATCHES]
            .find({"_id": {"$in": keys}}, dict(fields) if fields else None)
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
    query = {**_scope(model_key), "migrated": True}
    return await db[BATCHES].find_one(query, {"_id": 1}) is not None


async def delete_for_experiment(db: Database, experiment_id: str) -> None:
    # By _id prefix (every key starts "<experiment>:"; ';' follows ':'): the primary index.
    await db[BATCHES].delete_many(
        {"_id": {"$gte": f"{experiment_id}:", "$lt": f"{experiment_id};"}}
    )
