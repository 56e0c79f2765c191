"""The run timeline's counts, kept as runs change state: the ``run_counts`` collection, one
document per (experiment, model, hour of ``created_at``) with the number of its runs in each
state (``drifted``, ``not_drifted``, ``failed``, ``running``), so a timeline reads at most one
document per hour of its window instead of every run in it.

The drift-run state machine (``drifts/service.py``) calls :func:`record_created`,
:func:`record_changed` and :func:`record_deleted` after its own write succeeded, as it emits
events. Like an event, a count is a side effect: a failure is logged and never fails the
write (:func:`rebuild` repairs the counts).

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
from datetime import datetime
from typing import Any

from pymongo import ReplaceOne
from pymongo.errors import DuplicateKeyError

from drift_backend.drifts import timeline as drift_timeline
from drift_backend.drifts.schemas import JobStatus
from drift_backend.store.cancellation import raise_if_cancelled
from drift_backend.store.database import Database

log = logging.getLogger(__name__)

RUN_COUNTS = "run_counts"
STATES = ("drifted", "not_drifted", "failed", "running")
RUNNING = "running"


def state_of(run: dict[str, Any]) -> str:
    """The timeline's state of a run (a ``drifts`` document)."""
    status = run["job_status"]
    if status == JobStatus.Running:
        return RUNNING
    if status == JobStatus.Failed:
        return "failed"
    return "drifted" if run.get("drift_detected") else "not_drifted"


def hour_of(when: datetime) -> datetime:
    return when.replace(minute=0, second=0, microsecond=0)


def _key(run: dict[str, Any]) -> str:
    # The experiment id (a UUID) and the hour have no "|"; the model in between may.
    return f"{run['experiment_id']}|{run['model']}|{hour_of(run['created_at']).isoformat()}"


def _fields(run: dict[str, Any]) -> dict[str, Any]:
    return {
        "experiment_id": run["experiment_id"],
        "model": run["model"],
        "hour": hour_of(run["created_at"]),
    }


async def _quietly(what: str, run: dict[str, Any], update: Awaitable[None]) -> None:
    try:
        await update
    except Exception:  # the run's own write is done: a lost count must not undo it
        raise_if_cancelled()
        log.warning("could not count run %s as %s; rebuild-run-counts repairs it", run["_id"], what)


async def _add(db: Database, run: dict[str, Any], state: str) -> None:
    """Count ``run`` in ``state`` unless it is counted already."""
    marker = f"runs.{run['_id']}"
    query = {"_id": _key(run), marker: {"$exists": False}}
    update = {"$set": {**_fields(run), marker: state}, "$inc": {state: 1}}
    try:
        await db.run_counts.update_one(query, update, upsert=True)
    except DuplicateKeyError:
        # The hour's document exists: either it counts the run already (nothing to do), or
        # another run created it just now (then this matches and adds it).
        await db.run_counts.update_one(query, update)


async def _move(db: Database, run: dict[str, Any], old: str, new: str) -> bool:
    """Move ``run`` from ``old`` to ``new``; False when it is not counted in ``old``."""
    marker = f"runs.{run['_id']}"
    result = await db.run_counts.update_one(
        {"_id": _key(run), marker: old},
        {"$set": {marker: new}, "$inc": {old: -1, new: 1}},
    )
    return result.matched_count == 1


async def record_created(db: Database, run: dict[str, Any]) -> None:
    """A new run (Running, or reported already finished)."""
    await _quietly("created", run, _add(db, run, state_of(run)))


async def _relocate(db: Database, run: dict[str, Any], new: str) -> None:
    """Where the run's marker is not "Running in its document": its model changed (a
    client's replace may change it, and the model is part of the document's key), its
    creation was never counted, or this is a repeat. Each step is conditional on a marker,
    so repeating it changes nothing; a crash between the two leaves the run uncounted until
    a rebuild, never counted twice."""
    key, rid = _key(run), str(run["_id"])
    marker = f"runs.{rid}"
    query = {"experiment_id": run["experiment_id"], "hour": hour_of(run["created_at"])}
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
        await _add(db, run, new)
    elif here[0] == RUNNING and new != RUNNING:
        await _move(db, run, RUNNING, new)


async def record_changed(db: Database, run: dict[str, Any]) -> None:
    """A run changed: finished, or updated while Running (``run`` as it is stored now)."""

    async def change() -> None:
        new = state_of(run)
        # The usual case in one update: a Running run of this document finished.
        if new == RUNNING or not await _move(db, run, RUNNING, new):
            await _relocate(db, run, new)

    await _quietly("changed", run, change())


async def record_deleted(db: Database, run: dict[str, Any]) -> None:
    """A run was deleted (``run``: its last stored document)."""

    async def forget() -> None:
        marker = f"runs.{run['_id']}"
        doc = await db.run_counts.find_one({"_id": _key(run)}, {marker: 1})
        state = (doc or {}).get("runs", {}).get(str(run["_id"]))
        if state is not None:
            await db.run_counts.update_one(
                {"_id": _key(run), marker: state}, {"$unset": {marker: ""}, "$inc": {state: -1}}
            )

    await _quietly("deleted", run, forget())


async def delete_for_experiment(db: Database, experiment_id: str) -> None:
    await db.run_counts.delete_many({"experiment_id": experiment_id})


def _zero() -> dict[str, int]:
    return dict.fromkeys(STATES, 0)


async def rebuild(db: Database, experiment_id: str | None = None) -> int:
    """Recount from the runs themselves (one experiment's, or all); the documents written.

    For deployments that had runs before the counts existed (:func:`prepare` does it once at
    start-up) and as a repair (``drift-monitor-server rebuild-run-counts``). Run it while no
    run of the experiment changes: a change made during the rebuild may be overwritten."""
    built: dict[str, dict[str, Any]] = {}
    async for run in drift_timeline.run_states(db, experiment_id):
        key = _key(run)
        doc = built.setdefault(key, {"_id": key, **_fields(run), **_zero(), "runs": {}})
        state = state_of(run)
        doc[state] += 1
        doc["runs"][str(run["_id"])] = state
    scope = {} if experiment_id is None else {"experiment_id": experiment_id}
    stale = [doc["_id"] async for doc in db.run_counts.find(scope, {"_id": 1})]
    gone = [key for key in stale if key not in built]
    for start in range(0, len(gone), 1000):
        await db.run_counts.delete_many({"_id": {"$in": gone[start : start + 1000]}})
    docs = list(built.values())
    for start in range(0, len(docs), 1000):
        chunk = docs[start : start + 1000]
        await db.run_counts.bulk_write(
            [ReplaceOne({"_id": doc["_id"]}, doc, upsert=True) for doc in chunk], ordered=False
        )
    return len(docs)


async def prepare(db: Database) -> None:
    """At start-up: count the runs of a deployment that has runs but no counts yet."""
    if await db.run_counts.find_one({}, {"_id": 1}) is None and await drift_timeline.any_run(db):
        written = await rebuild(db)
        log.info("counted existing runs for the timeline: %d hour documents", written)


def _sum(state: str) -> dict[str, Any]:
    return {"$sum": {"$ifNull": [f"${state}", 0]}}


def hourly_pipeline(
    experiment_id: str,
    model: str | None,
    start: datetime,
    end: datetime,
    bucket: dict[str, Any],
) -> list[dict[str, Any]]:
    """The counts of the whole hours in ``[start, end)`` per ``bucket`` (an expression of
    ``$hour``), over the ``(experiment_id[, model], hour)`` index."""
    match: dict[str, Any] = {"experiment_id": experiment_id}
    if model is not None:
        match["model"] = model
    match["hour"] = {"$gte": start, "$lt": end}
    return [
        {"$match": match},
        {"$group": {"_id": bucket, **{state: _sum(state) for state in STATES}}},
        {"$sort": {"_id": 1}},
    ]


async def hourly(
    db: Database,
    experiment_id: str,
    model: str | None,
    start: datetime,
    end: datetime,
    bucket: dict[str, Any],
) -> list[dict[str, Any]]:
    pipeline = hourly_pipeline(experiment_id, model, start, end, bucket)
    return [doc async for doc in await db.run_counts.aggregate(pipeline)]
