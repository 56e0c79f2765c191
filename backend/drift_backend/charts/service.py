"""The chart data of an experiment, shaped for the routes (and their CSV twins)."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Awaitable
from datetime import datetime
from typing import Any

from drift_backend.charts import (
    check_counts,
    cover,
    feature_counts,
    queries,
    run_counts,
    run_totals,
)
from drift_backend.charts.buckets import Window
from drift_backend.drifts import timeline as drift_timeline
from drift_backend.store.database import Database

STATES = run_counts.STATES
#: How a feature-history bucket keeps each extreme of the values it holds.
HISTORY_EXTREMES = {
    "p_value_min": min,
    "p_value_adjusted_min": min,
    "distance_max": max,
    "threshold": max,
}


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
    """The window from the counted spans (``run_counts``) that fit its step (6-hour ones
    from their days' documents), the rest (less than 10 minutes at each edge, or a window
    cut finer) by counting its runs (``charts/cover.py``); the parts are read concurrently."""
    reads: list[Awaitable[list[dict[str, Any]]]] = []
    for part in cover.parts(window, run_counts.GRAINS):
        if part.grain is None:
            bucket = window.expression("created_at")
            reads.append(
                drift_timeline.run_counts(db, experiment_id, model, part.start, part.end, bucket)
            )
        elif part.grain in run_counts.HELD:
            reads.append(
                run_counts.held(db, experiment_id, model, part.grain, part.start, part.end, window)
            )
        else:
            bucket = window.expression("start")
            reads.append(
                run_counts.spans(db, experiment_id, model, part.grain, part.start, part.end, bucket)
            )
    totals: dict[datetime, dict[str, int]] = defaultdict(lambda: dict.fromkeys(STATES, 0))
    for rows in await asyncio.gather(*reads):
        for row in rows:
            for state in STATES:
                totals[row["_id"]][state] += row[state]
    buckets = [
        {"start": start, **counts}
        for start, counts in sorted(totals.items())
        if any(counts.values())
    ]
    return {"window": window_doc(window), "buckets": buckets}


def _merge_history(rows: list[dict[str, Any]], into: dict[datetime, dict[str, Any]]) -> None:
    """Add rows of a bucket (from spans or from results) to what it has: counts summed,
    the smallest p-values and the largest distance and threshold kept (None is no value)."""
    for row in rows:
        bucket = into.setdefault(row["_id"], {"runs": 0, "drifted": 0})
        bucket["runs"] += row["runs"]
        bucket["drifted"] += row["drifted"]
        for field, pick in HISTORY_EXTREMES.items():
            values = [v for v in (bucket.get(field), row.get(field)) if v is not None]
            bucket[field] = pick(values) if values else None


async def _history_spans(
    db: Database,
    experiment_id: str,
    feature: str,
    model: str | None,
    window: Window,
    part: cover.Part,
) -> list[dict[str, Any]]:
    """The feature's 6-hour entries in ``part`` as rows of their buckets."""
    entries = await feature_counts.spans(db, experiment_id, feature, model, part.start, part.end)
    return [{"_id": window.bucket_of(start), **entry} for start, entry in entries]


async def feature_history(
    db: Database, experiment_id: str, feature: str, model: str | None, window: Window
) -> dict[str, Any]:
    """The window from the 6-hour feature spans (``feature_counts``, kept in day
    documents) where its step is a multiple of 6 hours, the rest from the feature's
    results (``charts/cover.py``)."""
    reads: list[Awaitable[list[dict[str, Any]]]] = []
    for part in cover.parts(window, feature_counts.GRAINS):
        if part.grain is None:
            reads.append(
                queries.feature_history(
                    db, experiment_id, feature, model, window, part.start, part.end
                )
            )
        else:
            reads.append(_history_spans(db, experiment_id, feature, model, window, part))
    merged: dict[datetime, dict[str, Any]] = {}
    for rows in await asyncio.gather(*reads):
        _merge_history(rows, merged)
    buckets = [
        {"start": start, **values} for start, values in sorted(merged.items()) if values["runs"]
    ]
    return {"feature": feature, "window": window_doc(window), "buckets": buckets}


def _top_from_cells(recent: list[dict[str, Any]], limit: int) -> list[dict[str, Any]]:
    """``[{_id: feature, drifted, cells}]`` from the runs' own cells, as
    ``queries.heatmap_features`` aggregates them from ``feature_results``."""
    by_feature: dict[str, dict[str, Any]] = {}
    for run in recent:
        for cell in run["cells"]:
            row = by_feature.setdefault(cell["feature"], {"drifted": 0, "cells": []})
            row["drifted"] += 1 if cell.get("drifted") else 0
            row["cells"].append({"run_id": run["_id"], **cell})
    ordered = sorted(by_feature.items(), key=lambda item: (-item[1]["drifted"], item[0]))
    return [{"_id": name, **row} for name, row in ordered[:limit]]


async def heatmap(
    db: Database, experiment_id: str, model: str | None, runs: int, features: int, now: datetime
) -> dict[str, Any]:
    """The last ``runs`` check runs (a keyset page of ``check_runs``) and the ``features``
    drifted in most of them. Each check run carries its cells, so the page is all that is
    read; check runs stored before they did are read from ``feature_results``."""
    recent = await queries.last_check_runs(db, experiment_id, model, runs, now)
    if all("cells" in run for run in recent):
        top = _top_from_cells(recent, features)
    else:
        top = await queries.heatmap_features(db, experiment_id, recent, features)
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
    """The window from the violation counts (``violation_counts``, per 6 hours in day
    documents, and per hour) that fit its step, the rest from the check runs
    (``charts/cover.py``)."""
    checks: dict[datetime, dict[str, int]] = defaultdict(lambda: {"checks": 0, "total": 0})
    kinds: dict[datetime, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for part in cover.parts(window, check_counts.GRAINS):
        if part.grain is None:
            found = await queries.violations(db, experiment_id, model, window, part.start, part.end)
            for row in found["checks"]:
                checks[row["_id"]]["checks"] += row["checks"]
                checks[row["_id"]]["total"] += row["total"]
            for row in found["kinds"]:
                kinds[row["_id"]["bucket"]][row["_id"]["kind"]] += row["count"]
            continue
        if part.grain == cover.QUARTER:
            spans = await check_counts.violation_quarters(
                db, experiment_id, model, part.start, part.end
            )
        else:
            spans = await check_counts.violation_spans(
                db, experiment_id, model, part.grain, part.start, part.end
            )
        for doc in spans:
            bucket = window.bucket_of(doc["start"])
            checks[bucket]["checks"] += doc.get("checks", 0)
            checks[bucket]["total"] += doc.get("total", 0)
            for field, n in (doc.get("kinds") or {}).items():
                kinds[bucket][check_counts.unescape(field)] += n
    return {
        "window": window_doc(window),
        "kinds": sorted({kind for by_kind in kinds.values() for kind, n in by_kind.items() if n}),
        "buckets": [
            {
                "start": start,
                "checks": row["checks"],
                "total": row["total"],
                "kinds": {kind: n for kind, n in sorted(kinds[start].items()) if n},
            }
            for start, row in sorted(checks.items())
            if row["checks"]
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


async def run_count(db: Database, experiment_id: str, model: str | None = None) -> int:
    """How many runs an experiment (one of its models) has, from the per-model totals kept
    as runs change state (``run_totals``): one document per model read, whatever the number
    of runs. Exact as the counts are (``charts/run_counts.py``): a run is in it once its
    write has counted it, and a count lost to a failure is missing until a rebuild."""
    return await run_totals.runs(db, experiment_id, model)


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
