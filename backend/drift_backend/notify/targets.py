"""The ``alert_targets`` collection: where an experiment's notifications go, and the checks
a target's URL and secret pass before it is stored."""

from __future__ import annotations

import asyncio
import base64
import binascii
import uuid
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import httpcore2
from pymongo import ASCENDING, ReturnDocument

from drift_backend.errors import NotFound, ValidationFailed
from drift_backend.notify.outbound import AllowList, Refused, checked_addresses
from drift_backend.schemas import utcnow
from drift_backend.settings import Settings
from drift_backend.store.database import Database, Document

#: Kinds whose whole URL is a credential (anyone who has it may post to the channel).
SECRET_URL_KINDS = frozenset({"slack", "zapier"})
#: Kinds an operator may point at plain http inside their network (``DRIFT_OUTBOUND_ALLOW``).
INTERNAL_KINDS = frozenset({"webhook", "alertmanager"})
#: The webhook-secret sizes the Standard Webhooks spec allows (24 to 64 random bytes).
WHSEC_BYTES = range(24, 65)


def _port(scheme: str, port: int | None) -> int:
    return port or (443 if scheme == "https" else 80)


async def check_url(kind: str, url: str, settings: Settings) -> None:
    """Refuse (422 on ``url``) what delivery would refuse, and plain http where it is not
    allowed: a target that could never be delivered to is better refused now."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as error:
        raise ValidationFailed("url", f"not a valid URL: {error}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValidationFailed("url", "must be an http(s) URL with a host")
    if parts.username is not None or parts.password is not None:
        raise ValidationFailed("url", "must not carry credentials; use secret")
    host = parts.hostname
    allow = AllowList.parse(settings.outbound_allow)
    try:
        async with asyncio.timeout(settings.delivery_connect_timeout_seconds):
            addresses = await checked_addresses(host, _port(parts.scheme, port), allow)
    except Refused as refused:
        raise ValidationFailed("url", f"refused: {refused.reason}") from None
    except (httpcore2.ConnectError, TimeoutError):
        raise ValidationFailed("url", f"the host {host!r} does not resolve") from None
    if parts.scheme == "https" or settings.is_development:
        return
    allowed = allow.allows_host(host) or all(allow.allows_address(a) for a in addresses)
    if kind in INTERNAL_KINDS and allowed:
        return
    raise ValidationFailed(
        "url", "must be https (plain http only for webhook and alertmanager hosts allowed)"
    )


def check_secret(kind: str, secret: str | None, auth_scheme: str | None) -> None:
    if kind in SECRET_URL_KINDS:
        if secret is not None or auth_scheme is not None:
            raise ValidationFailed("secret", f"a {kind} target's URL is its secret; send none")
        return
    if kind == "webhook":
        if auth_scheme is not None:
            raise ValidationFailed("auth_scheme", "webhook targets are signed, not logged in")
        if secret is None:
            raise ValidationFailed("secret", "a webhook target needs its whsec_ signing secret")
        if not secret.startswith("whsec_"):
            raise ValidationFailed("secret", "must start with whsec_ (Standard Webhooks)")
        try:
            key = base64.b64decode(secret.removeprefix("whsec_"), validate=True)
        except (binascii.Error, ValueError):
            raise ValidationFailed("secret", "must be whsec_ and base64") from None
        if len(key) not in WHSEC_BYTES:
            raise ValidationFailed("secret", "must encode 24 to 64 random bytes")
        return
    # alertmanager: optional credentials
    if secret is None and auth_scheme is not None:
        raise ValidationFailed("secret", f"auth_scheme {auth_scheme} needs a secret")
    if auth_scheme == "basic" and secret is not None and ":" not in secret:
        raise ValidationFailed("secret", "basic auth takes user:password")


def to_api(doc: Document) -> dict[str, Any]:
    url = doc["url"]
    if doc["kind"] in SECRET_URL_KINDS:
        parts = urlsplit(url)
        url = f"{parts.scheme}://{parts.hostname}"
    return {
        "id": doc["_id"],
        "experiment_id": doc["experiment_id"],
        "name": doc["name"],
        "kind": doc["kind"],
        "url": url,
        "has_secret": doc["kind"] in SECRET_URL_KINDS or doc.get("secret") is not None,
        "auth_scheme": doc.get("auth_scheme"),
        "enabled": doc.get("enabled", True),
        "disabled_reason": doc.get("disabled_reason"),
        "created_at": doc["created_at"],
        "updated_at": doc["updated_at"],
    }


async def create(
    db: Database,
    settings: Settings,
    experiment_id: str,
    fields: dict[str, Any],
    created_by: str | None,
) -> Document:
    check_secret(fields["kind"], fields.get("secret"), fields.get("auth_scheme"))
    await check_url(fields["kind"], fields["url"], settings)
    now = utcnow()
    doc: Document = {
        "_id": str(uuid.uuid4()),
        "experiment_id": experiment_id,
        "name": fields["name"],
        "kind": fields["kind"],
        "url": fields["url"],
        "secret": fields.get("secret"),
        "auth_scheme": fields.get("auth_scheme"),
        "enabled": fields.get("enabled", True),
        "disabled_reason": None,
        "created_at": now,
        "updated_at": now,
        "created_by": created_by,
    }
    await db.alert_targets.insert_one(doc)
    return doc


async def list_for(db: Database, experiment_id: str) -> list[Document]:
    cursor = db.alert_targets.find({"experiment_id": experiment_id}).sort(
        [("created_at", ASCENDING), ("_id", ASCENDING)]
    )
    return [doc async for doc in cursor.limit(1000)]


async def get(db: Database, experiment_id: str, target_id: str) -> Document:
    doc = await db.alert_targets.find_one({"_id": target_id, "experiment_id": experiment_id})
    if doc is None:
        raise NotFound(f"no alert target {target_id!r} in this experiment")
    return doc


async def update(
    db: Database, settings: Settings, doc: Document, changes: dict[str, Any]
) -> Document:
    merged = {**doc, **changes}
    if "secret" in changes or "auth_scheme" in changes:
        check_secret(merged["kind"], merged.get("secret"), merged.get("auth_scheme"))
    if "url" in changes:
        await check_url(merged["kind"], merged["url"], settings)
    if changes.get("enabled"):
        changes["disabled_reason"] = None
    changes["updated_at"] = utcnow()
    updated = await db.alert_targets.find_one_and_update(
        {"_id": doc["_id"], "experiment_id": doc["experiment_id"]},
        {"$set": changes},
        return_document=ReturnDocument.AFTER,
    )
    if updated is None:
        raise NotFound(f"no alert target {doc['_id']!r} in this experiment")
    return updated


async def delete(db: Database, experiment_id: str, target_id: str) -> None:
    result = await db.alert_targets.delete_one({"_id": target_id, "experiment_id": experiment_id})
    if result.deleted_count == 0:
        raise NotFound(f"no alert target {target_id!r} in this experiment")


async def delete_for_experiment(db: Database, experiment_id: str) -> None:
    await db.alert_targets.delete_many({"experiment_id": experiment_id})


async def by_id(db: Database, target_id: str) -> Document | None:
    return await db.alert_targets.find_one({"_id": target_id})


async def reserve_send_slot(
    db: Database, target_id: str, now: datetime, interval_seconds: float
) -> datetime | None:
    """Take the target's next send slot (Slack: one message per second per webhook, across
    all workers); None when taken, else when the slot opens."""
    taken = await db.alert_targets.find_one_and_update(
        {
            "_id": target_id,
            # Due or never set: not an $or, which SecantusDB plans as a scan beside _id.
            "next_send_at": {"$not": {"$gt": now}},
        },
        {"$set": {"next_send_at": now + timedelta(seconds=interval_seconds)}},
    )
    if taken is not None:
        return None
    doc = await db.alert_targets.find_one({"_id": target_id}, {"next_send_at": 1})
    if doc is None:
        return now
    opens: datetime = doc.get("next_send_at") or now
    return opens


async def hold_until(db: Database, target_id: str, until: datetime) -> None:
    """The receiver asked us to wait (429 ``Retry-After``): nothing goes to it before."""
    await db.alert_targets.update_one(
        {"_id": target_id, "next_send_at": {"$not": {"$gte": until}}},
        {"$set": {"next_send_at": until}},
    )


async def disable(db: Database, target_id: str, reason: str) -> None:
    await db.alert_targets.update_one(
        {"_id": target_id},
        {"$set": {"enabled": False, "disabled_reason": reason, "updated_at": utcnow()}},
    )
