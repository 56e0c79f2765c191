"""Repair a model's windows from its stored batches, and the workers' performance tick.

A batch's windows are written by its model's applier (:mod:`.applier`); a batch an applier
stored and did not apply (its process died) is applied by the next request for the model,
or by the workers' tick once the dead holder's lease has run out (:func:`periodic`). What
the windows hold is then always what the batches say; a recount is the operators' repair
for anything else (``drift-monitor-server recount-performance``): it recomputes, per hour
and per drift run, from one pass over the model's stored batches:

- the label side — labelled predictions, label lag, and every metric's sums — exactly, from
  each id's current label and its joined row, and it replaces the stored one (the longest
  lag becomes the longest of the current labels: a replaced label's is no longer known);
- the prediction side — predictions per hour and the estimator's score counts — as the
  larger of the stored count and the recount, per cell: unlabelled predictions that expired
  are gone with their batch but still counted in their windows (coverage stays honest),
  and predictions stored but not counted are found by the recount; each is a lower bound.

A recount holds the model's lease, so no batch is applied while it runs.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from drift_backend.drifts import service as drifts
from drift_backend.performance import applier, concept, repository
from drift_backend.performance.repository import RUNS, WINDOWS
from drift_backend.performance.windows import hour_start
from drift_backend.schemas import utcnow
from drift_backend.settings import Settings
from drift_backend.store.database import Database, Document

#: Fields of an hour document that labels make (replaced by a recount) and that
#: predictions make (kept at the larger of stored and recounted, per cell).
LABEL_FIELDS = ("n_lab", "lag_sum", "lag_max", "s")
PREDICTION_FIELDS = ("n_pred", "e")


@dataclass(frozen=True)
class Recounted:
    experiment_id: str
    model: str
    predictions: int
    labelled: int
    hours: int


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


def _hour_doc(
    old: Document | None, predicted: Mapping[str, Any], labelled: Mapping[str, Any]
) -> Document:
    """The hour's new document: ``old``'s other fields, the prediction side at the larger
    of stored and recounted per cell, the label side as recounted; the large parts packed
    as the windows keep them (``repository.PACKED``)."""
    stored = dict(old or {})
    stored.pop("b", None)
    kept: Document = {}
    for path, value in [*_paths(stored), *repository.unpack(old or {}).items()]:
        if path.split(".")[0] in LABEL_FIELDS or path == "_id":
            continue
        # A cell may be both a field (a small $inc) and packed: its value is their sum.
        kept[path] = kept[path] + value if path in kept else value
    for path, value in predicted.items():
        kept[path] = max(kept.get(path, 0), value)
    kept.update(labelled)
    heavy = {path: value for path, value in kept.items() if path.startswith(repository.PACKED)}
    doc = _nested({path: value for path, value in kept.items() if path not in heavy})
    if heavy:
        doc["b"] = repository.pack(heavy)
    return doc


async def recount(
    db: Database, experiment_id: str, model: str, tracking: concept.Tracking | None = None
) -> Recounted:
    """Recompute the hour and run documents of ``model`` from its stored batches, and
    replace them."""
    doc = await repository.get_model(db, experiment_id, model)
    if doc is None:
        return Recounted(experiment_id, model, 0, 0, 0)
    async with applier.session(db, doc) as model_applier:
        totals = await model_applier.recount()
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
            # A new version, so a compare-and-swap read before this never overwrites it; the
            # batches applied so far are in.
            new["v"] = int((stored.get(hour) or {}).get("v") or 0) + 1
            new["a"] = model_applier.applied
            await db[WINDOWS].replace_one(
                {"_id": repository.window_key(experiment_id, model, hour)}, new, upsert=True
            )
        await _rewrite_runs(db, experiment_id, model, totals, model_applier.applied)
    if tracking is not None and hours:
        await concept.decide_again(db, tracking, doc, hours)
    return Recounted(experiment_id, model, totals.n_predictions, totals.n_labelled, len(hours))


async def _rewrite_runs(
    db: Database, experiment_id: str, model: str, totals: applier.Totals, applied: int
) -> None:
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
        new["a"] = applied
        await db[RUNS].replace_one(
            {"_id": repository.run_key(experiment_id, model, run_id)}, new, upsert=True
        )


# --- the tick ----------------------------------------------------------------------------------


async def tick(db: Database) -> list[str]:
    """Apply what dead appliers left, and write the concept-drift runs a dead writer left;
    the models applied."""
    await concept.record_pending(db, utcnow() - timedelta(seconds=30))
    return await applier.apply_stale(db)


def periodic(settings: Settings) -> Callable[[Database], Awaitable[list[str]]]:
    """The workers' performance tick (``main.worker_periodic``)."""

    async def run(db: Database) -> list[str]:
        return await tick(db)

    return run
