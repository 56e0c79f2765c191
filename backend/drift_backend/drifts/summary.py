"""The newest run of each model of an experiment, and the runs by status, for ``/metrics``
(``metrics/sources.py``); reads of the ``drifts`` collection, so they live with its owner."""

from __future__ import annotations

from typing import Any

from drift_backend.drifts.schemas import JobStatus
from drift_backend.store.database import Database


def newest_per_model_pipeline(
    experiment_id: str, fields: dict[str, str], **match: Any
) -> list[dict[str, Any]]:
    """One row per model with ``fields`` of its newest run. The sort is the (experiment,
    model, created_at) index's order, so MongoDB reads one index entry per model (a
    ``DISTINCT_SCAN``) instead of every run."""
    return [
        {"$match": {"experiment_id": experiment_id, **match}},
        {"$sort": {"model": 1, "created_at": -1}},
        {
            "$group": {
                "_id": "$model",
                **{name: {"$first": f"${field}"} for name, field in fields.items()},
            }
        },
    ]


async def newest_per_model(db: Database, experiment_id: str) -> list[dict[str, Any]]:
    """``[{model, last_run_at, drift_detected}]``, the most recently run model first:
    ``last_run_at`` is the newest run's time (any status), ``drift_detected`` the newest
    Completed run's decision (None while a model has none)."""
    fields = {"last_run_at": "created_at", "job_status": "job_status", "detected": "drift_detected"}
    newest = await db.drifts.aggregate(newest_per_model_pipeline(experiment_id, fields))
    rows = []
    async for row in newest:
        detected: bool | None = bool(row.get("detected"))
        if row.get("job_status") != JobStatus.Completed:
            # Usually the newest run is the Completed one; else the newest Completed run,
            # walking the same index from the newest (one look-up per such model).
            completed = await db.drifts.find_one(
                {
                    "experiment_id": experiment_id,
                    "model": row["_id"],
                    "job_status": str(JobStatus.Completed),
                },
                {"drift_detected": 1},
                sort=[("created_at", -1)],
            )
            detected = bool(completed.get("drift_detected")) if completed else None
        rows.append(
            {"model": row["_id"], "last_run_at": row["last_run_at"], "drift_detected": detected}
        )
    rows.sort(key=lambda row: (row["last_run_at"], row["model"]), reverse=True)
    return rows


async def count_by_status(db: Database) -> dict[str, int]:
    """Runs of every experiment by ``job_status``, counted on the (job_status, updated_at)
    index."""
    return {
        str(status): await db.drifts.count_documents({"job_status": str(status)})
        for status in JobStatus
    }
