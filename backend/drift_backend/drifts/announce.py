"""What follows a run's creation or change, group-committed: its counts
(``charts/run_counts``) and its event, written for every run created (changed) meanwhile at
once, and a finished run's alert evaluation queued.

Each created run needs a marker, its spans' counts, its model's totals, an event number and
the event: five commands after the run's own write, each costing SecantusDB about a
millisecond of CPU whatever it holds. Under load (64 clients creating runs) requests share
them (:mod:`drift_backend.store.group_commit`); one client alone waits for its own, as
before. A request still answers only once its run is counted and announced. A changed run's
marker moves on its own (a conditional write per run keeps each count exactly once); its
counts and event are shared.
"""

from __future__ import annotations

import weakref
from collections.abc import Awaitable, Callable
from typing import Any

from drift_backend.alerts import trigger as alerts
from drift_backend.charts import run_counts
from drift_backend.drifts.schemas import JobStatus
from drift_backend.events import service as events
from drift_backend.events.schemas import EventType
from drift_backend.store.database import Database
from drift_backend.store.group_commit import GroupCommit

Item = tuple[Database, dict[str, Any]]
Write = Callable[[list[Item]], Awaitable[None]]

#: One group per (database object, kind of write), dropped with the database object.
_groups: dict[tuple[int, str], GroupCommit[Item]] = {}


async def _write_created(items: list[Item]) -> None:
    db = items[0][0]
    runs = [run for _, run in items]
    await run_counts.record_created_many(db, runs)  # both log their failures, never raise
    await events.run_events(db, EventType.run_created, runs)


async def _write_changed(items: list[Item]) -> None:
    db = items[0][0]
    runs = [run for _, run in items]
    await run_counts.record_changed_many(db, runs)
    finished = [run for run in runs if JobStatus(run["job_status"]).terminal]
    updated = [run for run in runs if not JobStatus(run["job_status"]).terminal]
    await events.run_events(db, EventType.run_finished, finished)
    await events.run_events(db, EventType.run_updated, updated)
    await alerts.runs_finished(db, finished)  # logs its failures, never raises


def _group(db: Database, kind: str, write: Write) -> GroupCommit[Item]:
    key = (id(db), kind)
    group = _groups.get(key)
    if group is None:
        group = _groups[key] = GroupCommit(write)
        weakref.finalize(db, _groups.pop, key, None)
    return group


async def created(db: Database, run: dict[str, Any]) -> None:
    """Count ``run`` (just inserted) and announce it; returns once both are written."""
    await _group(db, "created", _write_created).submit((db, run))


async def changed(db: Database, run: dict[str, Any]) -> None:
    """After a write that changed ``run`` (as stored now): move its count, announce it
    (``run.finished`` when it finished, else ``run.updated``), and queue a finished run's
    alert evaluation; returns once all are written."""
    await _group(db, "changed", _write_changed).submit((db, run))
