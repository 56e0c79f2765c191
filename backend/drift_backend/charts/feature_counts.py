"""A feature's history, pre-aggregated: the ``feature_counts`` collection, one document per
(experiment, model, feature, 6 hours of ``created_at``) with what the feature-history chart
shows of a bucket: checks (``runs``), how many drifted, the smallest p-value and adjusted
p-value, the largest distance and threshold. A 30-day history (6-hour buckets) reads its
120 spans per model instead of every check's result.

Added to by :mod:`.check_counts` once per check run, under its marker (exactly once). Only
one grain, 6 hours, because the write is one upsert per feature of a check: measured on
SecantusDB, 1,000 features' upserts cost 1.1-1.8 s beside 0.5-0.8 s for inserting their
``feature_results`` (docs/benchmarks.md). A window whose step is not a multiple of 6 hours
(7 days and less) reads the results themselves, as before.

``$min``/``$max`` cannot be undone, so a deleted check's spans are recomputed from the
results left (:func:`recompute`; the results of one model's 6 hours).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from pymongo import DeleteOne, ReplaceOne, UpdateOne
from pymongo.errors import BulkWriteError

from drift_backend.charts.cover import floor
from drift_backend.store.database import Database

FEATURE_COUNTS = "feature_counts"
GRAIN = timedelta(hours=6)
GRAINS = (GRAIN,)
DUPLICATE_KEY = 11000
#: The aggregate fields: (field, operator, result field).
MINIMA = (("p_value_min", "p_value"), ("p_value_adjusted_min", "p_value_adjusted"))
MAXIMA = (("distance_max", "distance"), ("threshold", "threshold"))


def key(experiment_id: str, model: str, feature: str, start: datetime) -> str:
    # Model and feature may both hold "|": the model's length keeps the pairs apart.
    return f"{experiment_id}|{start.isoformat()}|{len(model)}|{model}|{feature}"


def _identity(result: dict[str, Any]) -> dict[str, Any]:
    return {
        "experiment_id": result["experiment_id"],
        "model": result["model"],
        "feature": result["feature"],
        "start": floor(result["created_at"], GRAIN),
    }


def _op(result: dict[str, Any]) -> UpdateOne:
    """Count one ``feature_results`` document into its span."""
    ident = _identity(result)
    update: dict[str, Any] = {
        "$setOnInsert": ident,
        "$inc": {"runs": 1, "drifted": 1 if result.get("drifted") else 0},
    }
    # $min/$max would take a null as the smallest value: only values are sent.
    minima = {name: result[f] for name, f in MINIMA if result.get(f) is not None}
    maxima = {name: result[f] for name, f in MAXIMA if result.get(f) is not None}
    if minima:
        update["$min"] = minima
    if maxima:
        update["$max"] = maxima
    doc_id = key(ident["experiment_id"], ident["model"], ident["feature"], ident["start"])
    return UpdateOne({"_id": doc_id}, update, upsert=True)


async def add(db: Database, results: list[dict[str, Any]]) -> None:
    """Count a check's ``feature_results`` documents (its caller holds the marker)."""
    if not results:
        return
    ops = [_op(result) for result in results]
    try:
        await db.feature_counts.bulk_write(ops, ordered=False)
    except BulkWriteError as error:
        failed = error.details.get("writeErrors", [])
        if any(e.get("code") != DUPLICATE_KEY for e in failed):
            raise
        # Two checks of a span upserted its documents at once: they exist now.
        await db.feature_counts.bulk_write([ops[e["index"]] for e in failed], ordered=False)


def _group() -> dict[str, Any]:
    return {
        "runs": {"$sum": 1},
        "drifted": {"$sum": {"$cond": ["$drifted", 1, 0]}},
        **{name: {"$min": f"${f}"} for name, f in MINIMA},
        **{name: {"$max": f"${f}"} for name, f in MAXIMA},
    }


def _built(ident: dict[str, Any], row: dict[str, Any]) -> dict[str, Any]:
    doc = {
        "_id": key(ident["experiment_id"], ident["model"], ident["feature"], ident["start"]),
        **ident,
        "runs": row["runs"],
        "drifted": row["drifted"],
    }
    doc.update({name: row[name] for name, _ in (*MINIMA, *MAXIMA) if row.get(name) is not None})
    return doc


async def recompute(db: Database, gone: Iterable[dict[str, Any]]) -> None:
    """After ``feature_results`` documents ``gone`` were deleted: their spans again, from
    the results left in each (experiment, model, 6 hours)."""
    spans: dict[tuple[str, str, datetime], set[str]] = {}
    for result in gone:
        ident = _identity(result)
        span = (ident["experiment_id"], ident["model"], ident["start"])
        spans.setdefault(span, set()).add(result["feature"])
    for (experiment_id, model, start), features in spans.items():
        match = {
            "experiment_id": experiment_id,
            "model": model,
            "created_at": {"$gte": start, "$lt": start + GRAIN},
        }
        pipeline = [{"$match": match}, {"$group": {"_id": "$feature", **_group()}}]
        left = {row["_id"]: row async for row in await db.feature_results.aggregate(pipeline)}
        ops: list[ReplaceOne[dict[str, Any]] | DeleteOne] = []
        for feature in features:
            ident = {
                "experiment_id": experiment_id,
                "model": model,
                "feature": feature,
                "start": start,
            }
            doc_id = key(experiment_id, model, feature, start)
            if feature in left:
                ops.append(ReplaceOne({"_id": doc_id}, _built(ident, left[feature]), upsert=True))
            else:
                ops.append(DeleteOne({"_id": doc_id}))
        await db.feature_counts.bulk_write(ops, ordered=False)


async def build(db: Database, experiment_id: str | None) -> None:
    """Recount the scope's spans from its ``feature_results`` (``check_counts.rebuild``)."""
    scope = {} if experiment_id is None else {"experiment_id": experiment_id}
    pipeline: list[dict[str, Any]] = [
        {"$match": scope},
        {
            "$group": {
                "_id": {
                    "experiment_id": "$experiment_id",
                    "model": "$model",
                    "feature": "$feature",
                    "start": {
                        "$dateTrunc": {
                            "date": "$created_at",
                            "unit": "hour",
                            "binSize": int(GRAIN.total_seconds() // 3600),
                            "timezone": "UTC",
                        }
                    },
                },
                **_group(),
            }
        },
    ]
    built = {}
    async for row in await db.feature_results.aggregate(pipeline):
        doc = _built(row["_id"], row)
        built[doc["_id"]] = doc
    stale = [doc["_id"] async for doc in db.feature_counts.find(scope, {"_id": 1})]
    gone = [doc_id for doc_id in stale if doc_id not in built]
    for first in range(0, len(gone), 1000):
        await db.feature_counts.delete_many({"_id": {"$in": gone[first : first + 1000]}})
    docs = list(built.values())
    for first in range(0, len(docs), 1000):
        chunk = docs[first : first + 1000]
        await db.feature_counts.bulk_write(
            [ReplaceOne({"_id": doc["_id"]}, doc, upsert=True) for doc in chunk], ordered=False
        )


def spans_pipeline(
    experiment_id: str,
    feature: str,
    model: str | None,
    start: datetime,
    end: datetime,
    bucket: dict[str, Any],
) -> list[dict[str, Any]]:
    """The spans in ``[start, end)`` (on span edges) per ``bucket`` (an expression of
    ``$start``), over the ``(experiment_id[, model], feature, start)`` index; rows shaped
    as ``queries.feature_history``'s."""
    match: dict[str, Any] = {"experiment_id": experiment_id}
    if model is not None:
        match["model"] = model
    match["feature"] = feature
    match["start"] = {"$gte": start, "$lt": end}
    return [
        {"$match": match},
        {
            "$group": {
                "_id": bucket,
                "runs": {"$sum": "$runs"},
                "drifted": {"$sum": "$drifted"},
                **{name: {"$min": f"${name}"} for name, _ in MINIMA},
                **{name: {"$max": f"${name}"} for name, _ in MAXIMA},
            }
        },
        {"$sort": {"_id": 1}},
    ]


async def spans(
    db: Database,
    experiment_id: str,
    feature: str,
    model: str | None,
    start: datetime,
    end: datetime,
    bucket: dict[str, Any],
) -> list[dict[str, Any]]:
    pipeline = spans_pipeline(experiment_id, feature, model, start, end, bucket)
    return [doc async for doc in await db.feature_counts.aggregate(pipeline)]


async def delete_for_experiment(db: Database, experiment_id: str) -> None:
    await db.feature_counts.delete_many({"experiment_id": experiment_id})
