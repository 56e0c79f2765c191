"""The run timeline the dashboard charts: runs of an experiment per time bucket, by outcome,
counted in MongoDB over the ``(experiment_id[, model], created_at)`` index."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

from drift_backend.drifts.schemas import JobStatus
from drift_backend.store.database import Database


def _count_if(condition: Any) -> dict[str, Any]:
    return {"$sum": {"$cond": [condition, 1, 0]}}


def timeline_pipeline(
    experiment_id: str,
    model: str | None,
    start: datetime,
    end: datetime,
    bucket: dict[str, Any],
) -> list[dict[str, Any]]:
    """``bucket``: the expression of a run's bucket (``$dateTrunc`` of ``$created_at``)."""
    match: dict[str, Any] = {"experiment_id": experiment_id}
    if model is not None:
        match["model"] = model
    match["created_at"] = {"$gte": start, "$lt": end}
    completed = {"$eq": ["$job_status", JobStatus.Completed.value]}
    return [
        {"$match": match},
        {
            "$group": {
                "_id": bucket,
                "drifted": _count_if({"$and": [completed, "$drift_detected"]}),
                "not_drifted": _count_if({"$and": [completed, {"$not": ["$drift_detected"]}]}),
                "failed": _count_if({"$eq": ["$job_status", JobStatus.Failed.value]}),
                "running": _count_if({"$eq": ["$job_status", JobStatus.Running.value]}),
            }
        },
        {"$sort": {"_id": 1}},
    ]


async def run_counts(
    db: Database,
    experiment_id: str,
    model: str | None,
    start: datetime,
    end: datetime,
    bucket: dict[str, Any],
) -> list[dict[str, Any]]:
    """One row per non-empty bucket: ``_id`` (its start), drifted, not_drifted, failed,
    running."""
    pipeline = timeline_pipeline(experiment_id, model, start, end, bucket)
    return [doc async for doc in await db.drifts.aggregate(pipeline)]


#: What the charts' run counts need of a run (``charts/run_counts.py`` rebuilds from these).
STATE_FIELDS = {
    "experiment_id": 1,
    "model": 1,
    "created_at": 1,
    "job_status": 1,
    "drift_detected": 1,
}


async def run_states(db: Database, experiment_id: str | None) -> AsyncIterator[dict[str, Any]]:
    """Every run (of one experiment, or of all), with only :data:`STATE_FIELDS`."""
    scope = {} if experiment_id is None else {"experiment_id": experiment_id}
    async for doc in db.drifts.find(scope, STATE_FIELDS):
        yield doc


async def any_run(db: Database) -> bool:
    return await db.drifts.find_one({}, {"_id": 1}) is not None
