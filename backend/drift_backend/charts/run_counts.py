"""The run timeline's counts, kept as runs change state: the ``run_counts`` collection, one
document per (experiment, model, hour of ``created_at``) with the number of its runs in each
state (``drifted``, ``not_drifted``, ``failed``, ``running``) and the same for each of its
six 10-minute spans (``t.m00`` .. ``t.m50``), and one per day holding its four 6-hour spans
(``q.h00`` .. ``q.h18``, ``charts/cover.py``), so a timeline reads one document per day
(6-hour buckets and longer) or per hour (hourly and 10-minute buckets) of its window instead
of every run in it. (SecantusDB, the test database, pays about 0.25 ms for each document a
query reads: the 720 hours of a 30-day window cost 180 ms there, its 120 quarter-days 30 ms,
the 30 days holding them 8 ms; a day's 144 10-minute spans 36 ms, its 24 hours 6 ms.)

The drift-run state machine (``drifts/service.py``) calls :func:`record_created`,
:func:`record_changed` and :func:`record_deleted` after its own write succeeded, as it emits
events. Like an event, a count is a side effect: a failure is logged and never fails the
write (:func:`rebuild` repairs the counts).

**Exactly once, also on retries.** Each run has a marker (``run_count_marks``, ``_id`` the
run id) saying where it is counted: its model, hour and state. A change first moves the
marker, conditionally on what it says (inserted only when there is none, moved from a
state only when it says that state, deleted once), and only the caller whose marker change
matched applies the ``$inc`` (every grain in one ``bulk_write``). A retried or repeated
call finds the marker moved already and counts nothing, so no run is counted twice. A crash
between the two writes leaves that one change uncounted until a rebuild, never doubled.
(A first version kept the markers inside the count documents, one atomic update each; under
a few hundred runs a second those documents grew by every run of their hour, and each write
rewrote them: 15x the database's time per created run. Count documents now stay ~100 bytes.)
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from datetime import datetime, timedelta
from typing import Any

from pymongo import ReplaceOne, UpdateOne

from drift_backend.charts import check_counts, run_totals
from drift_backend.charts.buckets import Window
from drift_backend.charts.cover import (
    DAY,
    HOUR,
    QUARTER,
    TEN_MINUTES,
    held_spans,
    holders_filter,
    quarter,
    quarter_start,
    sixth,
    sixth_start,
    span_fields,
    span_key,
)
from drift_backend.charts.cover import floor as floor  # re-exported: callers name run_counts.floor
from drift_backend.drifts import timeline as drift_timeline
from drift_backend.drifts.schemas import JobStatus
from drift_backend.store.bulk import insert_new, upsert_all
from drift_backend.store.cancellation import raise_if_cancelled
from drift_backend.store.database import Database

log = logging.getLogger(__name__)

RUN_COUNTS = "run_counts"
STATES = ("drifted", "not_drifted", "failed", "running")
RUNNING = "running"
#: The spans counted, largest first. Every chart step of 10 minutes or more is a multiple
#: of one of them (``charts/buckets.py``: 10, 30 minutes, 1, 2, 3, 6, 12 hours, whole days;
#: 15 minutes and finer steps read the runs), and all align to the buckets' reference
#: (2000-01-01T00:00Z), so each span lies in exactly one bucket. 10 minutes is a 1-day
#: window's step (200 buckets): its 144 spans instead of its runs.
GRAINS = (QUARTER, HOUR, TEN_MINUTES)
#: The documents written per run: the 6-hour spans live in their day's document.
STORED = (DAY, HOUR)
DAY_GRAIN = int(DAY.total_seconds())
#: Spans kept inside a larger document: grain -> (that document's grain, the field holding
#: them, the start of a span from the document's and its field). A 1-day window (10-minute
#: buckets) reads its 24 hours' documents instead of 144 of its own, and counting a run
#: writes two documents, not four.
HELD = {QUARTER: (DAY, "q", quarter_start), TEN_MINUTES: (HOUR, "t", sixth_start)}


def state_of(run: dict[str, Any]) -> str:
    """The timeline's state of a run (a ``drifts`` document)."""
    status = run["job_status"]
    if status == JobStatus.Running:
        return RUNNING
    if status == JobStatus.Failed:
        return "failed"
    return "drifted" if run.get("drift_detected") else "not_drifted"


def hour_of(when: datetime) -> datetime:
    return floor(when, HOUR)


async def _quietly(what: str, runs: list[dict[str, Any]], update: Awaitable[None]) -> None:
    try:
        await update
    except Exception:  # the run's own write is done: a lost count must not undo it
        raise_if_cancelled()
        ids = ", ".join(run["_id"] for run in runs)
        log.warning("could not count runs %s as %s; rebuild-run-counts repairs it", ids, what)


def _change_in(run: dict[str, Any], grain: timedelta, change: dict[str, int]) -> dict[str, int]:
    """``change`` as the ``$inc`` of ``run``'s document of ``grain``: a day's counts its
    quarter only, an hour's itself and its 10-minute span."""
    at = run["created_at"]
    if grain == DAY:
        return {f"q.{quarter(at)}.{state}": n for state, n in change.items()}
    return {**change, **{f"t.{sixth(at)}.{state}": n for state, n in change.items()}}


async def _inc(db: Database, run: dict[str, Any], change: dict[str, int]) -> None:
    """Add ``change`` (state -> +1/-1) to the counts of ``run``'s spans, every grain."""
    await _inc_many(db, [(run, change)])


async def _inc_many(db: Database, changes: list[tuple[dict[str, Any], dict[str, int]]]) -> None:
    """:func:`_inc` for several runs: one upsert per span, all in one bulk write."""
    updates: dict[str, dict[str, Any]] = {}
    for run, change in changes:
        for grain in STORED:
            update = updates.setdefault(
                span_key(run, grain), {"$set": span_fields(run, grain), "$inc": {}}
            )
            for field, n in _change_in(run, grain, change).items():
                update["$inc"][field] = update["$inc"].get(field, 0) + n
    ops = [UpdateOne({"_id": doc_id}, update, upsert=True) for doc_id, update in updates.items()]
    await upsert_all(db.run_counts, ops)
    # The model's totals (``/metrics``) move with the spans, under the same marker.
    await run_totals.inc_many(db, changes)


def _mark(run: dict[str, Any], state: str) -> dict[str, Any]:
    return {
        "experiment_id": run["experiment_id"],
        "model": run["model"],
        "created_at": run["created_at"],
        "state": state,
    }


async def record_created(db: Database, run: dict[str, Any]) -> None:
    """A new run (Running, or reported already finished)."""
    await record_created_many(db, [run])


async def record_created_many(db: Database, runs: list[dict[str, Any]]) -> None:
    """New runs: their markers in one insert, their counts in one bulk write (``drifts/``
    group-commits the runs concurrent requests create)."""

    async def count() -> None:
        marks = [{"_id": run["_id"], **_mark(run, state_of(run))} for run in runs]
        counted = await insert_new(db.run_count_marks, marks)  # these have markers already
        fresh = [run for index, run in enumerate(runs) if index not in counted]
        await _inc_many(db, [(run, {state_of(run): 1}) for run in fresh])

    await _quietly("created", runs, count())


Change = tuple[dict[str, Any], dict[str, int]]


async def _moves(db: Database, run: dict[str, Any]) -> list[Change]:
    """Move ``run``'s marker to where it is counted now; the count changes that move owes
    (none when another caller moved it, or nothing moved)."""
    new = _mark(run, state_of(run))
    # The usual case: a Running run finished, its model unchanged.
    if new["state"] != RUNNING:
        moved = await db.run_count_marks.find_one_and_update(
            {"_id": run["_id"], "state": RUNNING, "model": run["model"]},
            {"$set": {"state": new["state"]}},
        )
        if moved is not None:
            return [(run, {RUNNING: -1, new["state"]: 1})]
    old = await db.run_count_marks.find_one({"_id": run["_id"]})
    if old is None:  # its creation was never counted: count it now
        marked = {"_id": run["_id"], **new}
        return [] if await insert_new(db.run_count_marks, [marked]) else [(run, {new["state"]: 1})]
    if (old["model"], old["state"]) == (new["model"], new["state"]):
        return []  # nothing to move (a repeat, or an update that keeps it Running)
    if old["state"] != RUNNING and new["state"] != old["state"]:
        return []  # a finished run never changes state; leave its count alone
    moved = await db.run_count_marks.find_one_and_update(
        {"_id": run["_id"], "model": old["model"], "state": old["state"]},
        {"$set": new},
    )
    if moved is None:
        return []
    # Its model changed (a client's replace): from one model's documents to the other's.
    return [({**run, **old}, {old["state"]: -1}), (run, {new["state"]: 1})]


async def record_changed(db: Database, run: dict[str, Any]) -> None:
    """A run changed: finished, or updated while Running (``run`` as it is stored now)."""
    await record_changed_many(db, [run])


async def record_changed_many(db: Database, runs: list[dict[str, Any]]) -> None:
    """Changed runs: each marker moved on its own (conditionally, so exactly once), the
    counts they owe in one bulk write (``drifts/`` group-commits what concurrent requests
    change)."""
    changes: list[Change] = []
    for run in runs:
        try:
            changes.extend(await _moves(db, run))
        except Exception:  # the run's own write is done: a lost count must not undo it
            raise_if_cancelled()
            log.warning(
                "could not count run %s as changed; rebuild-run-counts repairs it", run["_id"]
            )
    if changes:
        await _quietly("changed", [run for run, _ in changes], _inc_many(db, changes))


async def record_deleted(db: Database, run: dict[str, Any]) -> None:
    """A run was deleted (``run``: its last stored document)."""

    async def forget() -> None:
        old = await db.run_count_marks.find_one_and_delete({"_id": run["_id"]})
        if old is not None:
            await _inc(db, {**run, **old}, {old["state"]: -1})

    await _quietly("deleted", [run], forget())


async def delete_for_experiment(db: Database, experiment_id: str) -> None:
    await db.run_counts.delete_many({"experiment_id": experiment_id})
    await run_totals.delete_for_experiment(db, experiment_id)
    await check_counts.delete_for_experiment(db, experiment_id)
    await db.run_count_marks.delete_many({"experiment_id": experiment_id})


async def rebuild(db: Database, experiment_id: str | None = None) -> int:
    """Recount from the runs themselves (one experiment's, or all): the counts and the
    markers; the count documents written.

    For deployments that had runs before the counts existed (:func:`prepare` does it once at
    start-up) and as a repair (``drift-monitor-server rebuild-run-counts``). Run it while no
    run of the experiment changes: a change made during the rebuild may be overwritten."""
    built: dict[str, dict[str, Any]] = {}
    totals: dict[str, dict[str, Any]] = {}
    marks: list[dict[str, Any]] = []
    async for run in drift_timeline.run_states(db, experiment_id):
        state = state_of(run)
        marks.append({"_id": run["_id"], **_mark(run, state)})
        total_key = run_totals.key(run["experiment_id"], run["model"])
        if total_key not in totals:
            totals[total_key] = run_totals.start(run)
        run_totals.add(totals[total_key], run, state)
        for grain in STORED:
            key = span_key(run, grain)
            doc = built.get(key)
            if doc is None:
                doc = built[key] = {"_id": key, **span_fields(run, grain)}
            if grain == HOUR:  # an hour counts itself and its 10-minute spans
                if state not in doc:
                    doc.update(dict.fromkeys(STATES, 0))
                doc[state] += 1
                doc = doc.setdefault("t", {})
                doc = doc.setdefault(sixth(run["created_at"]), dict.fromkeys(STATES, 0))
            else:  # a day counts its quarters
                doc = doc.setdefault("q", {})
                doc = doc.setdefault(quarter(run["created_at"]), dict.fromkeys(STATES, 0))
            doc[state] += 1
    scope = {} if experiment_id is None else {"experiment_id": experiment_id}
    # Written before the stale ones are deleted: a rebuild that dies half-way (say, the
    # start-up one that replaces 6-hour documents by days) leaves old documents beside the
    # new rather than neither; running it again repairs.
    for collection, docs in ((db.run_counts, list(built.values())), (db.run_count_marks, marks)):
        for first in range(0, len(docs), 1000):
            chunk = docs[first : first + 1000]
            await collection.bulk_write(
                [ReplaceOne({"_id": doc["_id"]}, doc, upsert=True) for doc in chunk],
                ordered=False,
            )
    for collection, fresh in (
        (db.run_counts, built),
        (db.run_count_marks, {m["_id"] for m in marks}),
    ):
        stale = [doc["_id"] async for doc in collection.find(scope, {"_id": 1})]
        gone = [key for key in stale if key not in fresh]
        for first in range(0, len(gone), 1000):
            await collection.delete_many({"_id": {"$in": gone[first : first + 1000]}})
    await run_totals.write_built(db, totals, experiment_id)
    # And what checks add to the charts (violations, feature history): one repair for all.
    await check_counts.rebuild(db, experiment_id)
    return len(built)


async def outdated(db: Database) -> bool:
    """True when the counts predate the day documents (6-hour documents of their own) or
    the hours holding their 10-minute spans: an experiment with counts has no day document,
    or has a 10-minute one. Look-ups on the ``(experiment_id, grain, start)`` index (a
    query on ``grain`` alone would scan)."""
    some = await db.run_counts.find_one({}, {"experiment_id": 1})
    if some is None:
        return False
    scope = {"experiment_id": some["experiment_id"]}
    if await db.run_counts.find_one({**scope, "grain": DAY_GRAIN}, {"_id": 1}) is None:
        return True
    old = {**scope, "grain": int(TEN_MINUTES.total_seconds())}
    return await db.run_counts.find_one(old, {"_id": 1}) is not None


async def prepare(db: Database) -> None:
    """At start-up: count the runs of a deployment that has runs but no counts yet (or
    no per-model totals: a deployment from before ``/metrics`` read them and before the
    10-minute spans, which came with them; or counts from before the day documents), and
    its checks if they are not counted (or counted before the day documents)."""
    missing = (
        await db.run_counts.find_one({}, {"_id": 1}) is None
        or await db.run_totals.find_one({}, {"_id": 1}) is None
        or await outdated(db)
    )
    if missing and await drift_timeline.any_run(db):
        written = await rebuild(db)  # the checks' counts too
        log.info("counted existing runs for the timeline: %d documents", written)
    elif await check_counts.missing(db) or await check_counts.outdated(db):
        written = await check_counts.rebuild(db)
        log.info("counted existing checks for the charts: %d documents", written)


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


def held_filter(
    experiment_id: str, model: str | None, grain: timedelta, start: datetime, end: datetime
) -> dict[str, Any]:
    """The documents holding the ``grain`` spans (:data:`HELD`) in ``[start, end)``."""
    return holders_filter(experiment_id, model, HELD[grain][0], start, end)


async def held(
    db: Database,
    experiment_id: str,
    model: str | None,
    grain: timedelta,
    start: datetime,
    end: datetime,
    window: Window,
) -> list[dict[str, Any]]:
    """The counts of the ``grain`` spans in ``[start, end)`` (on span edges) per bucket of
    ``window`` (whose step is a multiple of ``grain``), as :func:`spans` gives them: read
    from the documents holding them (days' quarters, hours' 10 minutes)."""
    _, holder_field, span_start = HELD[grain]
    match = held_filter(experiment_id, model, grain, start, end)
    totals: dict[datetime, dict[str, int]] = {}
    async for doc in db.run_counts.find(match, {"_id": 0, "start": 1, holder_field: 1}):
        for at, counts in held_spans(doc["start"], doc.get(holder_field), span_start, start, end):
            row = totals.setdefault(window.bucket_of(at), dict.fromkeys(STATES, 0))
            for state in STATES:
                row[state] += counts.get(state, 0)
    return [{"_id": bucket, **row} for bucket, row in sorted(totals.items())]


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
