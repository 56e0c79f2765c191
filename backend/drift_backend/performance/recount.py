"""Repair a model's windows from its stored predictions and labels.

A batch's writes (predictions inserted, labels set) and its window increments are separate
operations; a process that dies between them leaves rows stored but not counted. So every
batch first puts a marker on its model (``pending``: ``{id, at}``, and ``batches`` counted
up) and takes it off once its increments are written. A marker older than
``DRIFT_PERFORMANCE_RECOUNT_GRACE_SECONDS`` (a batch that should long have ended) belongs to a
batch that died: the workers' performance tick recounts that model (:func:`recount_stale`);
``drift-monitor-server recount-performance`` does it on demand.

What a recount computes, per hour and per drift run (predictions recorded with one), from
one pass over the model's stored predictions:

- the label side — labelled predictions, label lag, and every metric's sums — exactly, and
  it replaces the stored one (the longest lag becomes the longest of the current labels:
  a replaced label's is no longer known);
- the prediction side — predictions per hour and the estimator's score counts — as the
  larger of the stored count and the recount, per cell: unlabelled predictions that expired
  are gone from the collection but still counted in their windows (coverage stays honest),
  and predictions stored but not counted are found by the recount; each is a lower bound.

Concurrent batches: a recount replaces whole hour documents, so a batch whose increments
land between the recount's read and its write would be lost or counted twice. A recount
therefore notes ``batches`` before it starts; if a batch started meanwhile it leaves the
markers in place and says so (``raced``), and the next tick recounts again once it is quiet.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from pymongo import ReturnDocument

from drift_backend.drifts import service as drifts
from drift_backend.performance import concept, repository
from drift_backend.performance.metrics import AUC_BINS, class_order
from drift_backend.performance.repository import MODELS, PREDICTIONS, RUNS, WINDOWS
from drift_backend.performance.windows import (
    Labelled,
    escape,
    hour_keys,
    hour_start,
    label_increments,
    run_increments,
)
from drift_backend.schemas import utcnow
from drift_backend.settings import Settings
from drift_backend.store.database import Database, Document

#: Predictions read per round (their contributions are summed as they come).
READ_CHUNK = 10_000
#: How long a recount's claim on a model keeps other workers' ticks off it.
CLAIM_SECONDS = 600.0
#: Fields of an hour document that labels make (replaced by a recount) and that
#: predictions make (kept at the larger of stored and recounted, per cell).
LABEL_FIELDS = ("n_lab", "lag_sum", "lag_max", "s")
PREDICTION_FIELDS = ("n_pred", "e")


# --- the markers -----------------------------------------------------------------------------


async def mark(db: Database, model_key: str) -> str:
    """A batch of ``model_key`` begins writing; the marker's id, for :func:`unmark`."""
    marker = uuid.uuid4().hex
    await db[MODELS].update_one(
        {"_id": model_key},
        {"$push": {"pending": {"id": marker, "at": utcnow()}}, "$inc": {"batches": 1}},
    )
    return marker


async def unmark(db: Database, model_key: str, marker: str) -> None:
    """The batch's windows are written."""
    await db[MODELS].update_one({"_id": model_key}, {"$pull": {"pending": {"id": marker}}})


# --- one recount -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Recounted:
    experiment_id: str
    model: str
    predictions: int
    labelled: int
    hours: int
    #: A batch started while this recount ran: its markers stay, and it runs again.
    raced: bool
    #: Not recounted: a batch was still writing (a marker newer than ``in_flight_after``).
    busy: bool = False


def _paths(doc: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    """A stored (already escaped) document's leaves as dotted paths."""
    for key, value in doc.items():
        if isinstance(value, Mapping):
            yield from _paths(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


def _nested(paths: Mapping[str, Any]) -> Document:
    out: Document = {}
    for path, value in paths.items():
        *parents, leaf = path.split(".")
        node = out
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return out


def _lag(prediction_time: datetime, label_time: datetime) -> float:
    return max(0.0, (label_time - prediction_time).total_seconds())


class _Totals:
    """Per hour: the recounted prediction side and label side, as flattened paths."""

    def __init__(self, model: Document) -> None:
        self.model = model
        self.regression = model["task"] == "regression"
        self.classes: list[str] = list(model["classes"])
        self.positive = class_order(self.classes)[-1] if len(self.classes) == 2 else None
        self.predicted: dict[int, dict[str, float | int]] = {}
        self.labelled: dict[int, dict[str, float | int]] = {}
        # The same per drift run (predictions recorded with one).
        self.run_predicted: dict[str, dict[str, float | int]] = {}
        self.run_labelled: dict[str, dict[str, float | int]] = {}
        self.n_predictions = 0
        self.n_labelled = 0

    def add(self, docs: list[Document]) -> None:
        # UTC, naive for numpy (the driver returns aware datetimes).
        times = np.array([d["time"].replace(tzinfo=None) for d in docs], dtype="datetime64[ms]")
        hours = hour_keys(times)
        rows: list[Labelled] = []
        for doc, hour in zip(docs, hours.tolist(), strict=True):
            self._count(self.predicted.setdefault(hour, {}), doc)
            if doc.get("run") is not None:
                self._count(self.run_predicted.setdefault(doc["run"], {}), doc)
            if "t" in doc:
                rows.append(
                    Labelled(
                        hour=hour,
                        y_pred=doc["y"],
                        proba=doc.get("p"),
                        y_true=doc["t"],
                        lag=_lag(doc["time"], doc["lt"]),
                        sign=1,
                        first=True,
                        run=doc.get("run"),
                    )
                )
        self.n_predictions += len(docs)
        self.n_labelled += len(rows)
        if not rows:
            return
        shift = self.model.get("shift") or 0.0
        increments, lag_max = label_increments(rows, self.regression, self.classes, shift)
        _sum_into(self.labelled, increments, lag_max)
        by_run, run_lag = run_increments(rows, self.regression, self.classes, shift)
        _sum_into(self.run_labelled, by_run, run_lag)

    def _count(self, counts: dict[str, float | int], doc: Document) -> None:
        """One prediction's prediction-side counts (its document's count, score cell)."""
        counts["n_pred"] = counts.get("n_pred", 0) + 1
        if self.positive is not None and doc.get("p") is not None:
            score = doc["p"][self.classes.index(self.positive)]
            cell = f"e.{escape(str(doc['y']))}.{int(np.rint(score * AUC_BINS))}"
            counts[cell] = counts.get(cell, 0) + 1


def _sum_into(
    totals: dict[Any, dict[str, float | int]],
    increments: Mapping[Any, Mapping[str, float | int]],
    lag_max: Mapping[Any, float],
) -> None:
    for key, inc in increments.items():
        total = totals.setdefault(key, {})
        for path, value in inc.items():
            total[path] = total.get(path, 0) + value
        total["lag_max"] = max(float(total.get("lag_max", 0.0)), lag_max.get(key, 0.0))


def _hour_doc(
    old: Document | None, predicted: Mapping[str, Any], labelled: Mapping[str, Any]
) -> Document:
    """The hour's new document: ``old``'s other fields, the prediction side at the larger
    of stored and recounted per cell, the label side as recounted."""
    kept = {
        path: value
        for path, value in _paths(old or {})
        if path.split(".")[0] not in LABEL_FIELDS and path != "_id"
    }
    for path, value in predicted.items():
        kept[path] = max(kept.get(path, 0), value)
    kept.update(labelled)
    return _nested(kept)


async def recount(
    db: Database,
    experiment_id: str,
    model: str,
    tracking: concept.Tracking | None = None,
    in_flight_after: datetime | None = None,
) -> Recounted:
    """Recompute the hour documents of ``model`` from its stored predictions and labels,
    and replace them; then clear the markers that were there when it began. A marker newer
    than ``in_flight_after`` is a batch still writing: then nothing is done (``busy``)."""
    key = repository.model_key(experiment_id, model)
    doc = await db[MODELS].find_one({"_id": key})
    if doc is None:
        return Recounted(experiment_id, model, 0, 0, 0, False)
    began = doc.get("batches", 0)
    pending = doc.get("pending") or []
    if in_flight_after is not None and any(m["at"] > in_flight_after for m in pending):
        return Recounted(experiment_id, model, 0, 0, 0, False, busy=True)
    markers = [m["id"] for m in pending]
    totals = _Totals(doc)
    # The model's predictions by their _id prefix: the primary index serves the range.
    prefix = f"{key}:"
    cursor = db[PREDICTIONS].find(
        {"_id": {"$gte": prefix, "$lt": prefix[:-1] + ";"}},
        {"time": 1, "y": 1, "p": 1, "t": 1, "lt": 1, "run": 1},
        batch_size=READ_CHUNK,
    )
    chunk: list[Document] = []
    async for prediction in cursor:
        chunk.append(prediction)
        if len(chunk) == READ_CHUNK:
            totals.add(chunk)
            chunk = []
    if chunk:
        totals.add(chunk)
    stored = {
        int(h["_id"].rsplit(":", 1)[1]): h
        async for h in db[WINDOWS].find({"experiment_id": experiment_id, "model": model})
    }
    hours = sorted(set(stored) | set(totals.predicted) | set(totals.labelled))
    for hour in hours:
        new = _hour_doc(
            stored.get(hour), totals.predicted.get(hour, {}), totals.labelled.get(hour, {})
        )
        new.update({"experiment_id": experiment_id, "model": model, "start": hour_start(hour)})
        # A new version, so a window addition's compare-and-swap read before this never
        # overwrites the recount (repository.add_to_windows).
        new["v"] = int((stored.get(hour) or {}).get("v") or 0) + 1
        await db[WINDOWS].replace_one(
            {"_id": repository.window_key(experiment_id, model, hour)}, new, upsert=True
        )
    await _rewrite_runs(db, experiment_id, model, totals)
    after = await db[MODELS].find_one({"_id": key})
    raced = after is not None and after.get("batches", 0) != began
    if not raced and markers:
        await db[MODELS].update_one({"_id": key}, {"$pull": {"pending": {"id": {"$in": markers}}}})
    if tracking is not None and hours:
        await concept.decide_again(db, tracking, doc, hours)
    return Recounted(
        experiment_id, model, totals.n_predictions, totals.n_labelled, len(hours), raced
    )


async def _rewrite_runs(db: Database, experiment_id: str, model: str, totals: _Totals) -> None:
    """The model's run documents, as :func:`recount` rewrites its hours; a run that no
    longer exists gets none (its predictions keep its id)."""
    stored = {
        doc["run_id"]: doc
        async for doc in db[RUNS].find({"experiment_id": experiment_id, "model": model})
    }
    found = set(stored) | set(totals.run_predicted) | set(totals.run_labelled)
    created = await drifts.created_times(db, experiment_id, sorted(found))
    # Their runs say they have predictions (runs recorded before the flag existed too).
    await drifts.mark_predictions(db, experiment_id, sorted(set(created)))
    for run_id in sorted(found):
        if run_id not in created:
            continue
        old = stored.get(run_id)
        new = _hour_doc(
            old, totals.run_predicted.get(run_id, {}), totals.run_labelled.get(run_id, {})
        )
        new.update(repository.run_fields(experiment_id, model, run_id, created[run_id]))
        new["v"] = int((old or {}).get("v") or 0) + 1  # as for hours: swaps read before lose
        await db[RUNS].replace_one(
            {"_id": repository.run_key(experiment_id, model, run_id)}, new, upsert=True
        )


# --- the tick ----------------------------------------------------------------------------------


async def recount_stale(
    db: Database, grace_seconds: float, tracking: concept.Tracking | None = None
) -> list[Recounted]:
    """Recount every model with a marker older than ``grace_seconds`` (a batch that died),
    one worker per model at a time; and write the concept-drift runs a dead writer left."""
    now = utcnow()
    await concept.record_pending(db, now - timedelta(seconds=30))
    done: list[Recounted] = []
    cutoff = now - timedelta(seconds=grace_seconds)
    while True:
        claimed = await db[MODELS].find_one_and_update(
            {
                "pending.at": {"$lt": cutoff},
                "_id": {"$nin": [repository.model_key(r.experiment_id, r.model) for r in done]},
                "$or": [{"recount_until": None}, {"recount_until": {"$lt": now}}],
            },
            {"$set": {"recount_until": now + timedelta(seconds=CLAIM_SECONDS)}},
            return_document=ReturnDocument.AFTER,
        )
        if claimed is None:
            return done
        try:
            found = await recount(
                db, claimed["experiment_id"], claimed["model"], tracking, in_flight_after=cutoff
            )
            done.append(found)
        finally:
            await db[MODELS].update_one({"_id": claimed["_id"]}, {"$unset": {"recount_until": ""}})


def periodic(settings: Settings) -> Callable[[Database], Awaitable[list[Recounted]]]:
    """The workers' performance tick (``main.worker_periodic``)."""
    tracking = concept.tracking(settings)

    async def run(db: Database) -> list[Recounted]:
        return await recount_stale(db, settings.performance_recount_grace_seconds, tracking)

    return run
