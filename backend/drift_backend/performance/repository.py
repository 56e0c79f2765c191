"""The performance collections (owned here; other domains call :mod:`.service`):

- ``predictions``: one document per (experiment, model, prediction id), ``_id``
  :func:`prediction_key`, so a late label is one update by ``_id``. ``y`` the prediction,
  ``p`` its class probabilities (in the model's class order), ``time``; once labelled ``t``
  (the label), ``lt`` (its time) and ``w`` (the last label writers, see the service).
  Unlabelled predictions carry ``expires_at``, which a TTL index acts on; a label removes it.
- ``performance_windows``: one document per (experiment, model, hour) of counts and sums
  (:mod:`.windows`), only ever added to: by ``$inc`` (and ``$max`` for the longest lag), or
  by a compare-and-swap on its version ``v`` for a large addition (:func:`add_to_windows`).
- ``performance_models``: one document per (experiment, model): its task, its probability
  classes, the constant regression sums are shifted by, and its labelled reference.
- ``performance_runs``: one document per (experiment, model, drift run) with the hour
  documents' counts and sums over the predictions recorded with that run (``run`` on the
  prediction), added to the same way (:func:`add_to_runs`); ``run_created_at`` (the run's,
  copied when the document is made) orders a model's runs newest first, a keyset page at a
  time (:func:`page_runs`).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from pymongo import ReturnDocument, UpdateOne
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError

from drift_backend.performance.windows import hour_start
from drift_backend.schemas import utcnow
from drift_backend.store.bulk import insert_new
from drift_backend.store.database import Database, Document
from drift_backend.store.keyset import Cursor, KeysetPage, keyset_page

PREDICTIONS = "predictions"
WINDOWS = "performance_windows"
MODELS = "performance_models"
RUNS = "performance_runs"
#: The hour and run documents: both added to by :func:`_add`.
Collection = AsyncCollection[Document]


def model_key(experiment_id: str, model: str) -> str:
    # The model's length first: no model name can make two keys equal.
    return f"{experiment_id}:{len(model)}:{model}"


def prediction_key(experiment_id: str, model: str, prediction_id: str) -> str:
    return f"{model_key(experiment_id, model)}:{prediction_id}"


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


async def set_shift(db: Database, key: str, shift: float) -> None:
    """Fix the constant a regression model's sums are shifted by, once."""
    await db[MODELS].update_one({"_id": key, "shift": None}, {"$set": {"shift": shift}})


async def list_models(db: Database, experiment_id: str) -> list[Document]:
    cursor = db[MODELS].find({"experiment_id": experiment_id}).sort("model", 1)
    return [doc async for doc in cursor]


# --- predictions ---------------------------------------------------------------------------------


#: Documents per bulk write: each write is one operation under the per-operation bound
#: (``DRIFT_MONGODB_TIMEOUT_SECONDS``), and a single-threaded server (SecantusDB) serves
#: nothing else while it runs one, so a batch at the row limit goes in parts (10,000
#: conditional label updates in one write took over 5 s there).
WRITE_CHUNK = 1000
#: Conditional label updates per bulk write: an update costs SecantusDB several times an
#: insert (it maintains the TTL index), and 1,000 of them took 3-5 s on a busy machine,
#: at the edge of the default 5 s operation timeout.
LABEL_WRITE_CHUNK = 250


async def insert_predictions(db: Database, docs: list[Document]) -> set[int]:
    """Insert the new ones; the positions in ``docs`` of those already stored (the first
    prediction of an id wins)."""
    stored: set[int] = set()
    for start in range(0, len(docs), WRITE_CHUNK):
        there = await insert_new(db[PREDICTIONS], docs[start : start + WRITE_CHUNK])
        stored |= {start + index for index in there}
    return stored


#: Keys per ``$in`` look-up. MongoDB takes thousands at no extra cost per key; SecantusDB
#: (the test database) spends time growing with the square of the list (0.03 s for 100 keys,
#: 2.8 s for 1000), so lists stay short.
LOOKUP_CHUNK = 100


async def find_predictions(db: Database, keys: list[str]) -> list[Document]:
    found: list[Document] = []
    for start in range(0, len(keys), LOOKUP_CHUNK):
        cursor = db[PREDICTIONS].find(
            {"_id": {"$in": keys[start : start + LOOKUP_CHUNK]}},
            {"time": 1, "y": 1, "p": 1, "t": 1, "lt": 1, "w": 1, "run": 1},
        )
        found.extend([doc async for doc in cursor])
    return found


async def set_labels(db: Database, updates: list[UpdateOne]) -> int:
    """Conditional label writes; how many applied."""
    applied = 0
    for start in range(0, len(updates), LABEL_WRITE_CHUNK):
        result = await db[PREDICTIONS].bulk_write(
            updates[start : start + LABEL_WRITE_CHUNK], ordered=False
        )
        applied += int(result.modified_count)
    return applied


def label_update(
    key: str, old: Document | None, label: Any, label_time: datetime, writer: str
) -> UpdateOne:
    """Set the label of ``key`` if it is still ``old`` (its label and time, or none): a
    concurrent writer's change makes this one a no-op, which the service then sees."""
    condition: Document = {"_id": key}
    if old is None:
        condition["t"] = {"$exists": False}
    else:
        condition.update(old)
    return UpdateOne(
        condition,
        {
            "$set": {"t": label, "lt": label_time},
            "$unset": {"expires_at": ""},
            "$push": {"w": {"$each": [writer], "$slice": -8}},
        },
    )


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
    for path, value in inc.items():
        *parents, leaf = path.split(".")
        node = doc
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = node.get(leaf, 0) + value


async def _swap(
    documents: Collection,
    key: str,
    fields: Document,
    inc: Mapping[str, float | int],
    lag_max: float | None,
) -> None:
    """Read the document (an hour, a run), add ``inc`` in memory, and write it back only if
    no writer changed it in between (its version ``v``, which every write of it increments);
    else again."""
    for _ in range(SWAP_ATTEMPTS):
        doc = await documents.find_one({"_id": key})
        version = None if doc is None else doc.get("v")
        new: Document = dict(doc) if doc is not None else {"_id": key, **fields}
        _apply(new, inc)
        new["v"] = (version or 0) + 1
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
) -> None:
    """Add ``inc`` to one document (made with ``fields`` on first use), exactly once: a
    small increment by ``$inc``, a large one by compare-and-swap (:func:`_swap`). Both
    increment the version ``v``, so a swap never overwrites an ``$inc`` it did not see; any
    other writer of these documents must increment ``v`` too."""
    if len(inc) > INC_PATHS:
        await _swap(documents, key, fields, inc, longest)
        return
    update: Document = {"$inc": {**inc, "v": 1}, "$setOnInsert": fields}
    if longest is not None:
        update["$max"] = {"lag_max": longest}
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
) -> None:
    """Add each hour's increments to its document (made on first use), exactly once
    (:func:`_add`)."""
    for hour, inc in increments.items():
        key = window_key(experiment_id, model, hour)
        fields = {"experiment_id": experiment_id, "model": model, "start": hour_start(hour)}
        longest = lag_max.get(hour) if lag_max else None
        await _add(db[WINDOWS], key, fields, inc, longest)


async def add_to_runs(
    db: Database,
    experiment_id: str,
    model: str,
    increments: Mapping[str, Mapping[str, float | int]],
    created: Mapping[str, datetime],
    lag_max: Mapping[str, float] | None = None,
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
        await _add(db[RUNS], key, fields, inc, longest)


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
    # The predictions by their _id prefix (every key starts "<experiment>:"; ';' follows ':'),
    # which the primary index serves: an index on experiment_id would cost every prediction
    # and label write for this one rare delete.
    await db[PREDICTIONS].delete_many(
        {"_id": {"$gte": f"{experiment_id}:", "$lt": f"{experiment_id};"}}
    )
    await db[WINDOWS].delete_many({"experiment_id": experiment_id})
    await db[MODELS].delete_many({"experiment_id": experiment_id})
    await db[RUNS].delete_many({"experiment_id": experiment_id})
