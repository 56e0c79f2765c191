"""The chart data of an experiment, shaped for the routes (and their CSV twins)."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

from drift_backend.charts import queries, run_counts
from drift_backend.charts.buckets import Window
from drift_backend.drifts import timeline as drift_timeline
from drift_backend.store.database import Database

HOUR = timedelta(hours=1)
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
    """Whole hours from the hourly counts (``run_counts``), the partial hours at the window's
    edges (and windows cut finer than hours) by counting their runs."""
    first = run_counts.hour_of(window.start)
    if first < window.start:
        first += HOUR
    last = run_counts.hour_of(window.end)
    by_runs = [(window.start, window.end)]
    totals: dict[datetime, dict[str, int]] = defaultdict(lambda: dict.fromkeys(STATES, 0))
    if window.step >= HOUR and first < last:
        # Hour-sized or larger buckets align to whole hours: each hour lies in one bucket.
        rows = await run_counts.hourly(
            db, experiment_id, model, first, last, window.expression("hour")
        )
        for row in rows:
            for state in STATES:
                totals[row["_id"]][state] += row[state]
        by_runs = [(window.start, first), (last, window.end)]
    for start, end in by_runs:
        if start >= end:
            continue
        rows = await drift_timeline.run_counts(
            db, experiment_id, model, start, end, window.expression("created_at")
        )
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
