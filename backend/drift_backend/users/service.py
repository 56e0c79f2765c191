from __future__ import annotations

import uuid
from typing import Any

from pymongo.errors import DuplicateKeyError

from drift_backend.auth.identity import Identity
from drift_backend.errors import Conflict, NotFound
from drift_backend.schemas import utcnow
from drift_backend.store.database import Database
from drift_backend.store.filters import STRING, TIMESTAMP, Field, FilterSchema

USER_FILTER = FilterSchema(
    fields={
        "id": Field("_id", STRING),
        "_id": Field("_id", STRING),
        "subject": Field("subject", STRING),
        "issuer": Field("issuer", STRING),
        "email": Field("email", STRING),
        "created_at": Field("created_at", TIMESTAMP),
        "updated_at": Field("updated_at", TIMESTAMP),
    }
)
USER_SORT_FIELDS = {"created_at", "updated_at", "email", "subject", "id"}


def to_api(doc: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": doc["_id"],
        "created_at": doc["created_at"],
        "updated_at": doc.get("updated_at", doc["created_at"]),
        "subject": doc["subject"],
        "issuer": doc["issuer"],
        "email": doc.get("email"),
    }


async def register(db: Database, identity: Identity) -> dict[str, Any]:
    now = utcnow()
    doc = {
        "_id": str(uuid.uuid4()),
        "subject": identity.subject,
        "issuer": identity.issuer,
        "email": identity.email,
        "email_verified": identity.email_verified,
        "created_at": now,
        "updated_at": now,
    }
    try:
        await db.users.insert_one(doc)
    except DuplicateKeyError:
        raise Conflict("user already registered; use PUT /user/self to update") from None
    return doc


async def refresh(db: Database, identity: Identity) -> dict[str, Any]:
    doc = await db.users.find_one_and_update(
        {"subject": identity.subject, "issuer": identity.issuer},
        {
            "$set": {
                "email": identity.email,
                "email_verified": identity.email_verified,
                "updated_at": utcnow(),
            }
        },
        return_document=True,
    )
    if doc is None:
        raise NotFound("user not registered: POST /api/v1/user first")
    return doc


async def find_by_verified_email(db: Database, email: str) -> dict[str, Any]:
    """The one registered user whose issuer verified ``email``.

    Unverified addresses never match: anyone may claim any address at some providers.
    """
    matches = await db.users.find({"email": email, "email_verified": True}).to_list(2)
    if not matches:
        raise NotFound(f"no registered user with the verified email {email!r}")
    if len(matches) > 1:
        raise Conflict(f"several users have the email {email!r}; grant by user id instead")
    return matches[0]
