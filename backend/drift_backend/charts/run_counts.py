"""The run timeline's counts, kept as runs change state: the ``run_counts`` collection, one
document per (experiment, model, hour of ``created_at``) with the number of its runs in each
state (``drifted``, ``not_drifted``, ``failed``, ``running``), and the same per 6 hours, so
a timeline reads one document per 6 hours (or hour) of its window instead of every run in it.
(SecantusDB, the test database, pays about 0.1 ms for each document a query reads: the 720
hours of a 30-day window cost 100 ms there, its 120 quarter-days 15 ms.)

The drift-run state machine (``drifts/service.py``) calls :func:`record_created`,
:func:`record_changed` and :func:`record_deleted` after its own write succeeded, as it emits
events. Like an event, a count is a side effect: a failure is logged and never fails the
write (:func:`rebuild` repairs the counts).

Both grains change in one ``bulk_write`` (one round trip), each document on its own.

**Exactly once, also on retries.** Each document keeps, next to its counts, the state it
counted each of its runs in (``runs.<run id>``), and every change is one atomic update of
that one document, conditional on the run's marker: a run is added only when it has no
marker, and moved from a state only when its marker says that state; the ``$inc`` of the
counts comes in the same update as the marker's change. A retried or repeated call finds the
marker already changed and matches nothing, so no run is ever counted twice or moved twice.
(The markers cost about 50 bytes a run; a run every second for an hour makes a 180 kB
document.)
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from datetime import datetime, timedelta
from typing import Any

from pymongo import ReplaceOne, UpdateOne
from pymongo.errors import BulkWriteError

from drift_backend.drifts import timeline as drift_timeline
from drift_backend.drifts.schemas import JobStatus
from drift_backend.store.cancellation import raise_if_cancelled
from drift_backend.store.database import Database

log = logging.getLogger(__name__)

RUN_COUNTS = "run_counts"
STATES = ("drifted", "not_drifted", "failed", "running")
RUNNING = "running"
#: The spans counted, largest first. Every chart step of an hour or more is a multiple of
#: one of them (``charts/buckets.py``: 1, 2, 3, 6, 12 hours, whole days), and both align to
#: the buckets' reference (2000-01-01T00:00Z), so each span lies in exactly one bucket.
GRAINS = (timedelta(hours=6), timedelta(hours=1))
DUPLICATE_KEY = 11000


def state_of(run: dict[str, Any]) -> str:
    """The timeline's state of a run (a ``drifts`` document)."""
    status = run["job_status"]
    if status == JobStatus.Running:
        return RUNNING
    if status == JobStatus.Failed:
        return "failed"
    return "drifted" if run.get("drift_detected") else "not_drifted"


def floor(when: datetime, grain: timedelta) -> datetime:
    """The start of the ``grain``-long span ``when`` falls in (spans from midnight)."""
    midnight = when.replace(hour=0, minute=0, second=0, microsecond=0)
    return midnight + ((when - midnight) // grain) * grain


def hour_of(when: datetime) -> datetime:
    return floor(when, GRAINS[-1])


def _key(run: dict[str, Any], grain: timedelta) -> str:
    # The experiment id (a UUID), the grain and the time have no "|"; the model may, but it
    # sits between fixed parts, so keys stay unique.
    start = floor(run["created_at"], grain).isoformat()
    return f"{run['experiment_id']}|{run['model']}|{int(grain.total_seconds())}|{start}"


def _fields(run: dict[str, Any], grain: timedelta) -> dict[str, Any]:
    return {
        "experiment_id": run["experiment_id"],
        "model": run["model"],
        "grain": int(grain.total_seconds()),
        "start": floor(run["created_at"], grain),
    }


async def _quietly(what: str, run: dict[str, Any], update: Awaitable[None]) -> None:
    try:
        await update
    except Exception:  # the run's own write is done: a lost count must not undo it
        raise_if_cancelled()
        log.warning("could not count run %s as %s; rebuild-run-counts repairs it", run["_id"], what)


def _add_op(run: dict[str, Any], state: str, grain: timedelta, upsert: bool) -> UpdateOne:
    marker = f"runs.{run['_id']}"
    return UpdateOne(
        {"_id": _key(run, grain), marker: {"$exists": False}},
        {"$set": {**_fields(run, grain), marker: state}, "$inc": {state: 1}},
        upsert=upsert,
    )


async def _add(
    db: Database, run: dict[str, Any], state: str, grains: tuple[timedelta, ...]
) -> None:
    """Count ``run`` in ``state`` (in each of ``grains``) unless it is counted already."""
    try:
        await db.run_counts.bulk_write(
            [_add_op(run, state, grain, upsert=True) for grain in grains], ordered=False
        )
    except BulkWriteError as error:
        failed = error.details.get("writeErrors", [])
        if any(e.get("code") != DUPLICATE_KEY for e in failed):
            raise
        # The span's document exists: either it counts the run already (nothing to do), or
        # another run created it just now (then this matches and adds it).
        await db.run_counts.bulk_write(
            [_add_op(run, state, grains[e["index"]], upsert=False) for e in failed],
            ordered=False,
        )


async def _move(db: Database, run: dict[str, Any], old: str, new: str) -> bool:
    """Move ``run`` from ``old`` to ``new`` in every grain; False unless all matched."""
    marker = f"runs.{run['_id']}"
    update = {"$set": {marker: new}, "$inc": {old: -1, new: 1}}
    result = await db.run_counts.bulk_write(
        [UpdateOne({"_id": _key(run, grain), marker: old}, update) for grain in GRAINS],
        ordered=False,
    )
    return result.matched_count == len(GRAINS)


async def _relocate(db: Database, run: dict[str, Any], new: str, grain: timedelta) -> None:
    """Where the run's marker is not "Running in its document": its model changed (a
    client's replace may change it, and the model is part of the document's key), its
    creation was never counted, or this is a repeat. Each step is conditional on a marker,
    so repeating it changes nothing; a crash between the two leaves the run uncounted until
    a rebuild, never counted twice."""
    key, rid = _key(run, grain), str(run["_id"])
    marker = f"runs.{rid}"
    fields = _fields(run, grain)
    query = {k: fields[k] for k in ("experiment_id", "grain", "start")}
    placed = [
        (doc["_id"], doc["runs"][rid])
        async for doc in db.run_counts.find({**query, marker: {"$exists": True}}, {marker: 1})
    ]
    for doc_id, state in placed:
        if doc_id != key:  # counted under its former model: out of there
            await db.run_counts.update_one(
                {"_id": doc_id, marker: state}, {"$unset": {marker: ""}, "$inc": {state: -1}}
            )
    here = [state for doc_id, state in placed if doc_id == key]
    if not here:
        await _add(db, run, new, (grain,))
    elif here[0] == RUNNING and new != RUNNING:
        await db.run_counts.update_one(
            {"_id": key, marker: RUNNING}, {"$set": {marker: new}, "$inc": {RUNNING: -1, new: 1}}
        )


async def record_created(db: Database, run: dict[str, Any]) -> None:
    """A new run (Running, or reported already finished)."""
    await _quietly("created", run, _add(db, run, state_of(run), GRAINS))


async def record_changed(db: Database, run: dict[str, Any]) -> None:
    """A run changed: finished, or updated while Running (``run`` as it is stored now)."""

    async def change() -> None:
        new = state_of(run)
        # The usual case in one round trip: a Running run of these documents finished.
        if new == RUNNING or not await _move(db, run, RUNNING, new):
            for grain in GRAINS:
                await _relocate(db, run, new, grain)

    await _quietly("changed", run, change())


async def record_deleted(db: Database, run: dict[str, Any]) -> None:
    """A run was deleted (``run``: its last stored document)."""

    async def forget() -> None:
        rid = str(run["_id"])
        marker = f"runs.{rid}"
        keys = [_key(run, grain) for grain in GRAINS]
        async for doc in db.run_counts.find({"_id": {"$in": keys}}, {marker: 1}):
            state = doc.get("runs", {}).get(rid)
            if state is not None:
                await db.run_counts.update_one(
                    {"_id": doc["_id"], marker: state},
                    {"$unset": {marker: ""}, "$inc": {state: -1}},
                )

    await _quietly("deleted", run, forget())


async def delete_for_experiment(db: Database, experiment_id: str) -> None:
    await db.run_counts.delete_many({"experiment_id": experiment_id})


async def rebuild(db: Database, experiment_id: str | None = None) -> int:
    """Recount from the runs themselves (one experiment's, or all); the documents written.

    For deployments that had runs before the counts existed (:func:`prepare` does it once at
    start-up) and as a repair (``drift-monitor-server rebuild-run-counts``). Run it while no
    run of the experiment changes: a change made during the rebuild may be overwritten."""
    built: dict[str, dict[str, Any]] = {}
    async for run in drift_timeline.run_states(db, experiment_id):
        state = state_of(run)
        for grain in GRAINS:
            key = _key(run, grain)
            doc = built.get(key)
            if doc is None:
                doc = built[key] = {"_id": key, **_fields(run, grain), "runs": {}}
                doc.update(dict.fromkeys(STATES, 0))
            doc[state] += 1
            doc["runs"][str(run["_id"])] = state
    scope = {} if experiment_id is None else {"experiment_id": experiment_id}
    stale = [doc["_id"] async for doc in db.run_counts.find(scope, {"_id": 1})]
    gone = [key for key in stale if key not in built]
    for first in range(0, len(gone), 1000):
        await db.run_counts.delete_many({"_id": {"$in": gone[first : first + 1000]}})
    docs = list(built.values())
    for first in range(0, len(docs), 1000):
        chunk = docs[first : first + 1000]
        await db.run_counts.bulk_write(
            [ReplaceOne({"_id": doc["_id"]}, doc, upsert=True) for doc in chunk], ordered=False
        )
    return len(docs)


async def prepare(db: Database) -> None:
    """At start-up: count the runs of a deployment that has runs but no counts yet."""
    if await db.run_counts.find_one({}, {"_id": 1}) is None and await drift_timeline.any_run(db):
        written = await rebuild(db)
        log.info("counted existing runs for the timeline: %d documents", written)


def _sum(state: str) -> dict[str, Any]:
    return {"$sum": {"$ifNull": [f"${state}", 0]}}


def spans_pipeline(
    experiment_id: str,
    model: str | None,
    grain: timedelta,
    start: datetime,
    end: datetime,
    bucket: dict[str, Any],
) -> list[dict[str, Any]]:
    """The counts of the ``grain``-long spans in ``[start, end)`` (both on span edges) per
    ``bucket`` (an expression of ``$start``), over the ``(experiment_id[, model], grain,
    start)`` index."""
    match: dict[str, Any] = {"experiment_id": experiment_id}
    if model is not None:
        match["model"] = model
    match["grain"] = int(grain.total_seconds())
    match["start"] = {"$gte": start, "$lt": end}
    return [
        {"$match": match},
        {"$group": {"_id": bucket, **{state: _sum(state) for state in STATES}}},
        {"$sort": {"_id": 1}},
    ]


async def spans(
    db: Database,
    experiment_id: str,
    model: str | None,
    grain: timedelta,
    start: datetime,
    end: datetime,
    bucket: dict[str, Any],
) -> list[dict[str, Any]]:
    pipeline = spans_pipeline(experiment_id, model, grain, start, end, bucket)
    return [doc async for doc in await db.run_counts.aggregate(pipeline)]
