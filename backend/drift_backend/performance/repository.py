"""The performance collections (owned here and in :mod:`.stored`; other domains call
:mod:`.service`):

- ``performance_batches`` (:mod:`.stored`): every predictions or labels batch, as Arrow.
- ``performance_windows``: one document per (experiment, model, hour) of counts and sums
  (:mod:`.windows`), only ever added to: by ``$inc`` (and ``$max`` for the longest lag), or
  by a compare-and-swap on its version ``v`` for a large addition (:func:`add_to_windows`);
  ``a`` is the last batch added to it (:mod:`.applier`).
- ``performance_models``: one document per (experiment, model): its task, its probability
  classes, the constant regression sums are shifted by, its labelled reference, and its
  applier's ``lease``, ``stored`` and ``applied`` batch numbers.
- ``performance_runs``: one document per (experiment, model, drift run) with the hour
  documents' counts and sums over the predictions recorded with that run, added to the
  same way (:func:`add_to_runs`); ``run_created_at`` (the run's, copied when the document
  is made) orders a model's runs newest first, a keyset page at a time (:func:`page_runs`).
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

import bson
from bson.binary import Binary
from pymongo import ReturnDocument
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError

from drift_backend.performance.windows import add_cells, hour_start
from drift_backend.schemas import utcnow
from drift_backend.store.database import Database, Document
from drift_backend.store.keyset import Cursor, KeysetPage, keyset_page

WINDOWS = "performance_windows"
MODELS = "performance_models"
RUNS = "performance_runs"
#: The hour and run documents: both added to by :func:`_add`.
Collection = AsyncCollection[Document]


def model_key(experiment_id: str, model: str) -> str:
    # The model's length first: no model name can make two keys equal.
    return f"{experiment_id}:{len(model)}:{model}"


def window_key(experiment_id: str, model: str, hour: int) -> str:
    return f"{model_key(experiment_id, model)}:{hour}"


def run_key(experiment_id: str, model: str, run_id: str) -> str:
    return f"{model_key(experiment_id, model)}:{run_id}"


# --- models --------------------------------------------------------------------------------------


async def get_model(db: Database, experiment_id: str, model: str) -> Document | None:
    return await db[MODELS].find_one({"_id": model_key(experiment_id, model)})


async def create_model(db: Database, doc: Document) -> Document:
    """The model's document: ``doc`` if it is the first, else the one stored before."""
    try:
        stored = await db[MODELS].find_one_and_update(
            {"_id": doc["_id"]},
            {"$setOnInsert": doc},
            upsert=True,
            return_document=ReturnDocument.AFTER,
        )
    except DuplicateKeyError:
        stored = None
    if stored is None:
        # Concurrent first batches: the upsert that lost the race may fail, or (SecantusDB)
        # answer no document; the winner's is there now.
        stored = await db[MODELS].find_one({"_id": doc["_id"]})
    assert stored is not None
    return stored


async def set_reference(
    db: Database, experiment_id: str, model: str, reference: Mapping[str, Any]
) -> None:
    await db[MODELS].update_one(
        {"_id": model_key(experiment_id, model)}, {"$set": {"reference": dict(reference)}}
    )


async def set_classes(db: Database, key: str, classes: list[str]) -> Document | None:
    """Give a model its probability classes if it has none yet; the model as it now is."""
    await db[MODELS].update_one({"_id": key, "classes": []}, {"$set": {"classes": classes}})
    return await db[MODELS].find_one({"_id": key})


async def add_labels(db: Database, key: str, labels: list[str]) -> None:
    """Labels a classification model's batches brought (``labels``: every value seen)."""
    await db[MODELS].update_one({"_id": key}, {"$addToSet": {"labels": {"$each": labels}}})


async def set_shift(db: Database, key: str, shift: float) -> None:
    """Fix the constant a regression model's sums are shifted by, once."""
    await db[MODELS].update_one({"_id": key, "shift": None}, {"$set": {"shift": shift}})


async def list_models(db: Database, experiment_id: str) -> list[Document]:
    cursor = db[MODELS].find({"experiment_id": experiment_id}).sort("model", 1)
    return [doc async for doc in cursor]


# --- the applier's lease and progress (see applier.py) -----------------------------------------


async def take_lease(db: Database, key: str, owner: str, seconds: float) -> Document | None:
    """Make ``owner`` the model's applier until ``seconds`` from now, if no other holds it
    (or the other's lease ran out); the model's document then, else None."""
    now = utcnow()
    return await db[MODELS].find_one_and_update(
        # Not an $or of "no lease" and "expired": SecantusDB scans every model for an $or
        # beside _id; a missing lease's "until" is not >= now either.
        {"_id": key, "lease.until": {"$not": {"$gte": now}}},
        {"$set": {"lease": {"owner": owner, "until": now + timedelta(seconds=seconds)}}},
        return_document=ReturnDocument.AFTER,
    )


async def renew_lease(db: Database, key: str, owner: str, seconds: float) -> bool:
    until = utcnow() + timedelta(seconds=seconds)
    found = await db[MODELS].update_one(
        {"_id": key, "lease.owner": owner}, {"$set": {"lease.until": until}}
    )
    return bool(found.matched_count)


async def release_lease(db: Database, key: str, owner: str) -> None:
    await db[MODELS].update_one({"_id": key, "lease.owner": owner}, {"$set": {"lease": None}})


async def note_stored(db: Database, key: str, seq: int) -> None:
    """A batch ``seq`` is about to be stored (a model whose ``stored`` passes its ``applied``
    and whose lease ran out has batches a dead applier left: the workers' tick applies them)."""
    await db[MODELS].update_one({"_id": key}, {"$max": {"stored": seq}})


async def note_applied(db: Database, key: str, seq: int) -> None:
    await db[MODELS].update_one({"_id": key}, {"$max": {"applied": seq, "stored": seq}})


async def new_generation(db: Database, key: str) -> None:
    """The model's batches were rewritten: every process builds its index of them again."""
    await db[MODELS].update_one({"_id": key}, {"$set": {"generation": uuid.uuid4().hex}})


async def stale_models(db: Database, limit: int = 100) -> list[Document]:
    """Models with stored batches not applied and no live applier."""
    cursor = (
        db[MODELS]
        .find(
            {
                "$expr": {"$gt": [{"$ifNull": ["$stored", 0]}, {"$ifNull": ["$applied", 0]}]},
                "$or": [{"lease": None}, {"lease.until": {"$lt": utcnow()}}],
            },
            {"experiment_id": 1, "model": 1},
        )
        .limit(limit)
    )
    return [doc async for doc in cursor]


# --- windows -------------------------------------------------------------------------------------


#: An hour whose increment has at most this many field paths is changed by ``$inc``; a
#: larger one (a label batch's confusion cells, calibration bins and ROC score histograms:
#: thousands of paths for a ten-class model) by compare-and-swap: SecantusDB (the test
#: database) applies 1,500-2,500 ``$inc`` paths a second, but reads and replaces a whole
#: 20,000-field hour in 30-100 ms.
INC_PATHS = 64
#: Tries of a compare-and-swap that lost to another writer of the same hour (each lost try
#: means that writer's change went in: the writers as a whole always progress).
SWAP_ATTEMPTS = 50


def _apply(doc: Document, inc: Mapping[str, float | int]) -> None:
    """Add the flat ``$inc`` paths (``"s.cm.a.b"``) into the nested ``doc`` in place, as
    MongoDB's ``$inc`` would."""
    parents: dict[str, Document] = {"": doc}  # paths share parents (a bin's "p" and "n")
    for path, value in inc.items():
        parent, _, leaf = path.rpartition(".")
        node = parents.get(parent)
        if node is None:
            node = doc
            for part in parent.split("."):
                node = node.setdefault(part, {})
            parents[parent] = node
        node[leaf] = node.get(leaf, 0) + value


#: The parts of an hour (or run) that make it large — the ROC score histograms and the
#: estimator's score counts, thousands of cells for a ten-class model — kept by a
#: compare-and-swap as one BSON binary ``b`` of their flat paths (``"s.auc.3.512.p"``)
#: rather than as fields: SecantusDB (the test database) reads and replaces a 20,000-field
#: document in 30-100 ms, the same cells packed in 2-3 ms, and flat paths add up without
#: walking a tree. A document's sums are its fields plus its packed cells (:func:`unpack`);
#: an ``$inc`` of a few such cells may still add them as fields.
PACKED = ("s.auc.", "m.", "e.")


def unpack(doc: Mapping[str, Any]) -> dict[str, float | int]:
    """The cells a document keeps packed, by flat path (escaped; empty if none)."""
    data = doc.get("b")
    return bson.decode(data) if data is not None else {}


def pack(cells: Mapping[str, float | int]) -> Binary:
    return Binary(bson.encode(cells))


def nest(cells: Mapping[str, Any]) -> Document:
    """Flat paths as the nested document their fields would make."""
    out: Document = {}
    _apply(out, cells)
    return out


async def _swap(
    documents: Collection,
    key: str,
    fields: Document,
    inc: Mapping[str, float | int],
    lag_max: float | None,
    seq: int | None,
) -> None:
    """Read the document (an hour, a run), add ``inc`` in memory, and write it back only if
    no writer changed it in between (its version ``v``, which every write of it increments);
    else again."""
    for _ in range(SWAP_ATTEMPTS):
        doc = await documents.find_one({"_id": key})
        if doc is not None and seq is not None and doc.get("a", 0) >= seq:
            return  # this batch is in already
        version = None if doc is None else doc.get("v")
        new: Document = dict(doc) if doc is not None else {"_id": key, **fields}
        heavy = {path: value for path, value in inc.items() if path.startswith(PACKED)}
        _apply(new, {path: value for path, value in inc.items() if path not in heavy})
        if heavy:
            packed = unpack(new)
            add_cells(packed, heavy)
            new["b"] = pack(packed)
        new["v"] = (version or 0) + 1
        if seq is not None:
            new["a"] = seq
        if lag_max is not None:
            new["lag_max"] = max(new.get("lag_max", lag_max), lag_max)
        if doc is None:
            try:
                await documents.insert_one(new)
            except DuplicateKeyError:
                continue  # another writer made the document first: add to theirs
            return
        replaced = await documents.replace_one({"_id": key, "v": version}, new)
        if replaced.matched_count:
            return
    raise RuntimeError(f"{documents.name} {key}: too many concurrent writers")


async def _add(
    documents: Collection,
    key: str,
    fields: Document,
    inc: Mapping[str, float | int],
    longest: float | None,
    seq: int | None = None,
) -> None:
    """Add ``inc`` to one document (made with ``fields`` on first use), exactly once: a
    small increment by ``$inc``, a large one by compare-and-swap (:func:`_swap`). Both
    increment the version ``v``, so a swap never overwrites an ``$inc`` it did not see; any
    other writer of these documents must increment ``v`` too.

    ``seq``: the applier's batch (``a`` on the document is the last batch added to it): a
    batch applied again after its applier died adds nothing to the documents it reached."""
    if len(inc) > INC_PATHS:
        await _swap(documents, key, fields, inc, longest, seq)
        return
    update: Document = {"$inc": {**inc, "v": 1}, "$setOnInsert": fields}
    if longest is not None:
        update["$max"] = {"lag_max": longest}
    if seq is not None:
        update["$set"] = {"a": seq}
        # A duplicate key: the document has this batch already (its ``a`` is not below).
        with contextlib.suppress(DuplicateKeyError):
            await documents.update_one(
                {"_id": key, "a": {"$not": {"$gte": seq}}}, update, upsert=True
            )
        return
    try:
        await documents.update_one({"_id": key}, update, upsert=True)
    except DuplicateKeyError:
        # Another writer made the document between this upsert's look-up and its insert;
        # the failed upsert changed nothing, so adding to theirs now counts once.
        await documents.update_one({"_id": key}, update, upsert=True)


async def add_to_windows(
    db: Database,
    experiment_id: str,
    model: str,
    increments: Mapping[int, Mapping[str, float | int]],
    lag_max: Mapping[int, float] | None = None,
    seq: int | None = None,
) -> None:
    """Add each hour's increments to its document (made on first use), exactly once
    (:func:`_add`)."""
    for hour, inc in increments.items():
        key = window_key(experiment_id, model, hour)
        fields = {"experiment_id": experiment_id, "model": model, "start": hour_start(hour)}
        longest = lag_max.get(hour) if lag_max else None
        await _add(db[WINDOWS], key, fields, inc, longest, seq)


async def add_to_runs(
    db: Database,
    experiment_id: str,
    model: str,
    increments: Mapping[str, Mapping[str, float | int]],
    created: Mapping[str, datetime],
    lag_max: Mapping[str, float] | None = None,
    seq: int | None = None,
) -> None:
    """Add each run's increments to its document, as :func:`add_to_windows` does for hours.
    ``created``: each run's creation time (the order runs are listed in); a run missing
    there (deleted meanwhile) gets no document."""
    for run_id, inc in increments.items():
        if run_id not in created:
            continue
        key = run_key(experiment_id, model, run_id)
        fields = run_fields(experiment_id, model, run_id, created[run_id])
        longest = lag_max.get(run_id) if lag_max else None
        await _add(db[RUNS], key, fields, inc, longest, seq)


def run_fields(experiment_id: str, model: str, run_id: str, created: datetime) -> Document:
    return {
        "experiment_id": experiment_id,
        "model": model,
        "run_id": run_id,
        "run_created_at": created,
    }


async def read_windows(
    db: Database, experiment_id: str, model: str, start: datetime, end: datetime
) -> list[Document]:
    cursor = (
        db[WINDOWS]
        .find(
            {"experiment_id": experiment_id, "model": model, "start": {"$gte": start, "$lt": end}}
        )
        .sort("start", 1)
    )
    return [doc async for doc in cursor]


async def page_runs(
    db: Database,
    experiment_id: str,
    model: str,
    *,
    after: Cursor | None,
    before: Cursor | None,
    limit: int,
) -> KeysetPage:
    """One keyset page of a model's run documents, newest run first by (``run_created_at``,
    ``_id``), after (older than) or before (newer than) a cursor: the index on (experiment,
    model, run_created_at, _id) serves it, and no count is made, so a page costs what it
    holds however many runs the model has. A cursor names the run by its id (the ``_id``
    without the model's prefix, which orders the same way within a model)."""
    return await keyset_page(
        db[RUNS],
        {"experiment_id": experiment_id, "model": model},
        after=after,
        before=before,
        limit=limit,
        now=utcnow(),
        time="run_created_at",
        id_prefix=run_key(experiment_id, model, ""),
    )


async def get_run(db: Database, experiment_id: str, model: str, run_id: str) -> Document | None:
    return await db[RUNS].find_one({"_id": run_key(experiment_id, model, run_id)})


async def delete_run(db: Database, experiment_id: str, run_id: str) -> None:
    """A deleted run's documents (its predictions keep the id: a recount skips runs that
    no longer exist)."""
    await db[RUNS].delete_many({"experiment_id": experiment_id, "run_id": run_id})


# --- deletion ------------------------------------------------------------------------------------


async def delete_for_experiment(db: Database, experiment_id: str) -> None:
    await db[WINDOWS].delete_many({"experiment_id": experiment_id})
    await db[MODELS].delete_many({"experiment_id": experiment_id})
    await db[RUNS].delete_many({"experiment_id": experiment_id})
