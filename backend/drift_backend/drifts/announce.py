"""What follows a run's creation, group-committed: its counts (``charts/run_counts``) and
its ``run.created`` event, written for every run created meanwhile at once.

Each created run needs a marker, its spans' counts, its model's totals, an event number and
the event: six commands after the run's own insert, each costing SecantusDB about a
millisecond of CPU whatever it holds. Under load (64 clients creating runs) requests share
them (:mod:`drift_backend.store.group_commit`); one client alone waits for its own, as
before. A request still answers only once its run is counted and announced.
"""

from __future__ import annotations

import weakref
from typing import Any

from drift_backend.charts import run_counts
from drift_backend.events import service as events
from drift_backend.events.schemas import EventType
from drift_backend.store.database import Database
from drift_backend.store.group_commit import GroupCommit

Item = tuple[Database, dict[str, Any]]

#: One group per database object (the app's, or a test's own), dropped with it.
_groups: dict[int, GroupCommit[Item]] = {}


async def _write(items: list[Item]) -> None:
    db = items[0][0]
    runs = [run for _, run in items]
    await run_counts.record_created_many(db, runs)  # both log their failures, never raise
    await events.run_events(db, EventType.run_created, runs)


def _group(db: Database) -> GroupCommit[Item]:
    group = _groups.get(id(db))
    if group is None:
        group = _groups[id(db)] = GroupCommit(_write)
        weakref.finalize(db, _groups.pop, id(db), None)
    return group


async def created(db: Database, run: dict[str, Any]) -> None:
    """Count ``run`` (just inserted) and announce it; returns once both are written."""
    await _group(db).submit((db, run))
