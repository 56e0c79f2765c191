"""The job queue: a MongoDB collection any number of workers share.

A worker claims a job with one atomic update that also sets a lease; while it works it extends
the lease (heartbeat). A worker that dies stops extending it, the lease expires and another
worker claims the job again, up to ``max_attempts`` claims. A worker that finds its lease
lost (it stalled, and another worker took the job over) stops working on the job at once; the
job's own status changes only under the lease of the attempt that claimed it, and what a job
writes elsewhere is written once (the check's report under the run's id, the run only while
it is Running), so a job finishes once.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pymongo import ASCENDING, ReturnDocument

from drift_backend.schemas import utcnow
from drift_backend.store.database import Database

QUEUED, RUNNING, DONE, FAILED = "queued", "running", "done", "failed"


@dataclass(frozen=True)
class Claim:
    """A job as claimed by one worker for one attempt."""

    job: dict[str, Any]
    worker: str

    @property
    def id(self) -> str:
        return str(self.job["_id"])

    @property
    def attempt(self) -> int:
        return int(self.job["attempts"])

    @property
    def owner_filter(self) -> dict[str, Any]:
        return {"_id": self.id, "status": RUNNING, "worker": self.worker, "attempts": self.attempt}


class JobQueue:
    def __init__(self, db: Database, *, lease_seconds: float = 60.0, max_attempts: int = 3) -> None:
        self.jobs = db.jobs
        self.lease = timedelta(seconds=lease_seconds)
        self.max_attempts = max_attempts

    async def enqueue(
        self, kind: str, payload: dict[str, Any], *, drift_id: str, job_id: str | None = None
    ) -> str:
        """Queue a job; a given ``job_id`` makes it once-only (a second enqueue under the same
        id raises ``DuplicateKeyError``)."""
        now = utcnow()
        job_id = job_id or str(uuid.uuid4())
        await self.jobs.insert_one(
            {
                "_id": job_id,
                "kind": kind,
                "drift_id": drift_id,
                "payload": payload,
                "status": QUEUED,
                "attempts": 0,
                "worker": None,
                "lease_until": None,
                "error": None,
                "created_at": now,
                "updated_at": now,
            }
        )
        return job_id

    async def claim(self, worker: str) -> Claim | None:
        """The oldest queued job, or one whose lease expired, with a fresh lease; else None."""
        now = utcnow()
        update = {
            "$set": {
                "status": RUNNING,
                "worker": worker,
                "lease_until": now + self.lease,
                "updated_at": now,
            },
            "$inc": {"attempts": 1},
        }
        # One query per status, each on its index: SecantusDB plans an $or of them as a
        # collection scan over every job ever run (0.6 s per claim at 20,000 done jobs).
        for state in _claimable(now):
            job = await self.jobs.find_one_and_update(
                {**state, "attempts": {"$lt": self.max_attempts}},
                update,
                sort=[("created_at", ASCENDING)],
                return_document=ReturnDocument.AFTER,
            )
            if job is not None:
                return Claim(job, worker)
        return None

    async def heartbeat(self, claim: Claim) -> bool:
        """Extend the lease; False when the claim was lost (expired and taken by another)."""
        now = utcnow()
        result = await self.jobs.update_one(
            claim.owner_filter, {"$set": {"lease_until": now + self.lease, "updated_at": now}}
        )
        return result.modified_count == 1

    async def finish(self, claim: Claim, *, error: dict[str, str] | None = None) -> bool:
        """Mark the attempt done (or failed for good); False when the claim was lost."""
        status = FAILED if error else DONE
        result = await self.jobs.update_one(
            claim.owner_filter,
            {
                "$set": {
                    "status": status,
                    "error": error,
                    "lease_until": None,
                    "updated_at": utcnow(),
                }
            },
        )
        return result.modified_count == 1

    async def release(self, claim: Claim, error: dict[str, str]) -> None:
        """Give an attempt back after a transient failure; it is retried while attempts remain."""
        await self.jobs.update_one(
            claim.owner_filter,
            {
                "$set": {
                    "status": QUEUED,
                    "error": error,
                    "lease_until": None,
                    "updated_at": utcnow(),
                }
            },
        )

    async def exhausted(self) -> list[dict[str, Any]]:
        """Jobs whose every attempt died (lease expired on the last claim): mark them failed."""
        now = utcnow()
        found: list[dict[str, Any]] = []
        for state in _claimable(now):
            while True:
                job = await self.jobs.find_one_and_update(
                    {**state, "attempts": {"$gte": self.max_attempts}},
                    {"$set": {"status": FAILED, "lease_until": None, "updated_at": now}},
                    return_document=ReturnDocument.AFTER,
                )
                if job is None:
                    break
                found.append(job)
        return found


def _claimable(now: datetime) -> tuple[dict[str, Any], ...]:
    """Jobs a worker may take: a dead worker's (its lease expired) first, then queued ones."""
    return ({"status": RUNNING, "lease_until": {"$lt": now}}, {"status": QUEUED})


async def delete_for_runs(db: Database, drift_ids: list[str]) -> None:
    """The jobs of deleted drift runs (whatever their state: a running one finds its run gone)."""
    await db.jobs.delete_many({"drift_id": {"$in": drift_ids}})


@dataclass(frozen=True)
class QueueStats:
    """What ``/metrics`` reports of the queue (``metrics/sources.py``)."""

    queued: int
    running: int
    failed: int
    #: Running jobs whose lease expired: their worker died or stalled, and no other has
    #: claimed them again yet.
    stale: int
    oldest_queued_at: datetime | None


async def queue_stats(db: Database, now: datetime) -> QueueStats:
    """Counts by status on the (status, ...) indexes; done jobs are not counted (they only
    grow, and nobody waits on them)."""
    jobs = db.jobs
    oldest = await jobs.find_one(
        {"status": QUEUED}, {"created_at": 1}, sort=[("created_at", ASCENDING)]
    )
    return QueueStats(
        queued=await jobs.count_documents({"status": QUEUED}),
        running=await jobs.count_documents({"status": RUNNING}),
        failed=await jobs.count_documents({"status": FAILED}),
        stale=await jobs.count_documents({"status": RUNNING, "lease_until": {"$lt": now}}),
        oldest_queued_at=oldest["created_at"] if oldest else None,
    )
