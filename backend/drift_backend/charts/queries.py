"""The chart aggregations, each one pipeline computed in MongoDB over a range of one index
(``store/database.py`` ``INDEXES``): what comes back is at most one row per bucket (and
kind), never the runs themselves."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from drift_backend.charts.buckets import Window
from drift_backend.store.database import Database


def scope(
    experiment_id: str, model: str | None, window: Window | None = None, **more: Any
) -> dict[str, Any]:
    """A ``$match`` whose fields are an index's prefix (experiment, [model], ..., time)."""
    match: dict[str, Any] = {"experiment_id": experiment_id}
    if model is not None:
        match["model"] = model
    match.update(more)
    if window is not None:
        match["created_at"] = {"$gte": window.start, "$lt": window.end}
    return match


def _count_if(condition: Any) -> dict[str, Any]:
    return {"$sum": {"$cond": [condition, 1, 0]}}


def feature_history_pipeline(
    experiment_id: str, feature: str, model: str | None, window: Window
) -> list[dict[str, Any]]:
    return [
        {"$match": scope(experiment_id, model, window, feature=feature)},
        {
            "$group": {
                "_id": window.expression("created_at"),
                "runs": {"$sum": 1},
                "drifted": _count_if("$drifted"),
                # $min/$max skip nulls: a bucket of distance tests has no p-value.
                "p_value_min": {"$min": "$p_value"},
                "p_value_adjusted_min": {"$min": "$p_value_adjusted"},
                "distance_max": {"$max": "$distance"},
                "threshold": {"$max": "$threshold"},
            }
        },
        {"$sort": {"_id": 1}},
    ]


async def feature_history(
    db: Database, experiment_id: str, feature: str, model: str | None, window: Window
) -> list[dict[str, Any]]:
    pipeline = feature_history_pipeline(experiment_id, feature, model, window)
    return [doc async for doc in await db.feature_results.aggregate(pipeline)]


def violations_pipeline(
    experiment_id: str, model: str | None, window: Window
) -> list[dict[str, Any]]:
    return [
        {"$match": scope(experiment_id, model, window)},
        {"$set": {"bucket": window.expression("created_at")}},
        {
            "$facet": {
                "checks": [
                    {
                        "$group": {
                            "_id": "$bucket",
                            "checks": {"$sum": 1},
                            "total": {"$sum": "$violation_total"},
                        }
                    }
                ],
                "kinds": [
                    {"$unwind": "$violations"},
                    {
                        "$group": {
                            "_id": {"bucket": "$bucket", "kind": "$violations.kind"},
                            "count": {"$sum": "$violations.count"},
                        }
                    },
                ],
            }
        },
    ]


async def violations(
    db: Database, experiment_id: str, model: str | None, window: Window
) -> dict[str, list[dict[str, Any]]]:
    pipeline = violations_pipeline(experiment_id, model, window)
    result = [doc async for doc in await db.check_runs.aggregate(pipeline)]
    return result[0] if result else {"checks": [], "kinds": []}


#: How far back the heatmap looks for its last runs, widening until it has enough: a bounded
#: range of the (experiment, time) index costs what is in it, while "newest N of all" is
#: sorted in memory by SecantusDB (it fetched and sorted all 9,500 check runs of the 100k-run
#: benchmark experiment for 50 of them).
RECENT_SPANS = (timedelta(days=1), timedelta(days=7), timedelta(days=30), timedelta(days=365))


async def last_check_runs(
    db: Database, experiment_id: str, model: str | None, limit: int, now: datetime
) -> list[dict[str, Any]]:
    """The newest ``limit`` check runs, newest first."""
    found: list[dict[str, Any]] = []
    for span in (*RECENT_SPANS, None):
        match = scope(experiment_id, model)
        if span is not None:
            match["created_at"] = {"$gte": now - span}
        cursor = (
            db.check_runs.find(match, {"_id": 1, "model": 1, "created_at": 1, "dataset_drift": 1})
            .sort([("created_at", -1), ("_id", -1)])
            .limit(limit)
        )
        found = [doc async for doc in cursor]
        if len(found) == limit:
            break
    return found


def top_features_pipeline(run_ids: list[str], limit: int) -> list[dict[str, Any]]:
    return [
        {"$match": {"run_id": {"$in": run_ids}}},
        {"$group": {"_id": "$feature", "drifted": _count_if("$drifted")}},
        {"$sort": {"drifted": -1, "_id": 1}},
        {"$limit": limit},
    ]


async def heatmap_cells(
    db: Database, run_ids: list[str], limit: int
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The ``limit`` features drifted in most of ``run_ids`` (ties by name), and their
    results in those runs."""
    if not run_ids:
        return [], []
    pipeline = top_features_pipeline(run_ids, limit)
    top = [doc async for doc in await db.feature_results.aggregate(pipeline)]
    names = [doc["_id"] for doc in top]
    cursor = db.feature_results.find(
        {"run_id": {"$in": run_ids}, "feature": {"$in": names}},
        {
            "_id": 0,
            "run_id": 1,
            "feature": 1,
            "test": 1,
            "p_value": 1,
            "p_value_adjusted": 1,
            "distance": 1,
            "drifted": 1,
        },
    )
    return top, [doc async for doc in cursor]
