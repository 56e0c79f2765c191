"""A feature's history, pre-aggregated per 6 hours: the ``feature_counts`` collection. Per
(experiment, model, day of ``created_at``) the features are spread over :data:`BLOCKS`
documents by a hash of their name; each holds, per feature of its block and per 6-hour span
of the day (``f.<feature>.h00`` .. ``h18``, ``charts/cover.py``), what the feature-history
chart shows of a bucket: checks (``runs``), how many drifted, the smallest p-value and
adjusted p-value, the largest distance and threshold. A 30-day history (6-hour buckets)
reads its 30 day documents per model (120 when each 6 hours had its own, until session 8)
instead of every check's result.

Why blocks: a check reads and writes whole the blocks it has features in, at most
:data:`BLOCKS` documents, each guarded by its version ``v`` (:func:`add`). Measured on
SecantusDB for a 1,000-feature check (docs/benchmarks.md): one upsert per feature, or
field-by-field ``$inc``/``$min``/``$max`` of the blocks, cost 2-3 s beside about 3 s for
inserting its ``feature_results`` (under load; 1.5 s and 0.6 s idle); the 32 blocks written
whole about 0.3 s. One document per span holding every feature would make each read decode
every feature's values; a block of a 1,000-feature experiment holds about 31.

Added to by :mod:`.check_counts` once per check run, under its marker (exactly once). Only
one grain, 6 hours (kept in day documents): a window whose step is not a multiple of it
(7 days and shorter) reads the results themselves, as before. ``$min``/``$max`` cannot be
undone, so a deleted check's features are recomputed from the results left in their 6 hours
(:func:`recompute`).
"""

from __future__ import annotations

import asyncio
import zlib
from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from pymongo import ReplaceOne, UpdateOne
from pymongo.errors import DuplicateKeyError

from drift_backend.charts import queries
from drift_backend.charts.cover import (
    DAY,
    QUARTER,
    floor,
    held_spans,
    holder_range,
    quarter,
    quarter_start,
)
from drift_backend.store.database import Database

FEATURE_COUNTS = "feature_counts"
GRAIN = QUARTER
GRAINS = (GRAIN,)
#: What a document spans (its ``grain`` field: documents from before, one per 6 hours,
#: have none; start-up rebuilds them, :func:`outdated`).
DAY_GRAIN = int(DAY.total_seconds())
#: Documents per (experiment, model, day): the most upserts one check costs.
BLOCKS = 32
#: Rounds of writing the blocks another check wrote meanwhile.
ATTEMPTS = 10
#: The aggregate fields: (name, ``feature_results`` field).
MINIMA = (("p_value_min", "p_value"), ("p_value_adjusted_min", "p_value_adjusted"))
MAXIMA = (("distance_max", "distance"), ("threshold", "threshold"))


def block_of(feature: str) -> int:
    return zlib.crc32(feature.encode("utf-8")) % BLOCKS


def field_of(feature: str) -> str:
    """A feature's name as a field name (MongoDB paths split at "." and refuse "$")."""
    return feature.replace("%", "%25").replace(".", "%2E").replace("$", "%24")


def key(experiment_id: str, model: str, day: datetime, block: int) -> str:
    # The model may hold "|": it comes last, after fixed parts. "day" keeps these apart
    # from the 6-hour documents of before (a midnight one had this key without it).
    return f"{experiment_id}|day|{day.isoformat()}|{block}|{model}"


def _span(result: dict[str, Any]) -> tuple[str, str, datetime]:
    """The (experiment, model, 6 hours) of a result."""
    return (result["experiment_id"], result["model"], floor(result["created_at"], GRAIN))


def _identity(experiment_id: str, model: str, day: datetime, block: int) -> dict[str, Any]:
    return {
        "experiment_id": experiment_id,
        "model": model,
        "grain": DAY_GRAIN,
        "start": day,
        "block": block,
    }


def _values(result: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The minima and maxima of one result ($min/$max would take a null as the smallest
    value, so only values are kept)."""
    minima = {name: result[f] for name, f in MINIMA if result.get(f) is not None}
    maxima = {name: result[f] for name, f in MAXIMA if result.get(f) is not None}
    return minima, maxima


def _merge(entry: dict[str, Any] | None, result: dict[str, Any]) -> dict[str, Any]:
    """A feature's entry with one more result counted in."""
    merged = dict(entry or {"runs": 0, "drifted": 0})
    merged["runs"] += 1
    merged["drifted"] += 1 if result.get("drifted") else 0
    minima, maxima = _values(result)
    for values, pick in ((minima, min), (maxima, max)):
        for name, value in values.items():
            merged[name] = pick(merged[name], value) if name in merged else value
    return merged


async def _write_block(
    db: Database,
    ident: tuple[str, str, datetime, int],
    results: list[dict[str, Any]],
    old: dict[str, Any] | None,
) -> bool:
    """Count ``results`` into their block as read (``old``, None when there is none yet) and
    write it back only if no one wrote it meanwhile (its version ``v``); False when someone
    did (read it again)."""
    doc_id = key(*ident)
    entries = dict(old["f"]) if old is not None else {}
    for result in results:
        field = field_of(result["feature"])
        spans = entries[field] = dict(entries.get(field) or {})
        at = quarter(result["created_at"])
        spans[at] = _merge(spans.get(at), result)
    if old is None:
        try:
            await db.feature_counts.insert_one(
                {"_id": doc_id, **_identity(*ident), "v": 1, "f": entries}
            )
        except DuplicateKeyError:
            return False
        return True
    # Replaced whole, not ``$set``: SecantusDB diffs the old and new block for its oplog on
    # an update (0.20 s for a 1,000-feature check's 32 blocks, 0.09 s replaced).
    written = await db.feature_counts.replace_one(
        {"_id": doc_id, "v": old["v"]},
        {**_identity(*ident), "v": old["v"] + 1, "f": entries},
    )
    return written.matched_count == 1


async def add(db: Database, results: list[dict[str, Any]]) -> None:
    """Count a check's ``feature_results`` documents (its caller holds the marker): each
    block they fall in read and written whole, concurrently, at most :data:`BLOCKS`.
    (Field-by-field ``$inc``/``$min``/``$max`` of 1,000 features cost SecantusDB about 10x
    more than writing the 32 blocks whole.) A block written by another check meanwhile is
    read and added to again."""
    blocks: dict[tuple[str, str, datetime, int], list[dict[str, Any]]] = defaultdict(list)
    for result in results:
        day = floor(result["created_at"], DAY)
        ident = (result["experiment_id"], result["model"], day, block_of(result["feature"]))
        blocks[ident].append(result)
    pending = list(blocks)
    for _ in range(ATTEMPTS):
        if not pending:
            return
        # One read of every block (by _id: key look-ups), not one each.
        keys = [key(*ident) for ident in pending]
        found = {doc["_id"]: doc async for doc in db.feature_counts.find({"_id": {"$in": keys}})}
        done = await asyncio.gather(
            *(
                _write_block(db, ident, blocks[ident], found.get(doc_key))
                for ident, doc_key in zip(pending, keys, strict=True)
            )
        )
        pending = [ident for ident, ok in zip(pending, done, strict=True) if not ok]
    if pending:
        raise RuntimeError(f"{len(pending)} feature blocks kept changing under this check")


def _group() -> dict[str, Any]:
    return {
        "runs": {"$sum": 1},
        "drifted": {"$sum": {"$cond": ["$drifted", 1, 0]}},
        **{name: {"$min": f"${f}"} for name, f in MINIMA},
        **{name: {"$max": f"${f}"} for name, f in MAXIMA},
    }


def _entry(row: dict[str, Any]) -> dict[str, Any]:
    """A feature's entry in its block from an aggregated row."""
    entry = {"runs": row["runs"], "drifted": row["drifted"]}
    entry.update({name: row[name] for name, _ in (*MINIMA, *MAXIMA) if row.get(name) is not None})
    return entry


def span_pipeline(experiment_id: str, model: str, start: datetime) -> list[dict[str, Any]]:
    """Each feature's entry of a model's 6 hours from ``start``, from the results."""
    match = {"experiment_id": experiment_id, "created_at": {"$gte": start, "$lt": start + GRAIN}}
    return [
        {"$match": match},
        *queries.of_model(model),
        {"$group": {"_id": "$feature", **_group()}},
    ]


async def recompute(db: Database, gone: Iterable[dict[str, Any]]) -> None:
    """After ``feature_results`` documents ``gone`` (or rewritten ones) changed: their
    features' entries again, from the results in each (experiment, model, 6 hours), in
    their day's blocks."""
    spans: dict[tuple[str, str, datetime], set[str]] = defaultdict(set)
    for result in gone:
        spans[_span(result)].add(result["feature"])
    for (experiment_id, model, start), features in spans.items():
        pipeline = span_pipeline(experiment_id, model, start)
        left = {row["_id"]: row async for row in await db.feature_results.aggregate(pipeline)}
        updates: dict[int, dict[str, Any]] = {}
        day = floor(start, DAY)
        for feature in features:
            update = updates.setdefault(block_of(feature), {})
            path = f"f.{field_of(feature)}.{quarter(start)}"
            if feature in left:
                update.setdefault("$set", {})[path] = _entry(left[feature])
            else:
                update.setdefault("$unset", {})[path] = ""
        ops = []
        for block, update in updates.items():
            # A rewritten check's new feature may open a block; a deletion never does.
            if "$set" in update:
                update["$setOnInsert"] = _identity(experiment_id, model, day, block)
            update["$inc"] = {"v": 1}  # a check adding to the block meanwhile reads again
            doc_id = key(experiment_id, model, day, block)
            ops.append(UpdateOne({"_id": doc_id}, update, upsert="$set" in update))
        if ops:
            await db.feature_counts.bulk_write(ops, ordered=False)


async def build(db: Database, experiment_id: str | None) -> None:
    """Recount the scope's blocks from its ``feature_results`` (``check_counts.rebuild``)."""
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
    built: dict[str, dict[str, Any]] = {}
    async for row in await db.feature_results.aggregate(pipeline):
        ident = row["_id"]
        block = block_of(ident["feature"])
        day = floor(ident["start"], DAY)
        doc_id = key(ident["experiment_id"], ident["model"], day, block)
        doc = built.setdefault(
            doc_id,
            {
                "_id": doc_id,
                **_identity(ident["experiment_id"], ident["model"], day, block),
                "v": 1,
                "f": {},
            },
        )
        spans = doc["f"].setdefault(field_of(ident["feature"]), {})
        spans[quarter(ident["start"])] = _entry(row)
    # Written before the stale ones are deleted (as ``run_counts.rebuild`` does).
    docs = list(built.values())
    for first in range(0, len(docs), 1000):
        chunk = docs[first : first + 1000]
        await db.feature_counts.bulk_write(
            [ReplaceOne({"_id": doc["_id"]}, doc, upsert=True) for doc in chunk], ordered=False
        )
    stale = [doc["_id"] async for doc in db.feature_counts.find(scope, {"_id": 1})]
    gone = [doc_id for doc_id in stale if doc_id not in built]
    for first in range(0, len(gone), 1000):
        await db.feature_counts.delete_many({"_id": {"$in": gone[first : first + 1000]}})


async def outdated(db: Database) -> bool:
    """True when the blocks are 6-hour ones (from before the day documents). A rebuild
    replaces every block, so one look-up tells."""
    some = await db.feature_counts.find_one({}, {"grain": 1})
    return some is not None and some.get("grain") != DAY_GRAIN


def spans_filter(
    experiment_id: str, feature: str, model: str | None, start: datetime, end: datetime
) -> dict[str, Any]:
    """The feature's block documents of the days holding the 6-hour spans in ``[start,
    end)`` (on span edges), on the ``(experiment_id[, model], block, start)`` index."""
    match: dict[str, Any] = {"experiment_id": experiment_id}
    if model is not None:
        match["model"] = model
    match["block"] = block_of(feature)
    match["start"] = holder_range(start, end)
    # No "grain" here: SecantusDB plans a filter on a field outside the index as a
    # collection scan (blocks of before are skipped as they are read, :func:`spans`).
    return match


async def spans(
    db: Database,
    experiment_id: str,
    feature: str,
    model: str | None,
    start: datetime,
    end: datetime,
) -> list[tuple[datetime, dict[str, Any]]]:
    """``(span start, the feature's entry)`` for each 6-hour span in ``[start, end)`` that
    has one (of every model, or of one), from their days' blocks."""
    path = f"f.{field_of(feature)}"
    match = spans_filter(experiment_id, feature, model, start, end)
    found = db.feature_counts.find(match, {"_id": 0, "grain": 1, "start": 1, path: 1})
    entries = []
    async for doc in found:
        if doc.get("grain") != DAY_GRAIN:
            continue  # a 6-hour block of before, until start-up rebuilds it
        spans = doc.get("f", {}).get(field_of(feature))
        for at, entry in held_spans(doc["start"], spans, quarter_start, start, end):
            if entry and entry.get("runs"):
                entries.append((at, entry))
    return entries


async def delete_for_experiment(db: Database, experiment_id: str) -> None:
    await db.feature_counts.delete_many({"experiment_id": experiment_id})
