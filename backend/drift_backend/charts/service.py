"""The chart data of an experiment, shaped for the routes (and their CSV twins)."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Awaitable
from datetime import datetime, timedelta
from typing import Any

from drift_backend.charts import queries, run_counts, run_totals
from drift_backend.charts.buckets import Window
from drift_backend.drifts import timeline as drift_timeline
from drift_backend.store.database import Database

STATES = run_counts.STATES


def window_doc(window: Window) -> dict[str, Any]:
    return {
        "start": window.start,
        "end": window.end,
        "unit": window.unit,
        "bin_size": window.bin_size,
    }


async def timeline(
    db: Database, experiment_id: str, model: str | None, window: Window
) -> dict[str, Any]:
    """The window covered by the largest counted spans (``run_counts``) that fit its step,
    what is left at its edges by smaller ones, the rest (less than an hour at each edge, or
    a window cut finer than hours) by counting its runs; the parts are read concurrently."""
    parts: list[Awaitable[list[dict[str, Any]]]] = []

    def cover(start: datetime, end: datetime, grains: tuple[timedelta, ...]) -> None:
        if start >= end:
            return
        usable = [g for g in grains if window.step % g == timedelta(0)]
        if not usable:
            bucket = window.expression("created_at")
            parts.append(drift_timeline.run_counts(db, experiment_id, model, start, end, bucket))
            return
        grain, smaller = usable[0], tuple(usable[1:])
        first = run_counts.floor(start, grain)
        if first < start:
            first += grain
        last = run_counts.floor(end, grain)
        if first >= last:
            cover(start, end, smaller)
            return
        bucket = window.expression("start")
        parts.append(run_counts.spans(db, experiment_id, model, grain, first, last, bucket))
        cover(start, first, smaller)
        cover(last, end, smaller)

    cover(window.start, window.end, run_counts.GRAINS)
    totals: dict[datetime, dict[str, int]] = defaultdict(lambda: dict.fromkeys(STATES, 0))
    for rows in await asyncio.gather(*parts):
        for row in rows:
            for state in STATES:
                totals[row["_id"]][state] += row[state]
    buckets = [
        {"start": start, **counts}
        for start, counts in sorted(totals.items())
        if any(counts.values())
    ]
    return {"window": window_doc(window), "buckets": buckets}


async def feature_history(
    db: Database, experiment_id: str, feature: str, model: str | None, window: Window
) -> dict[str, Any]:
    rows = await queries.feature_history(db, experiment_id, feature, model, window)
    buckets = [{"start": row.pop("_id"), **row} for row in rows]
    return {"feature": feature, "window": window_doc(window), "buckets": buckets}


async def heatmap(
    db: Database, experiment_id: str, model: str | None, runs: int, features: int, now: datetime
) -> dict[str, Any]:
    recent = await queries.last_check_runs(db, experiment_id, model, runs, now)
    top = await queries.heatmap_features(db, experiment_id, model, recent, features)
    order = {run["_id"]: i for i, run in enumerate(recent)}
    cells = [
        {
            "run_id": cell["run_id"],
            "feature": doc["_id"],
            "test": cell.get("test"),
            "p_value": cell.get("p_value"),
            "p_value_adjusted": cell.get("p_value_adjusted"),
            "distance": cell.get("distance"),
            "drifted": bool(cell.get("drifted")),
        }
        for doc in top
        for cell in doc["cells"]
    ]
    # Newest run first; within a run, the features in the order above (a stable sort).
    cells.sort(key=lambda cell: order[cell["run_id"]])
    return {
        "runs": [
            {
                "run_id": run["_id"],
                "created_at": run["created_at"],
                "model": run["model"],
                "dataset_drift": bool(run.get("dataset_drift")),
            }
            for run in recent
        ],
        "features": [{"feature": doc["_id"], "drifted_runs": doc["drifted"]} for doc in top],
        "cells": cells,
    }


async def violations(
    db: Database, experiment_id: str, model: str | None, window: Window
) -> dict[str, Any]:
    found = await queries.violations(db, experiment_id, model, window)
    kinds: dict[datetime, dict[str, int]] = defaultdict(dict)
    for row in found["kinds"]:
        kinds[row["_id"]["bucket"]][row["_id"]["kind"]] = row["count"]
    checks = sorted(found["checks"], key=lambda row: row["_id"])
    return {
        "window": window_doc(window),
        "kinds": sorted({kind for by_kind in kinds.values() for kind in by_kind}),
        "buckets": [
            {
                "start": row["_id"],
                "checks": row["checks"],
                "total": row["total"],
                "kinds": dict(sorted(kinds[row["_id"]].items())),
            }
            for row in checks
        ],
    }


async def model_totals(db: Database, experiment_id: str) -> list[dict[str, Any]]:
    """Per model with runs, for ``/metrics``, the most recently run model first:
    ``{model, last_run_at, drift_detected, check}``; ``drift_detected`` is the newest
    Completed run's decision (None before the model has one), ``check`` its newest check
    run (``run_id``, ``created_at``, ``drift_share``, ``dataset_drift``) or None. One
    document per model (``run_totals``), whatever the number of runs."""
    rows = [
        {
            "model": doc["model"],
            "last_run_at": doc["last_run_at"],
            "drift_detected": (
                bool(doc["completed"]["drift"]) if doc.get("completed") is not None else None
            ),
            "check": doc.get("check"),
        }
        for doc in await run_totals.for_experiment(db, experiment_id)
        if doc.get("last_run_at") is not None
    ]
    rows.sort(key=lambda row: (row["last_run_at"], row["model"]), reverse=True)
    return rows


async def runs_by_status(db: Database) -> dict[str, int]:
    """Runs of every experiment by job status (``Running``, ``Completed``, ``Failed``),
    from the per-model totals kept as runs change state: never a count of the runs."""
    states = await run_totals.by_state(db)
    return {
        "Running": states["running"],
        "Completed": states["drifted"] + states["not_drifted"],
        "Failed": states["failed"],
    }


async def top_features(db: Database, run_id: str, limit: int) -> tuple[list[dict[str, Any]], int]:
    """Up to ``limit`` feature results of a check run, drifted first, then by name, and how
    many were left out: under a cap the drifted features are the ones to keep."""
    results = await queries.run_features(db, run_id)
    results.sort(key=lambda doc: (not doc.get("drifted"), str(doc.get("feature"))))
    return results[:limit], max(0, len(results) - limit)
