"""Alert targets (list, create, get, patch, delete, test) and the delivery log."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response, status

from drift_backend.api.deps import CallerDep, ContextDep
from drift_backend.api.responses import errors
from drift_backend.auth.permissions import Level
from drift_backend.errors import ValidationFailed
from drift_backend.experiments.service import get_for
from drift_backend.notify import service, targets
from drift_backend.notify.delivery_loop import outbound_for
from drift_backend.notify.message import AlertMessage, FeatureAlert
from drift_backend.notify.schemas import (
    Notification,
    NotificationPage,
    Target,
    TargetCreate,
    TargetPatch,
    TargetTestResult,
)
from drift_backend.notify.send import send

router = APIRouter(tags=["alert targets"])
TARGETS = "/experiment/{experiment_id}/alert-targets"


@router.get(TARGETS, response_model=list[Target], responses=errors(404))
async def list_targets(experiment_id: str, caller: CallerDep, context: ContextDep) -> Any:
    await get_for(context.db, experiment_id, caller, Level.Read)
    return [targets.to_api(doc) for doc in await targets.list_for(context.db, experiment_id)]


@router.post(
    TARGETS,
    status_code=status.HTTP_201_CREATED,
    response_model=Target,
    responses=errors(403, 404, 422),
)
async def create_target(
    experiment_id: str, body: TargetCreate, caller: CallerDep, context: ContextDep
) -> Any:
    """A target's URL is checked now as delivery would check it: one whose host resolves to
    a non-global address (unless ``DRIFT_OUTBOUND_ALLOW`` allows it) is a 422."""
    await get_for(context.db, experiment_id, caller, Level.Manage)
    fields = body.model_dump()
    fields["secret"] = body.secret.get_secret_value() if body.secret else None
    doc = await targets.create(context.db, context.settings, experiment_id, fields, caller.user_id)
    return targets.to_api(doc)


@router.get(f"{TARGETS}/{{target_id}}", response_model=Target, responses=errors(404))
async def get_target(
    experiment_id: str, target_id: str, caller: CallerDep, context: ContextDep
) -> Any:
    await get_for(context.db, experiment_id, caller, Level.Read)
    return targets.to_api(await targets.get(context.db, experiment_id, target_id))


@router.patch(f"{TARGETS}/{{target_id}}", response_model=Target, responses=errors(403, 404, 422))
async def patch_target(
    experiment_id: str, target_id: str, body: TargetPatch, caller: CallerDep, context: ContextDep
) -> Any:
    await get_for(context.db, experiment_id, caller, Level.Manage)
    doc = await targets.get(context.db, experiment_id, target_id)
    changes = body.model_dump(exclude_unset=True)
    for required in ("name", "url", "enabled"):
        if required in changes and changes[required] is None:
            raise ValidationFailed(required, "may not be null")
    if body.secret is not None:
        changes["secret"] = body.secret.get_secret_value()
    updated = await targets.update(context.db, context.settings, doc, changes)
    return targets.to_api(updated)


@router.delete(
    f"{TARGETS}/{{target_id}}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=errors(403, 404),
)
async def delete_target(
    experiment_id: str, target_id: str, caller: CallerDep, context: ContextDep
) -> Response:
    await get_for(context.db, experiment_id, caller, Level.Manage)
    await targets.delete(context.db, experiment_id, target_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


def _test_message(experiment: dict[str, Any]) -> AlertMessage:
    now = datetime.now(UTC)
    return AlertMessage(
        dedup_key=f"test_{uuid.uuid4().hex}",
        experiment_id=experiment["_id"],
        experiment_name=experiment["name"],
        rule_id="test",
        rule_name="Test notification",
        model="example-model",
        status="firing",
        starts_at=now,
        summary="A test notification from Drift Monitor: this target works.",
        features=(FeatureAlert(name="example_feature", kind="drift", test="ks", p_value=0.001),),
    )


@router.post(
    f"{TARGETS}/{{target_id}}/test", response_model=TargetTestResult, responses=errors(403, 404)
)
async def test_target(
    experiment_id: str, target_id: str, caller: CallerDep, context: ContextDep
) -> Any:
    """Send a test notification now, through the same transport and format as alerts, and
    tell what the receiver answered. A receiver that fails, or an address the outbound
    policy refuses, is still a 200: ``ok`` is false and ``status_code``/``excerpt`` or
    ``error`` say why."""
    experiment = await get_for(context.db, experiment_id, caller, Level.Manage)
    target = await targets.get(context.db, experiment_id, target_id)
    settings = context.settings
    if target["kind"] == "slack":
        # The same one-per-second slot as the delivery loop: a test may not trip Slack's limit.
        for _ in range(10):
            opens = await targets.reserve_send_slot(
                context.db, target_id, datetime.now(UTC), settings.delivery_slack_interval_seconds
            )
            if opens is None:
                break
            await asyncio.sleep(max(0.05, (opens - datetime.now(UTC)).total_seconds()))
    message = _test_message(experiment)
    outbound = outbound_for(settings)
    try:
        outcome = await send(outbound, target, message, settings.public_base_url)
    finally:
        await outbound.aclose()
    verdict = "failed" if outcome.verdict == "retry" else outcome.verdict
    return {
        "ok": outcome.verdict == "delivered",
        "outcome": verdict,
        "status_code": outcome.status_code,
        "excerpt": outcome.excerpt,
        "error": outcome.error,
        "duration_ms": outcome.duration_ms,
        "webhook_id": message.dedup_key,
    }


Limit = Annotated[int, Query(ge=1, le=100)]
Before = Annotated[str | None, Query(max_length=512)]


@router.get(
    "/experiment/{experiment_id}/notifications",
    response_model=NotificationPage,
    responses=errors(404, 422),
)
async def list_notifications(
    experiment_id: str,
    caller: CallerDep,
    context: ContextDep,
    limit: Limit = 20,
    before: Before = None,
) -> Any:
    """The delivery log: notifications newest first, each with its deliveries (state,
    attempts, last answer, history). Keyset-paginated: pass ``next`` as ``before``."""
    await get_for(context.db, experiment_id, caller, Level.Read)
    return await service.delivery_log(context.db, experiment_id, before, limit)


@router.post(
    "/experiment/{experiment_id}/notifications/{notification_id}/redeliver",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=Notification,
    responses=errors(403, 404),
)
async def redeliver_notification(
    experiment_id: str, notification_id: str, caller: CallerDep, context: ContextDep
) -> Any:
    """Send the notification again to every target whose delivery has finished (delivered,
    failed or refused), with the same ``webhook-id`` and a fresh retry schedule; deliveries
    still pending are left as they are. The workers send it; the answer is its log entry."""
    await get_for(context.db, experiment_id, caller, Level.Manage)
    return await service.redeliver(context.db, experiment_id, notification_id)
