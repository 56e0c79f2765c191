"""The ``events`` collection and its sequence counter (``event_counters``).

An event's ``_id`` is its sequence number: one ``$inc`` on a counter document hands out
numbers that order events across every backend replica, and the ``_id`` index serves the
tail (the numbers after ``n``) with no index of its own. A TTL index on ``time`` deletes events
``DRIFT_EVENTS_TTL_SECONDS`` after they happened; it is made here rather than in
``store.database.INDEXES`` because its option comes from the settings.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Collection

from pymongo import ASCENDING, DESCENDING, ReturnDocument
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError, OperationFailure

from drift_backend.store.database import Database, Document

#: The counter document's id in ``event_counters``.
COUNTER_ID = "events"
TTL_INDEX = "events_ttl"
#: Event numbers asked for per query of a replay.
READ_KEYS = 500
#: Server codes for "an index of that name exists with other options".
_INDEX_CONFLICTS = frozenset({85, 86})


async def ensure_ttl(db: Database, seconds: float) -> None:
    """The TTL index, with ``seconds`` even when an earlier start made it with another value."""
    expire = max(1, round(seconds))
    try:
        await db.events.create_index(
            [("time", ASCENDING)], name=TTL_INDEX, expireAfterSeconds=expire
        )
    except OperationFailure as error:
        if error.code not in _INDEX_CONFLICTS:
            raise
        await db.command(
            {"collMod": "events", "index": {"name": TTL_INDEX, "expireAfterSeconds": expire}}
        )


def collection(db: Database) -> AsyncCollection[Document]:
    """The events themselves (for a change-stream doorbell on their inserts)."""
    return db.events


async def next_seq(db: Database, count: int = 1) -> int:
    """The next ``count`` sequence numbers, unique across replicas: the last of them (the
    first is ``count - 1`` below it)."""
    for _ in range(2):
        try:
            doc = await db.event_counters.find_one_and_update(
                {"_id": COUNTER_ID},
                {"$inc": {"seq": count}},
                upsert=True,
                return_document=ReturnDocument.AFTER,
            )
        except DuplicateKeyError:  # two first-ever upserts raced; the counter exists now
            continue
        assert doc is not None  # an upsert always returns the document
        return int(doc["seq"])
    raise RuntimeError("could not allocate an event sequence number")


async def insert(db: Database, docs: list[Document]) -> None:
    await db.events.insert_many(docs, ordered=False)


async def counter_value(db: Database) -> int:
    doc = await db.event_counters.find_one({"_id": COUNTER_ID})
    return int(doc["seq"]) if doc else 0


async def newest_seq(db: Database) -> int | None:
    doc = await db.events.find_one({}, {"_id": 1}, sort=[("_id", DESCENDING)])
    return int(doc["_id"]) if doc else None


async def oldest_seq(db: Database) -> int | None:
    doc = await db.events.find_one({}, {"_id": 1}, sort=[("_id", ASCENDING)])
    return int(doc["_id"]) if doc else None


# Events are read by their numbers (``$in``), never by a range of ``_id``: SecantusDB plans
# an ``_id`` range as a collection scan, which decoded every kept event (a day of them) on
# each poll of every open stream.


async def after(db: Database, seq: int, limit: int) -> list[Document]:
    """Up to ``limit`` events with a number above ``seq``, in order: those among the
    numbers handed out so far (the counter); a hole wider than ``limit`` (numbers handed
    out whose events were never stored) is passed by a range, once."""
    handed = await counter_value(db)
    if handed <= seq:
        return []
    keys = list(range(seq + 1, min(handed, seq + limit) + 1))
    docs = [doc async for doc in db.events.find({"_id": {"$in": keys}}).sort("_id", 1)]
    if docs or handed <= seq + limit:
        return docs
    cursor = db.events.find({"_id": {"$gt": seq}}).sort("_id", 1).limit(limit)
    return [doc async for doc in cursor]


async def between(
    db: Database, low: int, high: int, experiments: Collection[str] | None
) -> AsyncIterator[Document]:
    """Events numbered above ``low`` up to ``high``, in order, optionally of some experiments
    only (the replay after ``Last-Event-ID``)."""
    oldest = await oldest_seq(db)
    if oldest is None:
        return
    for start in range(max(low, oldest - 1) + 1, high + 1, READ_KEYS):
        keys = list(range(start, min(start + READ_KEYS, high + 1)))
        async for doc in db.events.find({"_id": {"$in": keys}}).sort("_id", 1):
            if experiments is None or doc["experiment_id"] in experiments:
                yield doc
