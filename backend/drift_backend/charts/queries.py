"""The chart aggregations, each one pipeline computed in MongoDB over a range of one index
(``store/database.py`` ``INDEXES``): what comes back is at most one row per bucket (and
kind), never the runs themselves."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from drift_backend.charts.buckets import Window
from drift_backend.store.database import Database
from drift_backend.store.keyset import keyset_page


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


def of_model(model: str | None) -> list[dict[str, Any]]:
    """The stage that keeps one model's ``feature_results``, after a ``$match`` on an index
    without the model (there is none with it: ``store.database.INDEXES``). Apart, because
    SecantusDB plans a ``$match`` with a field its index lacks as a collection scan."""
    return [] if model is None else [{"$match": {"model": model}}]


#: The fields of ``feature_results`` a feature's history reads.
HISTORY_FIELDS = (
    "created_at",
    "drifted",
    "p_value",
    "p_value_adjusted",
    "distance",
    "threshold",
)


def _count_if(condition: Any) -> dict[str, Any]:
    return {"$sum": {"$cond": [condition, 1, 0]}}


def feature_history_pipeline(
    experiment_id: str,
    feature: str,
    model: str | None,
    window: Window,
    start: datetime | None = None,
    end: datetime | None = None,
) -> list[dict[str, Any]]:
    """The results in ``[start, end)`` (default: the window) per bucket of ``window``."""
    match = scope(experiment_id, None, feature=feature)
    match["created_at"] = {"$gte": start or window.start, "$lt": end or window.end}
    return [
        {"$match": match},
        *of_model(model),
        # Only what the buckets need travels on (a report's feature carries more).
        {"$project": dict.fromkeys(HISTORY_FIELDS, 1)},
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
    db: Database,
    experiment_id: str,
    feature: str,
    model: str | None,
    window: Window,
    start: datetime,
    end: datetime,
) -> list[dict[str, Any]]:
    pipeline = feature_history_pipeline(experiment_id, feature, model, window, start, end)
    return [doc async for doc in await db.feature_results.aggregate(pipeline)]


def violations_pipeline(
    experiment_id: str,
    model: str | None,
    window: Window,
    start: datetime | None = None,
    end: datetime | None = None,
) -> list[dict[str, Any]]:
    """The check runs in ``[start, end)`` (default: the window) per bucket of ``window``."""
    match = scope(experiment_id, model)
    match["created_at"] = {"$gte": start or window.start, "$lt": end or window.end}
    return [
        {"$match": match},
        {
            "$project": {
                "_id": 0,
                "bucket": window.expression("created_at"),
                "violation_total": 1,
                "violations": 1,
            }
        },
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
    db: Database,
    experiment_id: str,
    model: str | None,
    window: Window,
    start: datetime,
    end: datetime,
) -> dict[str, list[dict[str, Any]]]:
    pipeline = violations_pipeline(experiment_id, model, window, start, end)
    result = [doc async for doc in await db.check_runs.aggregate(pipeline)]
    return result[0] if result else {"checks": [], "kinds": []}


async def last_check_runs(
    db: Database, experiment_id: str, model: str | None, limit: int, now: datetime
) -> list[dict[str, Any]]:
    """The newest ``limit`` check runs, newest first: a keyset page, which reads widening
    windows back from now until it has them (``store/keyset.py``), so it costs about
    ``limit`` documents however many checks the experiment has. (Its first version asked
    for the newest N of all, which SecantusDB sorted in memory: it fetched and sorted all
    9,500 check runs of the 100k-run benchmark experiment for 50 of them.)"""
    page = await keyset_page(
        db.check_runs, scope(experiment_id, model), after=None, before=None, limit=limit, now=now
    )
    return page.items


def heatmap_pipeline(
    experiment_id: str, runs: list[dict[str, Any]], limit: int
) -> list[dict[str, Any]]:
    """The ``limit`` features drifted in most of ``runs`` (ties by name), each with its
    cells. Matched by the runs' time span on the (experiment, time) index, the run ids only
    narrowing it (and naming the model's runs, when the runs are one model's): SecantusDB's
    ``$in`` lookups on ``run_id`` cost more than the whole range, and a query by run and
    feature scanned the whole collection."""
    times = [run["created_at"] for run in runs]
    match = scope(experiment_id, None, created_at={"$gte": min(times), "$lte": max(times)})
    cell = {
        key: f"${key}"
        for key in ("run_id", "test", "p_value", "p_value_adjusted", "distance", "drifted")
    }
    return [
        {"$match": match},
        # Apart: SecantusDB plans a first $match with an $in in it as a collection scan.
        {"$match": {"run_id": {"$in": [run["_id"] for run in runs]}}},
        {"$group": {"_id": "$feature", "drifted": _count_if("$drifted"), "cells": {"$push": cell}}},
        {"$sort": {"drifted": -1, "_id": 1}},
        {"$limit": limit},
    ]


async def heatmap_features(
    db: Database, experiment_id: str, runs: list[dict[str, Any]], limit: int
) -> list[dict[str, Any]]:
    """``[{_id: feature, drifted, cells: [...]}]`` of ``runs``, most drifted first."""
    if not runs:
        return []
    pipeline = heatmap_pipeline(experiment_id, runs, limit)
    return [doc async for doc in await db.feature_results.aggregate(pipeline)]


async def run_features(db: Database, run_id: str) -> list[dict[str, Any]]:
    """A check run's per-feature results (on the ``run_id`` index; at most the batch's
    columns)."""
    projection = {
        "_id": 0,
        "feature": 1,
        "test": 1,
        "p_value": 1,
        "p_value_adjusted": 1,
        "distance": 1,
        "drifted": 1,
    }
    return [doc async for doc in db.feature_results.find({"run_id": run_id}, projection)]
