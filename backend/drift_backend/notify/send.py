"""Send one notification to one target: its format, its headers (the Standard Webhooks
signature, Alertmanager's credentials), and what the answer means for the delivery."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Literal

from standardwebhooks.webhooks import Webhook

from drift_backend.notify import formats
from drift_backend.notify.message import AlertMessage
from drift_backend.notify.outbound import Outbound, Refused, SendFailed
from drift_backend.store.database import Document

USER_AGENT = "drift-monitor-notify/1.0"
#: Answers worth trying again: the receiver is busy, overloaded or briefly broken.
RETRY_STATUSES = frozenset({408, 429}) | frozenset(range(500, 600))

Verdict = Literal["delivered", "retry", "failed", "refused"]


@dataclass(frozen=True)
class Outcome:
    verdict: Verdict
    status_code: int | None = None
    excerpt: str | None = None
    error: str | None = None
    duration_ms: int | None = None
    #: The receiver's ``Retry-After``, in seconds from now.
    retry_after_seconds: float | None = None
    #: 410 Gone: the receiver is gone for good, the target is disabled.
    gone: bool = False

    def record(self, at: datetime) -> dict[str, Any]:
        return {
            "at": at,
            "outcome": self.verdict,
            "status_code": self.status_code,
            "excerpt": self.excerpt,
            "error": self.error,
            "duration_ms": self.duration_ms,
        }


def _compact(body: Any) -> bytes:
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()


def render(
    target: Document, message: AlertMessage, base_url: str | None, now: datetime
) -> tuple[str, bytes, dict[str, str]]:
    """``(url, body, headers)`` of the request that delivers ``message`` to ``target``."""
    headers = {"content-type": "application/json", "user-agent": USER_AGENT}
    kind = target["kind"]
    if kind == "slack":
        return target["url"], _compact(formats.slack_body(message, base_url)), headers
    if kind == "alertmanager":
        url = target["url"].rstrip("/") + "/api/v2/alerts"
        secret = target.get("secret")
        if secret is not None and target.get("auth_scheme") == "basic":
            headers["authorization"] = "Basic " + base64.b64encode(secret.encode()).decode()
        elif secret is not None:
            headers["authorization"] = f"Bearer {secret}"
        return url, _compact(formats.alertmanager_body(message, base_url)), headers
    # zapier and webhook: one JSON body; the id is the notification's, the same on every
    # retry, so receivers can drop a repeat.
    data = _compact(formats.json_body(message, base_url, now))
    # The spec's timestamp is whole seconds, which the signature covers.
    stamp = now.astimezone(UTC).replace(microsecond=0)
    headers |= {"webhook-id": message.dedup_key, "webhook-timestamp": str(int(stamp.timestamp()))}
    if target.get("secret"):
        signer = Webhook(target["secret"])
        headers["webhook-signature"] = signer.sign(message.dedup_key, stamp, data.decode())
    return target["url"], data, headers


def _retry_after(value: str | None, now: datetime) -> float | None:
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


async def send(
    outbound: Outbound, target: Document, message: AlertMessage, base_url: str | None
) -> Outcome:
    """Deliver once; never raises for what the receiver or the network does."""
    now = datetime.now(UTC)
    url, body, headers = render(target, message, base_url, now)
    try:
        answer = await outbound.post(url, content=body, headers=headers)
    except Refused as refused:
        return Outcome("refused", error=refused.reason)
    except SendFailed as failed:
        return Outcome(
            "retry", error=failed.reason, duration_ms=round(failed.duration_seconds * 1000)
        )
    status = answer.status_code
    common: dict[str, Any] = {
        "status_code": status,
        "excerpt": answer.excerpt(),
        "duration_ms": round(answer.duration_seconds * 1000),
    }
    if 200 <= status < 300:
        return Outcome("delivered", **common)
    if 300 <= status < 400:
        # Following it would send the alert, unchecked, wherever the receiver points.
        where = answer.location or "nowhere"
        return Outcome("refused", error=f"redirect to {where} not followed", **common)
    if status in RETRY_STATUSES:
        wait = _retry_after(answer.retry_after, now)
        return Outcome("retry", error=f"HTTP {status}", retry_after_seconds=wait, **common)
    if status == 410:
        return Outcome("failed", error="HTTP 410: the receiver is gone", gone=True, **common)
    return Outcome("failed", error=f"HTTP {status}", **common)
