"""Idempotency records in the ``idempotency_keys`` collection.

A record is ``pending`` while its first request runs (held by an ``owner`` token under a
lease its middleware keeps extending) and ``done`` once that request's answer is stored. A
TTL index on ``created_at`` removes records after ``RETENTION``; reads treat older records as
gone too, because the TTL monitor only runs about once a minute.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from pymongo.errors import DuplicateKeyError

from drift_backend.schemas import utcnow
from drift_backend.store.database import Database

COLLECTION = "idempotency_keys"
RETENTION = timedelta(hours=24)
#: A pending record whose lease ran out belongs to a request whose process died: the next
#: repeat takes the key over instead of waiting for the TTL.
LEASE = timedelta(seconds=60)


@dataclass(frozen=True)
class Acquired:
    owner: str


@dataclass(frozen=True)
class InProgress:
    pass


@dataclass(frozen=True)
class Completed:
    fingerprint: str
    status: int
    headers: list[tuple[str, str]]
    body: bytes


Outcome = Acquired | InProgress | Completed


class Records:
    def __init__(self, db: Database) -> None:
        self.collection = db[COLLECTION]

    async def acquire(self, record_id: str, issuer: str, subject: str, key: str) -> Outcome:
        """Take the key for a new request, or say what an earlier request with it left."""
        for _ in range(5):  # each lost race means another request changed the record
            now = utcnow()
            owner = uuid.uuid4().hex
            fresh: dict[str, Any] = {
                "_id": record_id,
                "state": "pending",
                "owner": owner,
                "lease_until": now + LEASE,
                "created_at": now,
                "issuer": issuer,
                "subject": subject,
                "key": key,
            }
            try:
                await self.collection.insert_one(fresh)
            except DuplicateKeyError:
                pass
            else:
                return Acquired(owner)
            current = await self.collection.find_one({"_id": record_id})
            if current is None:
                continue  # released or expired just now: insert again
            expired = current["created_at"] <= now - RETENTION
            if current["state"] == "done" and not expired:
                response = current["response"]
                return Completed(
                    fingerprint=current["fingerprint"],
                    status=int(response["status"]),
                    headers=[(name, value) for name, value in response["headers"]],
                    body=bytes(response["body"]),
                )
            if current["state"] == "pending" and not expired and current["lease_until"] > now:
                return InProgress()
            # An abandoned or expired record: take it over unless someone else just did.
            taken = await self.collection.find_one_and_replace(
                {"_id": record_id, "owner": current["owner"]}, fresh
            )
            if taken is not None:
                return Acquired(owner)
        return InProgress()

    async def extend(self, record_id: str, owner: str) -> None:
        await self.collection.update_one(
            {"_id": record_id, "owner": owner, "state": "pending"},
            {"$set": {"lease_until": utcnow() + LEASE}},
        )

    async def complete(
        self,
        record_id: str,
        owner: str,
        fingerprint: str,
        status: int,
        headers: list[tuple[str, str]],
        body: bytes,
    ) -> None:
        await self.collection.update_one(
            {"_id": record_id, "owner": owner, "state": "pending"},
            {
                "$set": {
                    "state": "done",
                    "fingerprint": fingerprint,
                    "completed_at": utcnow(),
                    "response": {
                        "status": status,
                        "headers": [[name, value] for name, value in headers],
                        "body": body,
                    },
                },
                "$unset": {"lease_until": ""},
            },
        )

    async def release(self, record_id: str, owner: str) -> None:
        await self.collection.delete_one({"_id": record_id, "owner": owner})
