"""The last run of each of a few experiments (the experiments list shows it per row).

A keyset page of one per experiment (``store/keyset.py``): widening time windows back from
now over the ``(experiment_id, created_at, _id)`` index, so each read holds what the first
non-empty window holds, never every run of the experiment (MongoDB would stop at the first
index entry of one sorted query anyway; SecantusDB, the test database, fetches the whole
range before a sort's limit). They run concurrently; a page asks about at most
:data:`MAX_EXPERIMENTS`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from drift_backend.drifts.service import to_api
from drift_backend.schemas import utcnow
from drift_backend.store.database import Database
from drift_backend.store.keyset import keyset_page

#: Experiments one request may ask about (a page of the experiments list is 20).
MAX_EXPERIMENTS = 100


async def last_run(db: Database, experiment_id: str) -> dict[str, Any] | None:
    match = {"experiment_id": experiment_id}
    page = await keyset_page(db.drifts, match, after=None, before=None, limit=1, now=utcnow())
    return to_api(page.items[0]) if page.items else None


async def last_runs(db: Database, experiment_ids: Sequence[str]) -> list[dict[str, Any]]:
    """``{experiment_id, run}`` per id, in the order given; ``run`` is None for an experiment
    without runs. The caller has checked that each may be read."""
    runs = await asyncio.gather(*(last_run(db, item) for item in experiment_ids))
    return [
        {"experiment_id": item, "run": run} for item, run in zip(experiment_ids, runs, strict=True)
    ]
