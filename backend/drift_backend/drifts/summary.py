"""A model's newest run, read bounded, for the per-model totals ``/metrics`` reads
(``charts/run_totals.py`` asks when the run its document named is gone); a read of the
``drifts`` collection, so it lives with its owner.

A keyset page of one (``store/keyset.py``): widening windows back from now, so it reads
what the first non-empty window holds, never every run of the model (SecantusDB, the test
database, fetches every document an index range yields before a sort's limit).
"""

from __future__ import annotations

from typing import Any

from drift_backend.drifts.schemas import JobStatus
from drift_backend.schemas import utcnow
from drift_backend.store.database import Database
from drift_backend.store.keyset import keyset_page


async def newest_run(
    db: Database, experiment_id: str, model: str, *, completed: bool
) -> dict[str, Any] | None:
    """``{created_at, drift}`` of the model's newest run (newest Completed one when
    ``completed``), or None when it has none."""
    match: dict[str, Any] = {"experiment_id": experiment_id, "model": model}
    if completed:
        match["job_status"] = str(JobStatus.Completed)
    page = await keyset_page(db.drifts, match, after=None, before=None, limit=1, now=utcnow())
    if not page.items:
        return None
    run = page.items[0]
    return {"created_at": run["created_at"], "drift": bool(run.get("drift_detected"))}
