"""The alert-target and delivery-log API bodies. Secrets go in, never out."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, SecretStr, StringConstraints

from drift_backend.schemas import RequestModel, Timestamp

TargetKind = Literal["slack", "zapier", "webhook", "alertmanager"]
AuthScheme = Literal["bearer", "basic"]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=128)]
Url = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2048)]
Secret = Annotated[SecretStr, Field(min_length=1, max_length=1024)]


class TargetCreate(RequestModel):
    name: Name
    kind: TargetKind
    #: Slack incoming webhook, Zapier catch hook, webhook endpoint or Alertmanager base URL.
    url: Url
    #: ``webhook``: its ``whsec_`` signing secret (required). ``alertmanager``: a bearer
    #: token, or ``user:password`` with ``auth_scheme: basic`` (optional). Write-only.
    secret: Secret | None = None
    auth_scheme: AuthScheme | None = None
    enabled: bool = True


class TargetPatch(RequestModel):
    name: Name | None = None
    url: Url | None = None
    secret: Secret | None = None
    auth_scheme: AuthScheme | None = None
    enabled: bool | None = None


class Target(BaseModel):
    id: str
    experiment_id: str
    name: str
    kind: TargetKind
    #: The full URL of webhook and Alertmanager targets; only ``scheme://host`` of Slack and
    #: Zapier ones, whose URL is itself the secret.
    url: str
    has_secret: bool
    auth_scheme: AuthScheme | None
    enabled: bool
    #: Why delivery stopped on its own (a receiver answered 410 Gone).
    disabled_reason: str | None
    created_at: Timestamp
    updated_at: Timestamp


class TargetTestResult(BaseModel):
    """What the receiver answered a test notification (``ok`` is a 2xx answer)."""

    ok: bool
    outcome: Literal["delivered", "failed", "refused"]
    status_code: int | None
    excerpt: str | None
    error: str | None
    duration_ms: int | None
    webhook_id: str


class Attempt(BaseModel):
    at: Timestamp
    outcome: str
    status_code: int | None = None
    excerpt: str | None = None
    error: str | None = None
    duration_ms: int | None = None


class Delivery(BaseModel):
    target_id: str
    target_name: str | None
    kind: str
    #: ``pending`` (waiting for its next attempt), ``sending``, ``delivered``, ``failed``,
    #: ``refused`` (the outbound policy refused the address or a redirect).
    state: str
    attempts: int
    next_attempt_at: Timestamp | None
    last: Attempt | None
    history: list[Attempt]


class Notification(BaseModel):
    id: str
    status: Literal["firing", "resolved"]
    rule_id: str
    rule_name: str
    model: str
    summary: str
    run_id: str | None
    created_at: Timestamp
    #: ``queued`` (not yet handed to targets), ``sending``, ``delivered``, ``failed``
    #: (some delivery failed or was refused), ``no_targets``.
    state: str
    deliveries: list[Delivery]


class NotificationPage(BaseModel):
    items: list[Notification]
    #: Pass as ``before`` for the next (older) page; null on the last page.
    next: str | None


def attempt_to_api(entry: dict[str, Any]) -> Attempt:
    return Attempt.model_validate({key: entry.get(key) for key in Attempt.model_fields})
