"""The "degraded" decision as the concept-drift signal, recorded on drift runs.

After a batch of predictions or labels changed some hours of a model, the decision windows
holding them (``DRIFT_PERFORMANCE_DECISION_WINDOW``, a day by default) are decided again from
their hours' sums — O(hours per window), no prediction read. A window remembers its
*definite* decisions per metric (``performance_decisions``, one document per window): a
window that becomes incomplete again (new predictions) keeps what was last known. When one
changes — a metric becomes degraded, or a degraded one recovers — the server records a
finished drift run of the model with ``concept_drift`` (through ``drifts.service``, the
runs' one writer) and a ``performance.decision_changed`` event; a first decision that is
"not degraded" is news to nobody and makes no run.

Exactly once: the decision document changes by compare-and-set on its ``version``, so of
two batches deciding the same window at once one records the change; the run's id is
derived from the window and version, so writing it again finds the one made before. A
process that dies between the two leaves ``pending_run`` on the document, which the
performance tick (:func:`record_pending`) writes later.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo.errors import DuplicateKeyError

from drift_backend.drifts import service as drifts
from drift_backend.events import service as events
from drift_backend.events.schemas import EventType
from drift_backend.performance import repository
from drift_backend.performance.decisions import (
    CLASSIFICATION_DECISIONS,
    REGRESSION_DECISIONS,
    Decision,
    Tolerances,
    window_decisions,
)
from drift_backend.performance.repository import WINDOWS
from drift_backend.performance.windows import (
    Stats,
    Window,
    add_into,
    hour_start,
    unescape_tree,
    window_start,
)
from drift_backend.schemas import utcnow
from drift_backend.settings import Settings
from drift_backend.store.cancellation import raise_if_cancelled
from drift_backend.store.database import Database, Document

log = logging.getLogger(__name__)

DECISIONS = "performance_decisions"
#: Decision windows decided again per batch: the newest ones a batch touched (a backfill
#: over years decides its last 50 windows; the others when a later batch touches them).
MAX_WINDOWS_PER_BATCH = 50
#: Compare-and-set rounds before a decision gives way to the batch deciding it meanwhile.
TRIES = 5
LENGTH = {
    Window.hour: timedelta(hours=1),
    Window.day: timedelta(days=1),
    Window.week: timedelta(weeks=1),
}
#: Tags of the runs made here (a dashboard filter; the ``origin`` field is what counts).
RUN_TAGS = ["performance"]
_RUN_IDS = uuid.UUID("6b6f3a52-58a4-4c1b-9d36-2f5b1f0d4a11")
#: The summed fields of a stored hour a decision needs: counts, the confusion matrix, the
#: regression sums — not the score histograms, which make a many-class hour large.
_FIELDS = ("n_pred", "n_lab", "s")
_PROJECTION = dict.fromkeys(("n_pred", "n_lab", "s.cm", "s.n", "s.a", "s.s", "s.q"), 1)


@dataclass(frozen=True)
class Tracking:
    """What deciding a window takes (from the settings)."""

    window: Window
    min_coverage: float
    tolerances: Tolerances


def tracking(settings: Settings) -> Tracking:
    """How a batch's windows are decided again, from the settings."""
    return Tracking(
        window=Window(settings.performance_decision_window),
        min_coverage=settings.performance_min_coverage,
        tolerances=Tolerances(
            settings.performance_tolerance,
            settings.performance_regression_tolerance,
            settings.performance_alpha,
        ),
    )


def main_metric(task: str) -> str:
    return REGRESSION_DECISIONS[0] if task == "regression" else CLASSIFICATION_DECISIONS[0]


def _key(experiment_id: str, model: str, window: Window, start: datetime) -> str:
    return f"{repository.model_key(experiment_id, model)}:{window}:{start.isoformat()}"


async def decide_again(
    db: Database, tracking: Tracking, model_doc: Document, hours: list[int]
) -> None:
    """Decide the windows holding ``hours`` again; record the changes. Never raises: the
    batch is stored, and the next batch touching a window decides it again."""
    reference = model_doc.get("reference")
    if reference is None or not hours:
        return  # no decision without a labelled reference
    try:
        starts = sorted({window_start(hour_start(h), tracking.window) for h in hours})
        ref_stats = unescape_tree(reference["s"])
        for start in starts[-MAX_WINDOWS_PER_BATCH:]:
            await _decide_window(db, tracking, model_doc, start, ref_stats)
    except Exception:
        raise_if_cancelled()
        log.warning("deciding the windows of model %s failed", model_doc["model"], exc_info=True)


async def _decide_window(
    db: Database, tracking: Tracking, model_doc: Document, start: datetime, reference: Stats
) -> None:
    experiment_id, model = model_doc["experiment_id"], model_doc["model"]
    end = start + LENGTH[tracking.window]
    key = _key(experiment_id, model, tracking.window, start)
    for _ in range(TRIES):
        # The decision document before the sums: a batch that wrote a newer decision did so
        # from sums read before this read, so these are at least as new (no stale overwrite).
        doc = await db[DECISIONS].find_one({"_id": key})
        decisions = await _decide(db, tracking, model_doc, reference, start, end)
        definite = {name: d.degraded for name, d in decisions.items() if d.degraded is not None}
        if not definite:
            return
        old: dict[str, bool] = dict(doc["state"]) if doc else {}
        new = {**old, **definite}
        if new == old:
            return
        changed = [name for name, value in new.items() if value != old.get(name, False)]
        version = (doc["version"] if doc else 0) + 1
        fields: Document = {
            "state": new,
            "version": version,
            "updated_at": utcnow(),
            "decisions": {name: d.as_dict() for name, d in decisions.items()},
            "changed": changed,
        }
        # Only while a change's run is unwritten (a sparse index finds them).
        pending = {"pending_run": _run_id(key, version)} if changed else {}
        if doc is None:
            try:
                await db[DECISIONS].insert_one(
                    {
                        "_id": key,
                        "experiment_id": experiment_id,
                        "model": model,
                        "window": str(tracking.window),
                        "start": start,
                        "end": end,
                        "main": main_metric(model_doc["task"]),
                        **fields,
                        **pending,
                    }
                )
            except DuplicateKeyError:
                continue  # decided first by another batch: look again
            doc = {"_id": key, "experiment_id": experiment_id, "model": model, "start": start}
        else:
            # A run still pending from an earlier change stays pending (the tick writes it).
            written = await db[DECISIONS].update_one(
                {"_id": key, "version": doc["version"]}, {"$set": {**fields, **pending}}
            )
            if not written.modified_count:
                continue
        if changed:
            await _record(
                db, {**doc, **fields, **pending, "window": str(tracking.window), "end": end}
            )
        return


async def _decide(
    db: Database,
    tracking: Tracking,
    model_doc: Document,
    reference: Stats,
    start: datetime,
    end: datetime,
) -> dict[str, Decision]:
    """The window's decisions now, from its hours' counts and sums."""
    stats: Stats = {}
    cursor = db[WINDOWS].find(
        {
            "experiment_id": model_doc["experiment_id"],
            "model": model_doc["model"],
            "start": {"$gte": start, "$lt": end},
        },
        _PROJECTION,
    )
    async for hour in cursor:
        add_into(stats, {k: v for k, v in hour.items() if k in _FIELDS}, stored=True)
    n_pred, n_lab = int(stats.get("n_pred", 0)), int(stats.get("n_lab", 0))
    return window_decisions(
        model_doc["task"] == "regression",
        model_doc["classes"],
        stats.get("s", {}),
        reference,
        n_pred > 0 and n_lab / n_pred >= tracking.min_coverage,
        tracking.tolerances,
    )


def _run_id(key: str, version: int) -> str:
    return str(uuid.uuid5(_RUN_IDS, f"{key}:{version}"))


def concept_drift(doc: Document) -> dict[str, Any]:
    """The run's ``concept_drift`` from a decision document: drift when any metric is
    degraded; ``metric`` the first degraded one (else the first that recovered)."""
    state: dict[str, bool] = doc["state"]
    decisions: dict[str, dict[str, Any]] = doc["decisions"]
    degraded = [name for name, value in state.items() if value]
    changed = list(doc.get("changed") or [])
    metric = degraded[0] if degraded else (changed or [doc.get("main", "accuracy")])[0]
    shown = decisions.get(metric) or Decision(None, metric).as_dict()
    return {
        "drift": bool(degraded),
        "parameters": {
            "source": "performance",
            "metric": metric,
            "p_value": shown["p_value"],
            "value": shown["value"],
            "reference": shown["reference"],
            "threshold": shown["threshold"],
            "window": {
                "length": doc["window"],
                "start": doc["start"].isoformat(),
                "end": doc["end"].isoformat(),
            },
            "degraded_metrics": degraded,
            "changed_metrics": changed,
            "decisions": decisions,
        },
    }


def _aware(doc: Document) -> Document:
    return {
        **doc,
        "start": doc["start"].replace(tzinfo=UTC),
        "end": doc["end"].replace(tzinfo=UTC),
    }


async def _record(db: Database, doc: Document) -> None:
    result = concept_drift(_aware(doc))
    run_id = doc["pending_run"]
    run = await drifts.record_concept_drift(
        db, doc["experiment_id"], doc["model"], run_id, result, list(RUN_TAGS)
    )
    parameters = result["parameters"]
    await events.emit(
        db,
        EventType.performance_decision_changed,
        experiment_id=doc["experiment_id"],
        run_id=run["_id"],
        model=doc["model"],
        payload={
            "window": parameters["window"],
            "degraded": result["drift"],
            "degraded_metrics": parameters["degraded_metrics"],
            "changed_metrics": parameters["changed_metrics"],
        },
    )
    await db[DECISIONS].update_one(
        {"_id": doc["_id"], "pending_run": run_id}, {"$unset": {"pending_run": ""}}
    )


async def record_pending(db: Database, older_than: datetime) -> int:
    """Write the runs of decisions whose writer died before it could (the tick); how many."""
    found = 0
    cursor = db[DECISIONS].find(
        {"pending_run": {"$exists": True}, "updated_at": {"$lt": older_than}}
    )
    async for doc in cursor:
        await _record(db, doc)
        found += 1
    return found


async def latest(
    db: Database, experiment_id: str, model: str, metric: str | None
) -> tuple[str, Document] | None:
    """The newest window of ``model`` with a definite decision on ``metric`` (None: the
    model's main metric, accuracy or MAE), and that metric; None when there is none."""
    if metric is None:
        newest = await db[DECISIONS].find_one(
            {"experiment_id": experiment_id, "model": model}, sort=[("start", -1)]
        )
        if newest is None:
            return None
        metric = str(newest["main"])
    doc = await db[DECISIONS].find_one(
        {"experiment_id": experiment_id, "model": model, f"state.{metric}": {"$exists": True}},
        sort=[("start", -1)],
    )
    return (metric, _aware(doc)) if doc is not None else None


async def delete_for_experiment(db: Database, experiment_id: str) -> None:
    await db[DECISIONS].delete_many({"experiment_id": experiment_id})
