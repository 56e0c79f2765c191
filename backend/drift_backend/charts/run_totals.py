"""One small document per (experiment, model), the ``run_totals`` collection: its runs
counted by state, the time of its newest run, the decision of its newest Completed run and
its newest server check. ``/metrics`` reads these (one document per model) instead of the
runs, so a scrape costs the number of models, never the number of runs.

- The counts move with the timeline's (``charts/run_counts.py``): the caller whose marker
  change matched calls :func:`inc`, so they are exactly once like the hourly counts.
- The newest run's time is a ``$max`` (repeating it changes nothing); the newest Completed
  run and the newest check are conditional ``$set``s that only a newer ``created_at``
  passes (:func:`_newer`), so late or retried writes never move them back.
- Deleting the run or check a document names reads the model's newest again
  (:func:`refresh_runs`, :func:`refresh_check`; keyset windows back from now, bounded by
  what the first non-empty window holds), and only if the document still names it.
- :func:`build` recounts everything from the runs and check runs (``run_counts.rebuild``).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from pymongo import ReplaceOne, UpdateOne
from pymongo.errors import DuplicateKeyError

from drift_backend.drifts import summary as drift_summary
from drift_backend.schemas import utcnow
from drift_backend.store.bulk import upsert_all
from drift_backend.store.database import Database
from drift_backend.store.keyset import keyset_page

RUN_TOTALS = "run_totals"
STATES = ("drifted", "not_drifted", "failed", "running")
COMPLETED = ("drifted", "not_drifted")
#: The check fields a document keeps (``check_runs`` fields, its ``_id`` as ``run_id``).
CHECK_FIELDS = ("run_id", "created_at", "drift_share", "dataset_drift")


def key(experiment_id: str, model: str) -> str:
    # The experiment id (a UUID) has no "|", so the model after it keeps keys unique.
    return f"{experiment_id}|{model}"


def _identity(experiment_id: str, model: str) -> dict[str, Any]:
    return {"experiment_id": experiment_id, "model": model}


async def _newer(
    db: Database, experiment_id: str, model: str, field: str, value: dict[str, Any]
) -> None:
    """Set ``field`` to ``value`` unless the document holds one at least as new (by
    ``created_at``). The upsert only inserts for a model without a document; when the
    filter fails on an existing one, its insert is a duplicate key: newer is there."""
    at = value["created_at"]
    # Older or none (a missing field's created_at is not >= at either); not an $or, which
    # SecantusDB plans beside _id as a scan of every model's document.
    newer_or_none = {f"{field}.created_at": {"$not": {"$gte": at}}}
    try:
        await db.run_totals.update_one(
            {"_id": key(experiment_id, model), **newer_or_none},
            {"$set": {field: value}, "$setOnInsert": _identity(experiment_id, model)},
            upsert=True,
        )
    except DuplicateKeyError:
        return


async def inc(db: Database, run: dict[str, Any], change: dict[str, int]) -> None:
    """Add ``change`` (state -> +1/-1) to ``run``'s model; the state it enters (if any)
    may make it the newest run or newest Completed run."""
    await inc_many(db, [(run, change)])


async def inc_many(db: Database, changes: list[tuple[dict[str, Any], dict[str, int]]]) -> None:
    """:func:`inc` for several runs: one upsert per model, all in one bulk write."""
    updates: dict[str, dict[str, Any]] = {}
    for run, change in changes:
        experiment_id, model = run["experiment_id"], run["model"]
        update = updates.setdefault(
            key(experiment_id, model),
            {"$inc": {}, "$setOnInsert": _identity(experiment_id, model)},
        )
        for state, n in change.items():
            update["$inc"][state] = update["$inc"].get(state, 0) + n
        if any(n > 0 for n in change.values()):
            last = update.setdefault("$max", {"last_run_at": run["created_at"]})
            last["last_run_at"] = max(last["last_run_at"], run["created_at"])
    ops = [UpdateOne({"_id": doc_id}, update, upsert=True) for doc_id, update in updates.items()]
    await upsert_all(db.run_totals, ops)
    newest: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {}  # model key -> completed
    for run, change in changes:
        experiment_id, model = run["experiment_id"], run["model"]
        entered = [state for state, n in change.items() if n > 0]
        if any(state in COMPLETED for state in entered):
            completed = {"created_at": run["created_at"], "drift": "drifted" in entered}
            known = newest.get(key(experiment_id, model))
            if known is None or known[1]["created_at"] < completed["created_at"]:
                newest[key(experiment_id, model)] = (run, completed)
        if not entered:  # it left this model (deleted, or moved to another model)
            await refresh_runs(db, experiment_id, model, run["created_at"])
    for run, completed in newest.values():  # only the newest of a model can win
        await _newer(db, run["experiment_id"], run["model"], "completed", completed)


async def refresh_runs(db: Database, experiment_id: str, model: str, gone: datetime) -> None:
    """After a run of ``gone``'s time left the model: read its newest run and newest
    Completed run again, where the document named that time."""
    doc_id = key(experiment_id, model)
    newest = await drift_summary.newest_run(db, experiment_id, model, completed=False)
    last = {"$set": {"last_run_at": newest["created_at"]}} if newest else None
    await db.run_totals.update_one(
        {"_id": doc_id, "last_run_at": gone}, last or {"$unset": {"last_run_at": ""}}
    )
    done = await drift_summary.newest_run(db, experiment_id, model, completed=True)
    completed = (
        {"$set": {"completed": {"created_at": done["created_at"], "drift": done["drift"]}}}
        if done
        else {"$unset": {"completed": ""}}
    )
    await db.run_totals.update_one({"_id": doc_id, "completed.created_at": gone}, completed)


def check_fields(check: dict[str, Any]) -> dict[str, Any]:
    """What a document keeps of a ``check_runs`` document."""
    return {
        "run_id": check["_id"],
        "created_at": check["created_at"],
        "drift_share": check.get("drift_share"),
        "dataset_drift": bool(check.get("dataset_drift")),
    }


async def record_check(db: Database, check: dict[str, Any]) -> None:
    """A check run's summary was stored (``check_runs``): its model's newest check, if it
    is newer than the one kept."""
    await _newer(db, check["experiment_id"], check["model"], "check", check_fields(check))


async def refresh_check(db: Database, experiment_id: str, model: str, gone: Iterable[str]) -> None:
    """After check runs ``gone`` were deleted: the model's newest check again, where the
    document named one of them."""
    scope = _identity(experiment_id, model)
    page = await keyset_page(db.check_runs, scope, after=None, before=None, limit=1, now=utcnow())
    update = (
        {"$set": {"check": check_fields(page.items[0])}}
        if page.items
        else {"$unset": {"check": ""}}
    )
    await db.run_totals.update_one(
        {"_id": key(experiment_id, model), "check.run_id": {"$in": list(gone)}}, update
    )


async def for_experiment(db: Database, experiment_id: str) -> list[dict[str, Any]]:
    """The documents of an experiment's models that have runs (one per model)."""
    return [
        doc
        async for doc in db.run_totals.find({"experiment_id": experiment_id})
        if any(doc.get(state, 0) for state in STATES)
    ]


async def runs(db: Database, experiment_id: str, model: str | None) -> int:
    """An experiment's runs (of one model, or of all): its models' documents summed, never
    a count of the runs."""
    scope: dict[str, Any] = (
        {"experiment_id": experiment_id} if model is None else {"_id": key(experiment_id, model)}
    )
    total = 0
    async for doc in db.run_totals.find(scope):
        total += sum(int(doc.get(state, 0)) for state in STATES)
    return total


async def by_state(db: Database) -> dict[str, int]:
    """Runs of every experiment by state: one document per (experiment, model) summed."""
    pipeline: list[dict[str, Any]] = [
        {
            "$group": {
                "_id": None,
                **{state: {"$sum": {"$ifNull": [f"${state}", 0]}} for state in STATES},
            }
        }
    ]
    rows = [row async for row in await db.run_totals.aggregate(pipeline)]
    return {state: int(rows[0][state]) if rows else 0 for state in STATES}


def start(run: dict[str, Any]) -> dict[str, Any]:
    """A built document's first state, for :func:`add` (``run_counts.rebuild``)."""
    return {
        "_id": key(run["experiment_id"], run["model"]),
        **_identity(run["experiment_id"], run["model"]),
        **dict.fromkeys(STATES, 0),
    }


def add(doc: dict[str, Any], run: dict[str, Any], state: str) -> None:
    """Count ``run`` (in ``state``) into a built document."""
    doc[state] += 1
    at = run["created_at"]
    if doc.get("last_run_at") is None or at > doc["last_run_at"]:
        doc["last_run_at"] = at
    completed = doc.get("completed")
    if state in COMPLETED and (completed is None or at > completed["created_at"]):
        doc["completed"] = {"created_at": at, "drift": state == "drifted"}


async def write_built(
    db: Database, built: dict[str, dict[str, Any]], experiment_id: str | None
) -> None:
    """Replace the documents of the scope with ``built``, each with its newest check."""
    scope = {} if experiment_id is None else {"experiment_id": experiment_id}
    fields = ("experiment_id", "model", "created_at", "drift_share", "dataset_drift")
    async for check in db.check_runs.find(scope, dict.fromkeys(fields, 1)):
        doc = built.get(key(check["experiment_id"], check["model"]))
        if doc is not None and (
            doc.get("check") is None or check["created_at"] > doc["check"]["created_at"]
        ):
            doc["check"] = check_fields(check)
    stale = [doc["_id"] async for doc in db.run_totals.find(scope, {"_id": 1})]
    gone = [doc_id for doc_id in stale if doc_id not in built]
    for first in range(0, len(gone), 1000):
        await db.run_totals.delete_many({"_id": {"$in": gone[first : first + 1000]}})
    docs = list(built.values())
    for first in range(0, len(docs), 1000):
        await db.run_totals.bulk_write(
            [
                ReplaceOne({"_id": doc["_id"]}, doc, upsert=True)
                for doc in docs[first : first + 1000]
            ],
            ordered=False,
        )


async def delete_for_experiment(db: Database, experiment_id: str) -> None:
    await db.run_totals.delete_many({"experiment_id": experiment_id})
