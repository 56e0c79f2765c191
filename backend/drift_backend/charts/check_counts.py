"""What finished checks add to the charts, counted once per check as it lands:

- ``violation_counts``: one document per (experiment, model, hour of the run's
  ``created_at``) with its checks, their violations and the violations by kind, and one
  per day holding the same for each of its 6-hour spans (``q.h00`` .. ``q.h18``,
  ``charts/cover.py``), so the violations chart reads one document per day (hour) of its
  window instead of every check run in it (the run timeline's way, ``charts/run_counts.py``);
- ``feature_counts`` (:mod:`.feature_counts`): a feature's history per 6 hours, in day
  documents likewise.

**Exactly once, also on retries.** Each counted check has a marker
(``check_count_marks``, ``_id`` the run id, with what was counted). :func:`record` inserts
it, and only the caller whose insert succeeded adds; a retried check job finds it and adds
nothing. Deleting a check deletes its marker first (:func:`forget`), and only the caller
that deleted it subtracts. A crash between the two writes leaves one check uncounted until
a rebuild, never doubled. Like the run counts, a failure is logged and never fails the
check's own write; :func:`rebuild` repairs (``drift-monitor-server rebuild-run-counts``
rebuilds these too).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Awaitable, Iterable
from datetime import datetime, timedelta
from typing import Any

from pymongo import ReplaceOne, UpdateOne
from pymongo.errors import DuplicateKeyError

from drift_backend.charts import feature_counts
from drift_backend.charts.cover import (
    DAY,
    HOUR,
    QUARTER,
    held_spans,
    holders_filter,
    quarter,
    quarter_start,
    span_fields,
    span_key,
)
from drift_backend.store.bulk import upsert_all
from drift_backend.store.cancellation import raise_if_cancelled
from drift_backend.store.database import Database

log = logging.getLogger(__name__)

VIOLATION_COUNTS = "violation_counts"
CHECK_COUNT_MARKS = "check_count_marks"
#: The violation spans, largest first (the violations chart of 30 days has 6-hour buckets).
GRAINS = (QUARTER, HOUR)
#: The documents written per check: the 6-hour spans live in their day's document.
STORED = (DAY, HOUR)
DAY_GRAIN = int(DAY.total_seconds())
#: What a marker keeps of a ``check_runs`` document (all a subtraction needs).
MARK_FIELDS = ("experiment_id", "model", "created_at", "violation_total", "violations")


def escape(kind: str) -> str:
    """A violation kind as a field name (MongoDB paths split at "." and refuse "$")."""
    return kind.replace("%", "%25").replace(".", "%2E").replace("$", "%24")


def unescape(field: str) -> str:
    return field.replace("%24", "$").replace("%2E", ".").replace("%25", "%")


def _change(check: dict[str, Any], sign: int) -> dict[str, int]:
    change = {"checks": sign, "total": sign * int(check.get("violation_total", 0))}
    for item in check.get("violations", []):
        field = f"kinds.{escape(str(item['kind']))}"
        change[field] = change.get(field, 0) + sign * int(item["count"])
    return change


async def _add_violations(db: Database, check: dict[str, Any], sign: int) -> None:
    change = _change(check, sign)
    in_day = {f"q.{quarter(check['created_at'])}.{field}": n for field, n in change.items()}
    ops = [
        UpdateOne(
            {"_id": span_key(check, grain)},
            {"$set": span_fields(check, grain), "$inc": in_day if grain == DAY else change},
            upsert=True,
        )
        for grain in STORED
    ]
    await upsert_all(db.violation_counts, ops)


async def _quietly(what: str, run_id: str, update: Awaitable[None]) -> None:
    try:
        await update
    except Exception:  # the check's own write is done: a lost count must not undo it
        raise_if_cancelled()
        log.warning("could not count check %s as %s; rebuild-run-counts repairs it", run_id, what)


def fingerprint(results: list[dict[str, Any]]) -> str:
    """What of a check's feature results its counts hold, in a few bytes."""
    fields = ("feature", "drifted", *(f for _, f in feature_counts.MINIMA + feature_counts.MAXIMA))
    rows = sorted(repr([r.get(f) for f in fields]) for r in results)
    return hashlib.sha256("\n".join(rows).encode()).hexdigest()


async def record(db: Database, check: dict[str, Any], results: list[dict[str, Any]]) -> None:
    """A check's ``check_runs`` document and its ``feature_results`` were stored: count
    them, unless its marker says they are counted already. A retry that stored different
    results (an attempt that died half-way, then a new report) moves the marker to them
    and corrects the counts once."""

    async def count() -> None:
        mark = {
            "_id": check["_id"],
            **{f: check.get(f) for f in MARK_FIELDS},
            "features": fingerprint(results),
        }
        try:
            await db.check_count_marks.insert_one(mark)
        except DuplicateKeyError:
            old = await db.check_count_marks.find_one({"_id": check["_id"]})
            if old is None or old == mark:
                return  # a repeat: counted already (or deleted meanwhile)
            if await db.check_count_marks.find_one_and_replace(old, mark) is None:
                return  # another caller moved it first
            await _add_violations(db, old, -1)
            await _add_violations(db, check, 1)
            await feature_counts.recompute(db, results)
            return
        await _add_violations(db, check, 1)
        await feature_counts.add(db, results)

    await _quietly("recorded", str(check["_id"]), count())


async def forget(db: Database, run_ids: Iterable[str], results: list[dict[str, Any]]) -> None:
    """Check runs ``run_ids`` and their feature ``results`` (fields ``experiment_id``,
    ``model``, ``feature``, ``created_at``) were deleted: subtract the ones counted."""

    async def uncount() -> None:
        counted = set()
        for run_id in run_ids:
            mark = await db.check_count_marks.find_one_and_delete({"_id": run_id})
            if mark is not None:
                counted.add(run_id)
                await _add_violations(db, mark, -1)
        await feature_counts.recompute(db, (r for r in results if r["run_id"] in counted))

    ids = list(run_ids)
    await _quietly("deleted", ",".join(ids[:3]), uncount())


async def counted(db: Database, run_ids: list[str]) -> list[str]:
    """The ones of ``run_ids`` whose checks are counted (have a marker)."""
    found = db.check_count_marks.find({"_id": {"$in": run_ids}}, {"_id": 1})
    return [str(doc["_id"]) async for doc in found]


async def rebuild(db: Database, experiment_id: str | None = None) -> int:
    """Recount from the check runs and feature results (one experiment's, or all): the
    violation counts, the markers and the feature spans; the violation documents written."""
    scope = {} if experiment_id is None else {"experiment_id": experiment_id}
    built: dict[str, dict[str, Any]] = {}
    marks: list[dict[str, Any]] = []
    results: dict[str, list[dict[str, Any]]] = {}
    fields = (
        "run_id",
        "feature",
        "drifted",
        *(f for _, f in feature_counts.MINIMA + feature_counts.MAXIMA),
    )
    async for result in db.feature_results.find(scope, dict.fromkeys(fields, 1)):
        results.setdefault(result["run_id"], []).append(result)
    async for check in db.check_runs.find(scope, dict.fromkeys(MARK_FIELDS, 1)):
        marks.append(
            {
                "_id": check["_id"],
                **{f: check.get(f) for f in MARK_FIELDS},
                "features": fingerprint(results.get(check["_id"], [])),
            }
        )
        for grain in STORED:
            doc = built.setdefault(
                span_key(check, grain), {"_id": span_key(check, grain), **span_fields(check, grain)}
            )
            if grain == DAY:  # a day counts its quarters
                doc = doc.setdefault("q", {}).setdefault(quarter(check["created_at"]), {})
            doc.setdefault("checks", 0)
            doc.setdefault("total", 0)
            for field, n in _change(check, 1).items():
                if field.startswith("kinds."):
                    kinds = doc.setdefault("kinds", {})
                    kinds[field[len("kinds.") :]] = kinds.get(field[len("kinds.") :], 0) + n
                else:
                    doc[field] += n
    # Written before the stale ones are deleted (as ``run_counts.rebuild`` does).
    for collection, docs in (
        (db.violation_counts, list(built.values())),
        (db.check_count_marks, marks),
    ):
        for first in range(0, len(docs), 1000):
            chunk = docs[first : first + 1000]
            await collection.bulk_write(
                [ReplaceOne({"_id": doc["_id"]}, doc, upsert=True) for doc in chunk],
                ordered=False,
            )
    for collection, fresh in (
        (db.violation_counts, set(built)),
        (db.check_count_marks, {m["_id"] for m in marks}),
    ):
        stale = [doc["_id"] async for doc in collection.find(scope, {"_id": 1})]
        gone = [key for key in stale if key not in fresh]
        for first in range(0, len(gone), 1000):
            await collection.delete_many({"_id": {"$in": gone[first : first + 1000]}})
    await feature_counts.build(db, experiment_id)
    return len(built)


async def missing(db: Database) -> bool:
    """True when checks are stored but not counted (a deployment from before the counts)."""
    return (
        await db.check_count_marks.find_one({}, {"_id": 1}) is None
        and await db.check_runs.find_one({}, {"_id": 1}) is not None
    )


async def outdated(db: Database) -> bool:
    """True when the checks were counted before the day documents: an experiment with
    violation counts has no day document, or the feature blocks are 6-hour ones
    (:func:`.feature_counts.outdated`). Each a look-up or two on an index."""
    some = await db.violation_counts.find_one({}, {"experiment_id": 1})
    if some is not None:
        day = {"experiment_id": some["experiment_id"], "grain": DAY_GRAIN}
        if await db.violation_counts.find_one(day, {"_id": 1}) is None:
            return True
    return await feature_counts.outdated(db)


async def delete_for_experiment(db: Database, experiment_id: str) -> None:
    await db.violation_counts.delete_many({"experiment_id": experiment_id})
    await db.check_count_marks.delete_many({"experiment_id": experiment_id})
    await feature_counts.delete_for_experiment(db, experiment_id)


async def violation_spans(
    db: Database,
    experiment_id: str,
    model: str | None,
    grain: timedelta,
    start: datetime,
    end: datetime,
) -> list[dict[str, Any]]:
    """The violation documents of the ``grain``-long spans in ``[start, end)`` (on span
    edges), over the ``(experiment_id[, model], grain, start)`` index: a few fields each."""
    match: dict[str, Any] = {"experiment_id": experiment_id}
    if model is not None:
        match["model"] = model
    match["grain"] = int(grain.total_seconds())
    match["start"] = {"$gte": start, "$lt": end}
    projection = {"_id": 0, "start": 1, "checks": 1, "total": 1, "kinds": 1}
    return [doc async for doc in db.violation_counts.find(match, projection)]


def quarters_filter(
    experiment_id: str, model: str | None, start: datetime, end: datetime
) -> dict[str, Any]:
    """The day documents holding the 6-hour spans in ``[start, end)``."""
    return holders_filter(experiment_id, model, DAY, start, end)


async def violation_quarters(
    db: Database, experiment_id: str, model: str | None, start: datetime, end: datetime
) -> list[dict[str, Any]]:
    """The violations of the 6-hour spans in ``[start, end)`` (on span edges), shaped as
    :func:`violation_spans` gives them, read from their days' documents (over the same
    index, grain a day): about a quarter as many documents."""
    match = quarters_filter(experiment_id, model, start, end)
    found: list[dict[str, Any]] = []
    async for doc in db.violation_counts.find(match, {"_id": 0, "start": 1, "q": 1}):
        spans = held_spans(doc["start"], doc.get("q"), quarter_start, start, end)
        found.extend({**counts, "start": at} for at, counts in spans)
    return found
