"""The chart collections, written when a check's report is stored (``checks/``) and read by
:mod:`.service`:

- ``feature_results``: one document per (check run, feature), ``_id`` ``"<run id>:<feature>"``,
  so per-feature history and the heatmap read an index instead of whole reports;
- ``check_runs``: one document per check run (``_id`` the run id) with its dataset-level
  result and its constraint violations counted by kind (``constraint_check_type``).

Both carry the run's ``experiment_id``, ``model`` and ``created_at`` (the run's time, as on
the run timeline). Writes are keyed by ``_id``: a retried check job rewrites the same
documents, never adds more.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

from pymongo import ReplaceOne

from drift_backend.charts import check_counts, run_totals
from drift_backend.store.bulk import insert_new
from drift_backend.store.database import Database

FEATURE_RESULTS = "feature_results"
CHECK_RUNS = "check_runs"
#: The fields of a report's feature a chart shows (``checks.engine.FeatureReport``).
FEATURE_FIELDS = (
    "kind",
    "test",
    "statistic",
    "p_value",
    "p_value_adjusted",
    "threshold",
    "distance",
    "drifted",
    "exact",
)


#: A heatmap cell's fields besides its feature and ``drifted``.
CELL_FIELDS = ("test", "p_value", "p_value_adjusted", "distance")


def _run_fields(run: dict[str, Any]) -> dict[str, Any]:
    return {
        "experiment_id": run["experiment_id"],
        "run_id": run["_id"],
        "model": run["model"],
        "created_at": run["created_at"],
    }


def feature_documents(run: dict[str, Any], report: dict[str, Any]) -> list[dict[str, Any]]:
    """The ``feature_results`` documents of a run (a ``drifts`` document) and its report."""
    base = _run_fields(run)
    docs = []
    for feature in report.get("features", []):
        name = feature["feature"]
        doc = {"_id": f"{run['_id']}:{name}", **base, "feature": name}
        doc.update({key: feature.get(key) for key in FEATURE_FIELDS})
        doc["drifted"] = bool(doc["drifted"])
        doc["exact"] = bool(doc["exact"])
        doc["untestable"] = feature.get("untestable") is not None
        docs.append(doc)
    return docs


def check_run_document(run: dict[str, Any], report: dict[str, Any]) -> dict[str, Any]:
    """The ``check_runs`` document of a run and its report."""
    kinds = Counter(
        str(v.get("constraint_check_type") or "unknown") for v in report.get("violations", [])
    )
    return {
        "_id": run["_id"],
        **_run_fields(run),
        "dataset_drift": bool(report.get("dataset_drift", False)),
        "drift_share": report.get("drift_share"),
        "n_tested": report.get("n_tested", 0),
        "violations": [{"kind": kind, "count": n} for kind, n in sorted(kinds.items())],
        "violation_total": sum(kinds.values()),
        # The heatmap's cells of this run (``service.heatmap``): with the run's summary, the
        # last N check runs' keyset page carries them, and no results are read.
        "cells": [
            {
                "feature": feature["feature"],
                **{key: feature.get(key) for key in CELL_FIELDS},
                "drifted": bool(feature.get("drifted")),
            }
            for feature in report.get("features", [])
        ],
    }


async def record_check(db: Database, run: dict[str, Any], report: dict[str, Any]) -> None:
    """Store what the charts need of a finished check; doing it again changes nothing."""
    features = feature_documents(run, report)
    # The first attempt inserts (upserts cost SecantusDB twice as much: a second per 1,000
    # features); a retried one finds its documents there and rewrites them.
    if features and await insert_new(db.feature_results, features):
        await db.feature_results.bulk_write(
            [ReplaceOne({"_id": doc["_id"]}, doc, upsert=True) for doc in features],
            ordered=False,
        )
    summary = check_run_document(run, report)
    await db.check_runs.replace_one({"_id": summary["_id"]}, summary, upsert=True)
    await run_totals.record_check(db, summary)  # the model's newest check, for /metrics
    # The violations' and feature history's counts: once per check, also when retried.
    await check_counts.record(db, summary, features)


async def delete_for_runs(db: Database, run_ids: Iterable[str]) -> None:
    ids = list(run_ids)
    if not ids:
        return
    models = {
        (doc["experiment_id"], doc["model"])
        async for doc in db.check_runs.find({"_id": {"$in": ids}}, {"experiment_id": 1, "model": 1})
    }
    counted = await check_counts.counted(db, ids)
    # The results of counted checks, for their feature spans (none once an experiment's
    # deletion dropped its counts first).
    fields = {"experiment_id": 1, "model": 1, "feature": 1, "created_at": 1, "run_id": 1}
    results = (
        [doc async for doc in db.feature_results.find({"run_id": {"$in": counted}}, fields)]
        if counted
        else []
    )
    await db.feature_results.delete_many({"run_id": {"$in": ids}})
    await db.check_runs.delete_many({"_id": {"$in": ids}})
    if counted:
        await check_counts.forget(db, counted, results)
    for experiment_id, model in models:  # a deleted check may have been a model's newest
        await run_totals.refresh_check(db, experiment_id, model, ids)
