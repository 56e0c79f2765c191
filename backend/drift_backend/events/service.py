"""Emitting events: the run state machine (``drifts/``) and the check job (``checks/``) call
these after their own write succeeded.

An event is a side effect: emitting one never fails the caller's request or job. A failure is
logged and the event is lost (the run itself is stored; a reader sees it in the run list).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from drift_backend.events import repository
from drift_backend.events.schemas import EventType
from drift_backend.schemas import utcnow
from drift_backend.store.cancellation import raise_if_cancelled
from drift_backend.store.database import Database, Document

log = logging.getLogger(__name__)


async def prepare(db: Database, ttl_seconds: float) -> None:
    """At start-up: events expire ``ttl_seconds`` after their time (the configured TTL)."""
    await repository.ensure_ttl(db, ttl_seconds)


async def emit(
    db: Database,
    type_: EventType,
    *,
    experiment_id: str,
    run_id: str,
    model: str,
    payload: Mapping[str, Any],
) -> int | None:
    """Store one event; its number, or None when it could not be stored (logged)."""
    event = {
        "type": str(type_),
        "experiment_id": experiment_id,
        "run_id": run_id,
        "model": model,
        "payload": dict(payload),
    }
    numbers = await _store(db, [event])
    return numbers[0] if numbers else None


async def _store(db: Database, events: list[dict[str, Any]]) -> list[int]:
    """Number and store ``events`` (one counter step and one insert for all); their
    numbers, or none when they could not be stored (logged)."""
    if not events:
        return []
    try:
        last = await repository.next_seq(db, len(events))
        now = utcnow()
        numbered = [
            {"_id": last - len(events) + 1 + index, **event, "time": now}
            for index, event in enumerate(events)
        ]
        await repository.insert(db, numbered)
    except Exception:  # the caller's write is done: losing the event must not undo it
        raise_if_cancelled()
        runs = ", ".join(event["run_id"] for event in events)
        log.warning("could not store %s events of runs %s", events[0]["type"], runs, exc_info=True)
        return []
    return [doc["_id"] for doc in numbered]


def _flag(result: Any) -> bool | None:
    return bool(result.get("drift")) if isinstance(result, Mapping) else None


async def run_event(db: Database, type_: EventType, run: Mapping[str, Any]) -> None:
    """A ``run.*`` event of a stored drift run (its document as ``drifts/`` keeps it)."""
    await run_events(db, type_, [run])


async def run_events(db: Database, type_: EventType, runs: Sequence[Mapping[str, Any]]) -> None:
    """:func:`run_event` for several runs, numbered in their order and stored at once."""
    await _store(
        db,
        [
            {
                "type": str(type_),
                "experiment_id": run["experiment_id"],
                "run_id": run["_id"],
                "model": run["model"],
                "payload": {
                    "status": run["job_status"],
                    "drift_detected": bool(run.get("drift_detected", False)),
                    "concept_drift": _flag(run.get("concept_drift")),
                    "data_drift": _flag(run.get("data_drift")),
                },
            }
            for run in runs
        ],
    )


async def check_finished(db: Database, run: Mapping[str, Any], report: Mapping[str, Any]) -> None:
    """``check.finished``: a server check wrote its report and completed its run."""
    await emit(
        db,
        EventType.check_finished,
        experiment_id=run["experiment_id"],
        run_id=run["_id"],
        model=run["model"],
        payload={
            "status": "Completed",
            "drift_detected": bool(report.get("dataset_drift", False)),
            "drifted_features": len(report.get("drifted_features") or []),
            "n_tested": int(report.get("n_tested", 0)),
            "violations": len(report.get("violations") or []),
        },
    )


def to_wire(doc: Document) -> dict[str, Any]:
    """The stored event as the JSON of its SSE ``data:`` line."""
    return {
        "id": str(doc["_id"]),
        "type": doc["type"],
        "experiment_id": doc["experiment_id"],
        "run_id": doc["run_id"],
        "model": doc["model"],
        "time": doc["time"].isoformat(),
        "payload": doc.get("payload", {}),
    }
