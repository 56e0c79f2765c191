"""The last run of each of a few experiments (the experiments list shows it per row).

One ``find_one`` per experiment, sorted by ``(created_at, _id)`` descending: each walks the
``(experiment_id, created_at, _id)`` index to its first entry, so the cost is the number of
experiments asked about, never their runs. They run concurrently; a page asks about at most
:data:`MAX_EXPERIMENTS`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from pymongo import DESCENDING

from drift_backend.drifts.service import to_api
from drift_backend.store.database import Database

#: Experiments one request may ask about (a page of the experiments list is 20).
MAX_EXPERIMENTS = 100
#: Newest first, ties broken by id as the runs listing breaks them.
NEWEST = [("created_at", DESCENDING), ("_id", DESCENDING)]


async def last_run(db: Database, experiment_id: str) -> dict[str, Any] | None:
    doc = await db.drifts.find_one({"experiment_id": experiment_id}, sort=NEWEST)
    return None if doc is None else to_api(doc)


async def last_runs(db: Database, experiment_ids: Sequence[str]) -> list[dict[str, Any]]:
    """``{experiment_id, run}`` per id, in the order given; ``run`` is None for an experiment
    without runs. The caller has checked that each may be read."""
    runs = await asyncio.gather(*(last_run(db, item) for item in experiment_ids))
    return [
        {"experiment_id": item, "run": run} for item, run in zip(experiment_ids, runs, strict=True)
    ]
