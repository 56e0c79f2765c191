"""Model performance: record predictions, late labels and a labelled reference; answer the
metrics per window. See ``docs/performance.md``.

Where the work happens: a batch's numpy work (parsing, its rows' contributions) runs off the
event loop in the request that carries the batch — it is proportional to the batch, which
the request holds anyway — and a window is only ever changed by ``$inc``, so reading the
metrics costs O(hours in the range), never a pass over the predictions. A worker job would
add a queue round trip and nothing cheaper.

Predictions and labels: each batch is stored whole (Arrow) and applied to the windows by
the model's applier (:mod:`.applier`), in order and once; a late label adds its row's
contribution to the hour its prediction was made in, and a changed one takes the old
contribution out again.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from drift_backend.baselines.ingest import BatchError
from drift_backend.drifts import service as drifts
from drift_backend.errors import NotFound, ValidationFailed
from drift_backend.events import service as events
from drift_backend.events.schemas import EventType
from drift_backend.performance import (
    applier,
    batches,
    cbpe,
    concept,
    estimation,
    repository,
    stored,
)
from drift_backend.performance.batches import Task
from drift_backend.performance.columns import Labels, Predictions
from drift_backend.performance.decisions import Tolerances, window_decisions
from drift_backend.performance.metrics import (
    Metric,
    class_order,
    classification_metrics,
    regression_metrics,
)
from drift_backend.performance.windows import (
    Stats,
    Window,
    add_cells,
    add_into,
    classification_stats,
    escape_tree,
    hour_start,
    regression_stats,
    unescape_tree,
    window_start,
)
from drift_backend.schemas import utcnow
from drift_backend.store.database import Database, Document
from drift_backend.store.keyset import Cursor

#: Most windows one performance answer covers.
MAX_WINDOWS = 1000
WINDOW_LENGTH = {
    Window.hour: timedelta(hours=1),
    Window.day: timedelta(days=1),
    Window.week: timedelta(weeks=1),
}
#: The range answered when no ``from`` is given: this many windows before ``to``.
DEFAULT_WINDOWS = {Window.hour: 48, Window.day: 30, Window.week: 26}


#: Hours named in one ``performance.window_updated`` event (all are counted).
EVENT_HOURS = 100


async def _windows_changed(
    db: Database, experiment_id: str, model: str, cause: str, hours: list[int]
) -> None:
    """One event per batch (not per window): a dashboard re-reads the windows it shows."""
    if not hours:
        return
    ordered = sorted(hours)
    await events.emit(
        db,
        EventType.performance_window_updated,
        experiment_id=experiment_id,
        run_id="",
        model=model,
        payload={
            "cause": cause,
            "hours": [hour_start(h).isoformat() for h in ordered[:EVENT_HOURS]],
            "n_hours": len(ordered),
        },
    )


class BatchInvalid(Exception):
    """A batch the parser rejected (the web layer answers it in the error shape)."""

    def __init__(self, error: BatchError) -> None:
        super().__init__(str(error))
        self.error = error


@dataclass(frozen=True)
class Rules:
    """When a window is complete, and when it is degraded against the reference."""

    min_coverage: float
    tolerance: float
    alpha: float
    #: Relative, for regression errors (MAE, RMSE).
    regression_tolerance: float = 0.1


@dataclass(frozen=True)
class Limits:
    max_rows: int
    #: Classes of a classification model (probability columns, distinct labels per batch).
    max_classes: int
    unlabelled_ttl_seconds: float
    #: How windows are decided after a batch (None: not at all).
    tracking: concept.Tracking | None = None


def _unknown_model(model: str) -> NotFound:
    return NotFound.naming(
        "model", f"no predictions recorded for model {model!r} in this experiment"
    )


async def _in_thread(func: Any, *args: Any) -> Any:
    try:
        return await asyncio.to_thread(func, *args)
    except BatchError as error:
        raise BatchInvalid(error) from None


# --- models --------------------------------------------------------------------------------------


async def _model_for(
    db: Database, experiment_id: str, model: str, task: Task, classes: list[str]
) -> Document:
    """The model's document, made by its first batch; a batch must agree with it."""
    key = repository.model_key(experiment_id, model)
    doc = await repository.get_model(db, experiment_id, model)
    if doc is None:
        doc = await repository.create_model(
            db,
            {
                "_id": key,
                "experiment_id": experiment_id,
                "model": model,
                "task": str(task),
                "classes": classes,
                "shift": None,
                "created_at": utcnow(),
            },
        )
    if doc["task"] != task:
        raise ValidationFailed(
            "y_pred", f"model {model!r} records a {doc['task']}; this batch is a {task}"
        )
    if classes and not doc["classes"]:
        doc = await repository.set_classes(db, key, classes) or doc
    if classes and set(classes) != set(doc["classes"]):
        raise ValidationFailed(
            "proba_*", f"model {model!r} has probability columns for classes {doc['classes']}"
        )
    return doc


async def _admit_labels(
    db: Database, doc: Document, y: np.ndarray, field: str, max_classes: int
) -> None:
    """A classification model's labels (predicted and true) are at most ``max_classes``
    values in all, across its batches: an hour keeps a confusion cell per pair of them. A
    batch that would bring more is refused whole. (Concurrent batches each check against
    the model as read, so together they may pass it by one batch's new labels.)"""
    known = {str(label) for label in doc.get("labels") or []}
    new = sorted({str(label) for label in pd.unique(y).tolist()} - known)
    if not new:
        return
    if len(known) + len(new) > max_classes:
        raise ValidationFailed(
            field,
            f"{len(new)} labels new to model {doc['model']!r}, which has {len(known)}; a "
            f"model has at most {max_classes} (DRIFT_PERFORMANCE_MAX_CLASSES)",
        )
    await repository.add_labels(db, doc["_id"], new)


def _ordered_proba(proba: np.ndarray | None, classes: list[str], order: list[str]) -> Any:
    if proba is None:
        return None
    return proba[:, [classes.index(cls) for cls in order]]


# --- predictions ---------------------------------------------------------------------------------


def _parse_predictions(table: pa.Table, now: datetime, limits: Limits) -> batches.Rows:
    batches.check_rows(table, limits.max_rows)
    unknown = [
        name
        for name in table.column_names
        if name not in ("id", "y_pred", "time") and not name.startswith(batches.PROBA_PREFIX)
    ]
    if unknown:
        raise BatchError(unknown[0], "unknown column; send id, y_pred, proba_<class>, time", 422)
    ids = batches.read_ids(table)
    task = batches.infer_task(table, "y_pred")
    proba, classes = batches.read_proba(table)
    batches.check_probabilities(table.num_rows, len(classes))
    y = batches.read_target(table, "y_pred", task)
    if task is Task.classification:
        batches.check_classes(classes, y, "y_pred", limits.max_classes)
    return batches.Rows(
        y=y,
        ids=ids,
        proba=proba,
        classes=classes,
        times=batches.read_times(table, "time", now),
    )


async def _run_of(db: Database, experiment_id: str, model: str, run: str) -> Document:
    """The drift run predictions are recorded with (its creation time orders the model's
    runs); it must be one of this model in this experiment."""
    try:
        found = await drifts.get(db, experiment_id, run)
    except NotFound:
        raise NotFound.naming("run", f"no drift run {run!r} in this experiment") from None
    if found["model"] != model:
        raise ValidationFailed(
            "run", f"drift run {run!r} is a run of model {found['model']!r}, not of {model!r}"
        )
    return found


async def record_predictions(
    db: Database,
    limits: Limits,
    experiment_id: str,
    model: str,
    table: pa.Table,
    run: str | None = None,
) -> dict[str, Any]:
    """``run``: the drift run (of this model) the predictions belong to: they also add to
    that run's document, and keep its id."""
    run_doc = None if run is None else await _run_of(db, experiment_id, model, run)
    now = utcnow()
    rows: batches.Rows = await _in_thread(_parse_predictions, table, now, limits)
    task = Task.regression if rows.y.dtype == np.float64 else Task.classification
    doc = await _model_for(db, experiment_id, model, task, rows.classes or [])
    if task is Task.regression and doc.get("shift") is None:
        # Regression sums are kept shifted by a value near the targets (R² without loss of
        # digits); the first batch's mean prediction is near enough, and fixed for good.
        await repository.set_shift(db, doc["_id"], float(rows.y.mean()))
        doc = await repository.get_model(db, experiment_id, model) or doc
    assert rows.ids is not None
    assert rows.times is not None
    if task is Task.classification:
        await _admit_labels(db, doc, rows.y, "y_pred", limits.max_classes)
    batch = Predictions(
        ids=np.asarray(rows.ids, dtype=object),
        times=rows.times,
        y=rows.y,
        proba=_ordered_proba(rows.proba, rows.classes or [], doc["classes"]),
    )
    expires = now + timedelta(seconds=limits.unlabelled_ttl_seconds)
    created = None if run_doc is None else run_doc["created_at"]
    async with applier.session(db, doc) as model_applier:
        applied = await model_applier.predictions(batch, run, created, expires)
    await _windows_changed(db, experiment_id, model, "predictions", applied.hours)
    if limits.tracking is not None:  # new predictions change coverage
        await concept.decide_again(db, limits.tracking, doc, applied.hours)
    return {**applied.outcome, "task": task, "classes": doc["classes"]}


# --- ground truth --------------------------------------------------------------------------------


def _parse_labels(table: pa.Table, now: datetime, limits: Limits, doc: Document) -> batches.Rows:
    batches.check_rows(table, limits.max_rows)
    # Each label's joined row carries its prediction's probabilities.
    batches.check_probabilities(table.num_rows, len(doc["classes"]))
    unknown = [n for n in table.column_names if n not in ("id", "y_true", "time")]
    if unknown:
        raise BatchError(unknown[0], "unknown column; send id, y_true and optionally time", 422)
    task = Task(doc["task"])
    y = batches.read_target(table, "y_true", task)
    if task is Task.classification:
        batches.check_classes([], y, "y_true", limits.max_classes)
    return batches.Rows(
        y=y,
        ids=batches.read_ids(table),
        times=batches.read_times(table, "time", now),
    )


async def record_labels(
    db: Database, limits: Limits, experiment_id: str, model: str, table: pa.Table
) -> dict[str, Any]:
    doc = await repository.get_model(db, experiment_id, model)
    if doc is None:
        raise _unknown_model(model)
    now = utcnow()
    rows: batches.Rows = await _in_thread(_parse_labels, table, now, limits, doc)
    assert rows.ids is not None
    assert rows.times is not None
    if doc["task"] == Task.classification:
        await _admit_labels(db, doc, rows.y, "y_true", limits.max_classes)
    labels = Labels(ids=np.asarray(rows.ids, dtype=object), y=rows.y, times=rows.times)
    async with applier.session(db, doc) as model_applier:
        applied = await model_applier.labels(labels)
    await _windows_changed(db, experiment_id, model, "labels", applied.hours)
    if limits.tracking is not None:
        await concept.decide_again(db, limits.tracking, doc, applied.hours)
    return applied.outcome


# --- the labelled reference ----------------------------------------------------------------------


def _parse_reference(table: pa.Table, limits: Limits) -> tuple[Task, batches.Rows]:
    batches.check_rows(table, limits.max_rows)
    unknown = [
        name
        for name in table.column_names
        if name not in ("y_true", "y_pred") and not name.startswith(batches.PROBA_PREFIX)
    ]
    if unknown:
        raise BatchError(unknown[0], "unknown column; send y_true, y_pred, proba_<class>", 422)
    task = batches.infer_task(table, "y_pred")
    proba, classes = batches.read_proba(table)
    y = batches.read_target(table, "y_true", task)
    y_pred = batches.read_target(table, "y_pred", task)
    if task is Task.classification:
        batches.check_classes(classes, y, "y_true", limits.max_classes)
        batches.check_classes([], y_pred, "y_pred", limits.max_classes)
    return task, batches.Rows(
        y=y,
        y_pred=y_pred,
        proba=proba,
        classes=classes,
    )


async def record_reference(
    db: Database, limits: Limits, experiment_id: str, model: str, table: pa.Table
) -> dict[str, Any]:
    """The model's labelled reference (its expected performance), replacing any earlier."""
    task, rows = await _in_thread(_parse_reference, table, limits)
    doc = await _model_for(db, experiment_id, model, task, rows.classes or [])
    assert rows.y_pred is not None
    if task is Task.regression:
        shift = doc.get("shift")
        if shift is None:
            shift = float(rows.y.mean())
            await repository.set_shift(db, doc["_id"], shift)
        stats = regression_stats(rows.y, rows.y_pred, shift)
    else:
        proba = _ordered_proba(rows.proba, rows.classes or [], doc["classes"])
        stats = classification_stats(rows.y, rows.y_pred, proba, doc["classes"])
    reference: Document = {"n": len(rows.y), "created_at": utcnow(), "s": escape_tree(stats)}
    if task is Task.classification and proba is not None and len(doc["classes"]) == 2:
        positive = class_order(doc["classes"])[-1]
        scores = proba[:, doc["classes"].index(positive)]
        truth = (rows.y == positive).astype(np.float64)
        reference["calibration"] = await asyncio.to_thread(cbpe.fit, truth, scores)
    if task is Task.classification and proba is not None and len(doc["classes"]) > 2:
        # Multiclass CBPE: one calibration per class, one-vs-rest, in the model's class order.
        reference["calibrations"] = await asyncio.to_thread(
            _fit_per_class, rows.y, proba, doc["classes"]
        )
    await repository.set_reference(db, experiment_id, model, reference)
    doc["reference"] = reference
    answer = _reference_answer(doc)
    assert answer is not None  # it was just set
    return answer


def _fit_per_class(y: np.ndarray, proba: np.ndarray, classes: list[str]) -> list[dict[str, Any]]:
    return [cbpe.fit((y == cls).astype(np.float64), proba[:, k]) for k, cls in enumerate(classes)]


# --- reading -------------------------------------------------------------------------------------


def _metrics(doc: Document, stats: Stats) -> tuple[dict[str, Any], dict[str, Any] | None]:
    metrics: dict[str, Metric]
    if doc["task"] == Task.regression:
        return {k: m.as_dict() for k, m in regression_metrics(stats).items()}, None
    metrics, labels, matrix = classification_metrics(stats, doc["classes"])
    return (
        {k: m.as_dict() for k, m in metrics.items()},
        {"labels": labels, "matrix": matrix},
    )


def _reference_answer(doc: Document) -> dict[str, Any] | None:
    reference = doc.get("reference")
    if reference is None:
        return None
    metrics, confusion = _metrics(doc, unescape_tree(reference["s"]))
    return {
        "n": reference["n"],
        "created_at": reference["created_at"],
        "metrics": metrics,
        "confusion_matrix": confusion,
    }


def _range(
    window: Window, start: datetime | None, end: datetime | None
) -> tuple[datetime, datetime]:
    length = WINDOW_LENGTH[window]
    end = end or utcnow()
    start = window_start(start or end - DEFAULT_WINDOWS[window] * length, window)
    if start >= end:
        raise ValidationFailed("from", "must be before 'to'")
    if (end - start) / length > MAX_WINDOWS:
        raise ValidationFailed("from", f"the range holds more than {MAX_WINDOWS} {window}s")
    return start, end


async def performance(
    db: Database,
    experiment_id: str,
    model: str,
    window: Window,
    start: datetime | None,
    end: datetime | None,
    rules: Rules,
) -> dict[str, Any]:
    doc = await repository.get_model(db, experiment_id, model)
    if doc is None:
        raise _unknown_model(model)
    start, end = _range(window, start, end)
    hours = await repository.read_windows(db, experiment_id, model, start, end)
    grouped: dict[datetime, Stats] = {}
    packed: dict[datetime, dict[str, float | int]] = {}
    for hour in hours:
        begin = window_start(hour["start"], window)
        add_into(
            grouped.setdefault(begin, {}),
            {k: v for k, v in hour.items() if k in FIELDS},
            stored=True,
        )
        add_cells(packed.setdefault(begin, {}), repository.unpack(hour))
    for begin, cells in packed.items():  # nested once per window, not per hour
        add_into(grouped[begin], repository.nest(cells), stored=True)
    reference = doc.get("reference")
    reference_stats = unescape_tree(reference["s"]) if reference else None
    windows = [
        _window(doc, begin, stats, window, rules, reference_stats)
        for begin, stats in grouped.items()
    ]
    return {
        "experiment_id": experiment_id,
        "model": model,
        "task": doc["task"],
        "classes": doc["classes"],
        "window": window,
        "start": start,
        "end": end,
        "min_coverage": rules.min_coverage,
        "reference": _reference_answer(doc),
        "windows": sorted(windows, key=lambda w: w["start"]),
    }


#: The summed fields of a stored hour.
FIELDS = ("n_pred", "n_lab", "lag_sum", "lag_max", "s", "e", "m")


def _decisions(
    doc: Document, stats: Stats, complete: bool, rules: Rules, reference: Stats | None
) -> dict[str, dict[str, Any]]:
    """Every decision of a window, the main one (accuracy, MAE) first."""
    found = window_decisions(
        doc["task"] == Task.regression,
        doc["classes"],
        stats,
        reference,
        complete,
        Tolerances(rules.tolerance, rules.regression_tolerance, rules.alpha),
    )
    return {name: decision.as_dict() for name, decision in found.items()}


def _estimated(doc: Document, stats: Stats) -> dict[str, Any] | None:
    """CBPE: the metrics expected from the (calibrated) probabilities, labels or not."""
    reference = doc.get("reference") or {}
    classes = doc["classes"]
    if "e" in stats and len(classes) == 2:
        calibration = reference.get("calibration") or {}
        positive = class_order(classes)[-1]
        binary = estimation.binary(stats["e"], classes, calibration)
        return {
            "accuracy": cbpe.expected_accuracy(stats["e"], positive, calibration),
            **{name: e.as_dict() for name, e in binary.items()},
            "calibrated": bool(calibration.get("used")),
        }
    if "m" in stats and len(classes) > 2:
        calibrations = reference.get("calibrations") or []
        multi = estimation.multiclass(stats["m"], classes, calibrations)
        return {
            **{name: e.as_dict() for name, e in multi.items()},
            "calibrated": any(c.get("used") for c in calibrations),
        }
    return None


def _window(
    doc: Document,
    start: datetime,
    stats: Stats,
    window: Window,
    rules: Rules,
    reference: Stats | None,
) -> dict[str, Any]:
    return {
        "start": start,
        "end": start + WINDOW_LENGTH[window],
        **_measured(doc, stats, rules, reference),
    }


def _measured(doc: Document, stats: Stats, rules: Rules, reference: Stats | None) -> dict[str, Any]:
    """What a window's (or a run's) sums say: coverage, lag, metrics, decisions, estimates."""
    n_pred, n_lab = int(stats.get("n_pred", 0)), int(stats.get("n_lab", 0))
    coverage = n_lab / n_pred if n_pred else None
    metrics, confusion_matrix = _metrics(doc, stats.get("s", {}))
    complete = coverage is not None and coverage >= rules.min_coverage
    decisions = _decisions(doc, stats.get("s", {}), complete, rules, reference)
    estimated = _estimated(doc, stats)
    return {
        "n_predicted": n_pred,
        "n_labelled": n_lab,
        "coverage": coverage,
        "complete": complete,
        "label_lag": {
            "mean_seconds": stats.get("lag_sum", 0.0) / n_lab if n_lab else None,
            "max_seconds": stats.get("lag_max") if n_lab else None,
        },
        "metrics": metrics,
        "confusion_matrix": confusion_matrix,
        "decision": next(iter(decisions.values())),
        "decisions": decisions,
        "estimated": estimated,
    }


# --- per drift run ------------------------------------------------------------------------------


def _run(doc: Document, stored: Document, rules: Rules, reference: Stats | None) -> dict[str, Any]:
    stats = add_into({}, {k: v for k, v in stored.items() if k in FIELDS}, stored=True)
    add_into(stats, repository.nest(repository.unpack(stored)), stored=True)
    return {
        "run_id": stored["run_id"],
        "run_created_at": stored["run_created_at"],
        **_measured(doc, stats, rules, reference),
    }


def _model_answer(doc: Document, rules: Rules) -> dict[str, Any]:
    return {
        "experiment_id": doc["experiment_id"],
        "model": doc["model"],
        "task": doc["task"],
        "classes": doc["classes"],
        "min_coverage": rules.min_coverage,
        "reference": _reference_answer(doc),
    }


def _reference_stats(doc: Document) -> Stats | None:
    reference = doc.get("reference")
    return unescape_tree(reference["s"]) if reference else None


async def runs(
    db: Database,
    experiment_id: str,
    model: str,
    *,
    after: Cursor | None,
    before: Cursor | None,
    limit: int,
    rules: Rules,
) -> dict[str, Any]:
    """The model's metrics per drift run, newest run first, one keyset page of them
    (``next``: the cursor of older runs, ``previous``: of newer ones)."""
    doc = await repository.get_model(db, experiment_id, model)
    if doc is None:
        raise _unknown_model(model)
    page = await repository.page_runs(
        db, experiment_id, model, after=after, before=before, limit=limit
    )
    reference = _reference_stats(doc)
    return {
        **_model_answer(doc, rules),
        "runs": [_run(doc, run, rules, reference) for run in page.items],
        "next": page.next,
        "previous": page.previous,
    }


async def run_performance(
    db: Database, experiment_id: str, run_id: str, model: str | None, rules: Rules
) -> dict[str, Any]:
    """The metrics of the predictions recorded with one drift run (of its model, unless
    ``model`` names another)."""
    try:
        found = await drifts.get(db, experiment_id, run_id)
    except NotFound:
        raise NotFound.naming("run", f"no drift run {run_id!r} in this experiment") from None
    model = model or found["model"]
    doc = await repository.get_model(db, experiment_id, model)
    stored = None if doc is None else await repository.get_run(db, experiment_id, model, run_id)
    if doc is None or stored is None:
        raise NotFound.naming(
            "run", f"no predictions of model {model!r} recorded with run {run_id!r}"
        )
    return {**_model_answer(doc, rules), "run": _run(doc, stored, rules, _reference_stats(doc))}


async def delete_run(db: Database, experiment_id: str, run_id: str) -> None:
    """Forget a deleted drift run's metrics (the drifts route calls this)."""
    await repository.delete_run(db, experiment_id, run_id)


async def model_names(db: Database, experiment_id: str) -> list[str]:
    """The experiment's models with predictions or a reference."""
    return [doc["model"] for doc in await repository.list_models(db, experiment_id)]


async def latest_decision(
    db: Database, experiment_id: str, model: str, metric: str | None
) -> tuple[str, Document] | None:
    """The model's newest window with a definite decision on ``metric`` (None:
    its main metric) and that metric — for the alert condition ``performance_degraded``."""
    return await concept.latest(db, experiment_id, model, metric)


async def delete_for_experiment(db: Database, experiment_id: str) -> None:
    await stored.delete_for_experiment(db, experiment_id)
    await repository.delete_for_experiment(db, experiment_id)
    await concept.delete_for_experiment(db, experiment_id)


# --- a labelled reference from a baseline upload (the baselines route calls these) --------------


@dataclass(frozen=True)
class ReferenceColumns:
    """Which columns of a baseline upload are the model's labels, predictions and (with
    ``proba_prefix``) class probabilities, ``<prefix><class>``."""

    target: str
    prediction: str
    proba_prefix: str | None = None


def _split_reference(table: pa.Table, columns: ReferenceColumns) -> tuple[pa.Table, pa.Table]:
    for field, name in (("target", columns.target), ("prediction", columns.prediction)):
        if name not in table.column_names:
            raise BatchError(field, f"no column {name!r} in the upload", 422)
    if columns.target == columns.prediction:
        raise BatchError("prediction", "must name another column than target", 422)
    taken = {columns.target, columns.prediction}
    reference = {"y_true": table.column(columns.target), "y_pred": table.column(columns.prediction)}
    prefix = columns.proba_prefix
    if prefix is not None:
        named = [n for n in table.column_names if n.startswith(prefix) and n not in taken]
        if not named:
            raise BatchError("proba_prefix", f"no column starts with {prefix!r}", 422)
        for name in named:
            reference[batches.PROBA_PREFIX + name.removeprefix(prefix)] = table.column(name)
        taken.update(named)
    features = table.drop_columns(sorted(taken))
    if features.num_columns == 0:
        raise BatchError("columns", "no feature columns besides the reference's", 422)
    return features, pa.table(reference)


async def reference_from_upload(
    table: pa.Table, columns: ReferenceColumns, max_classes: int
) -> tuple[pa.Table, pa.Table]:
    """(the upload's feature columns, its reference in the ``performance-reference`` shape),
    the reference checked as that route checks it (:class:`BatchInvalid` names the query
    parameter or column at fault) so a bad one stores nothing."""
    features, reference = await _in_thread(_split_reference, table, columns)
    unbounded = Limits(
        max_rows=reference.num_rows, max_classes=max_classes, unlabelled_ttl_seconds=0.0
    )
    await _in_thread(_parse_reference, reference, unbounded)
    return features, reference


async def record_reference_from_upload(
    db: Database, experiment_id: str, model: str, reference: pa.Table, max_classes: int
) -> dict[str, Any]:
    """Store what :func:`reference_from_upload` made. Not bound by the batch row limit:
    the upload was bounded by ``DRIFT_MAX_UPLOAD_BYTES``, and a reference is kept as sums
    (the TTL is a predictions' limit, unused here)."""
    unbounded = Limits(
        max_rows=reference.num_rows, max_classes=max_classes, unlabelled_ttl_seconds=0.0
    )
    return await record_reference(db, unbounded, experiment_id, model, reference)
