"""The Alerts tab's forms: create and delete rules and targets (Manage), create and expire
silences (Edit), send a target a test notification, redeliver a notification (Manage).

Plain POST forms with the CSRF token. Success redirects back (303, so a reload does not repeat
it) with a confirmation; a refusal from the backend (422 naming the field and the reason, 409
beyond a limit, 403) shows the page again with the form's values and the reasons beside it.
The backend validates every value; the dashboard only turns the form's text into JSON.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Form, Request
from starlette.responses import RedirectResponse, Response

from drift_dashboard.api import Api, ApiError
from drift_dashboard.deps import ApiDep, LoggedInDep, SessionDep
from drift_dashboard.pages.alerts import Outcome, Problem, render_page
from drift_dashboard.pages.scope import ExperimentId
from drift_dashboard.sessions import Session

router = APIRouter()
#: Backend refusals shown beside the form (anything else is the app's error page).
SHOWN = (400, 403, 404, 409, 422)
ItemId = Annotated[str, Form(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:\-]+$")]
Short = Annotated[str, Form(max_length=256)]
Long = Annotated[str, Form(max_length=4096)]
Num = Annotated[str, Form(max_length=32)]
BASE = "/experiments/{}/alerts"
SECTION_OF = {"rule": "rules", "silence": "silences", "target": "targets"}


def number(text: str) -> Any:
    """The form's text as a JSON number; anything else goes as it is, so the backend names
    the field and says why it is not a number."""
    text = text.strip()
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text


def listed(text: str) -> list[str]:
    """Comma-separated values, trimmed, empty ones dropped."""
    return [part.strip() for part in text.split(",") if part.strip()]


def utc_time(text: str) -> str:
    """A ``datetime-local`` value (no offset: the form says UTC) as ISO 8601 with an offset;
    a value with an offset is kept; anything else goes as it is for the backend to refuse."""
    text = text.strip()
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return text
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.isoformat()


def back(experiment_id: str, done: str, anchor: str) -> Response:
    return RedirectResponse(f"{BASE.format(experiment_id)}?done={done}#{anchor}", status_code=303)


async def refused(
    request: Request,
    api: Api,
    session: Session,
    experiment_id: str,
    exc: ApiError,
    which: str,
    form: dict[str, str] | None = None,
) -> Response:
    if exc.status not in SHOWN:
        raise exc
    if exc.status == 403:
        # The caller's level hides that form: show the refusal on its section's list.
        which = SECTION_OF.get(which, which)
    outcome = Outcome(
        problems={which: Problem.of(exc)},
        forms={which: form} if form is not None else {},
        status_code=exc.status if exc.status != 404 else 422,
    )
    return await render_page(request, api, session, experiment_id, outcome=outcome)


def rule_body(form: dict[str, str], kinds: list[str]) -> dict[str, Any]:
    condition: dict[str, Any] = {"type": form["condition"]}
    if form["condition"] == "feature_drift":
        condition["feature"] = form["feature"].strip()
        if form["min_effect"].strip():
            condition["min_effect"] = number(form["min_effect"])
    elif form["condition"] == "violations":
        condition["kinds"] = kinds
    elif form["condition"] == "no_run":
        condition["within_seconds"] = number(form["within_seconds"])
    body: dict[str, Any] = {
        "name": form["name"].strip(),
        "condition": condition,
        "models": listed(form["models"]),
        "tags": listed(form["tags"]),
        "send_resolved": bool(form["send_resolved"]),
    }
    for key in ("for_runs", "keep_firing_for", "group_wait", "group_interval", "repeat_interval"):
        if form[key].strip():
            body[key] = number(form[key])
    return body


@router.post("/experiments/{experiment_id}/alerts/rules")
async def create_rule(
    request: Request,
    api: ApiDep,
    session: SessionDep,
    user: LoggedInDep,
    experiment_id: ExperimentId,
    name: Short = "",
    condition: Annotated[str, Form(max_length=32)] = "dataset_drift",
    feature: Short = "",
    min_effect: Num = "",
    kinds: Annotated[list[str] | None, Form(max_length=16)] = None,
    within_seconds: Num = "",
    models: Long = "",
    tags: Long = "",
    for_runs: Num = "",
    keep_firing_for: Num = "",
    group_wait: Num = "",
    group_interval: Num = "",
    repeat_interval: Num = "",
    send_resolved: Annotated[str, Form(max_length=8)] = "",
) -> Response:
    chosen = [k[:64] for k in (kinds or [])]
    form = {
        "name": name,
        "condition": condition,
        "feature": feature,
        "min_effect": min_effect,
        "kinds": ",".join(chosen),
        "within_seconds": within_seconds,
        "models": models,
        "tags": tags,
        "for_runs": for_runs,
        "keep_firing_for": keep_firing_for,
        "group_wait": group_wait,
        "group_interval": group_interval,
        "repeat_interval": repeat_interval,
        "send_resolved": send_resolved,
    }
    try:
        await api.post(f"/experiment/{experiment_id}/alert-rules", rule_body(form, chosen))
    except ApiError as exc:
        return await refused(request, api, session, experiment_id, exc, "rule", form)
    return back(experiment_id, "rule-created", "rules")


@router.post("/experiments/{experiment_id}/alerts/rules/delete")
async def delete_rule(
    request: Request,
    api: ApiDep,
    session: SessionDep,
    user: LoggedInDep,
    experiment_id: ExperimentId,
    rule_id: ItemId,
) -> Response:
    try:
        await api.request("DELETE", f"/experiment/{experiment_id}/alert-rules/{rule_id}")
    except ApiError as exc:
        return await refused(request, api, session, experiment_id, exc, "rules")
    return back(experiment_id, "rule-deleted", "rules")


@router.post("/experiments/{experiment_id}/alerts/silences")
async def create_silence(
    request: Request,
    api: ApiDep,
    session: SessionDep,
    user: LoggedInDep,
    experiment_id: ExperimentId,
    rule_id: Annotated[str, Form(max_length=128)] = "",
    model: Short = "",
    ends_at: Annotated[str, Form(max_length=64)] = "",
    comment: Annotated[str, Form(max_length=1000)] = "",
) -> Response:
    form = {"rule_id": rule_id, "model": model, "ends_at": ends_at, "comment": comment}
    body: dict[str, Any] = {"ends_at": utc_time(ends_at)}
    if rule_id.strip():
        body["rule_id"] = rule_id.strip()
    if model.strip():
        body["model"] = model.strip()
    if comment.strip():
        body["comment"] = comment.strip()
    try:
        await api.post(f"/experiment/{experiment_id}/silences", body)
    except ApiError as exc:
        return await refused(request, api, session, experiment_id, exc, "silence", form)
    return back(experiment_id, "silence-created", "silences")


@router.post("/experiments/{experiment_id}/alerts/silences/expire")
async def expire_silence(
    request: Request,
    api: ApiDep,
    session: SessionDep,
    user: LoggedInDep,
    experiment_id: ExperimentId,
    silence_id: ItemId,
) -> Response:
    try:
        await api.request("DELETE", f"/experiment/{experiment_id}/silences/{silence_id}")
    except ApiError as exc:
        return await refused(request, api, session, experiment_id, exc, "silences")
    return back(experiment_id, "silence-expired", "silences")


@router.post("/experiments/{experiment_id}/alerts/targets")
async def create_target(
    request: Request,
    api: ApiDep,
    session: SessionDep,
    user: LoggedInDep,
    experiment_id: ExperimentId,
    name: Short = "",
    kind: Annotated[str, Form(max_length=32)] = "webhook",
    url: Annotated[str, Form(max_length=2048)] = "",
    secret: Annotated[str, Form(max_length=1024)] = "",
    auth_scheme: Annotated[str, Form(max_length=16)] = "",
) -> Response:
    # The secret is never put back into the form: it is write-only, even on a refusal.
    form = {"name": name, "kind": kind, "url": url, "auth_scheme": auth_scheme}
    body: dict[str, Any] = {"name": name.strip(), "kind": kind, "url": url.strip()}
    if secret.strip():
        body["secret"] = secret.strip()
    if auth_scheme and kind == "alertmanager":
        body["auth_scheme"] = auth_scheme
    try:
        await api.post(f"/experiment/{experiment_id}/alert-targets", body)
    except ApiError as exc:
        return await refused(request, api, session, experiment_id, exc, "target", form)
    return back(experiment_id, "target-created", "targets")


@router.post("/experiments/{experiment_id}/alerts/targets/delete")
async def delete_target(
    request: Request,
    api: ApiDep,
    session: SessionDep,
    user: LoggedInDep,
    experiment_id: ExperimentId,
    target_id: ItemId,
) -> Response:
    try:
        await api.request("DELETE", f"/experiment/{experiment_id}/alert-targets/{target_id}")
    except ApiError as exc:
        return await refused(request, api, session, experiment_id, exc, "targets")
    return back(experiment_id, "target-deleted", "targets")


@router.post("/experiments/{experiment_id}/alerts/targets/enable")
async def enable_target(
    request: Request,
    api: ApiDep,
    session: SessionDep,
    user: LoggedInDep,
    experiment_id: ExperimentId,
    target_id: ItemId,
) -> Response:
    """Resume a target that stopped on its own (a receiver answered 410 Gone)."""
    try:
        await api.request(
            "PATCH",
            f"/experiment/{experiment_id}/alert-targets/{target_id}",
            json={"enabled": True},
        )
    except ApiError as exc:
        return await refused(request, api, session, experiment_id, exc, "targets")
    return back(experiment_id, "target-enabled", "targets")


@router.post("/experiments/{experiment_id}/alerts/targets/test")
async def test_target(
    request: Request,
    api: ApiDep,
    session: SessionDep,
    user: LoggedInDep,
    experiment_id: ExperimentId,
    target_id: ItemId,
) -> Response:
    """Sends now and shows what the receiver answered on the page itself (no redirect: the
    answer is the point, and sending again is what a reload should do)."""
    try:
        result = await api.post(f"/experiment/{experiment_id}/alert-targets/{target_id}/test")
    except ApiError as exc:
        return await refused(request, api, session, experiment_id, exc, "targets")
    outcome = Outcome(test={"target_id": target_id, **result})
    return await render_page(request, api, session, experiment_id, outcome=outcome)


@router.post("/experiments/{experiment_id}/alerts/notifications/redeliver")
async def redeliver(
    request: Request,
    api: ApiDep,
    session: SessionDep,
    user: LoggedInDep,
    experiment_id: ExperimentId,
    # A notification's id is its dedup key, ``<rule>:<model>:<episode>:<n>``: any model name.
    notification_id: Annotated[str, Form(min_length=1, max_length=1024)],
) -> Response:
    nid = quote(notification_id, safe="")
    try:
        await api.post(f"/experiment/{experiment_id}/notifications/{nid}/redeliver")
    except ApiError as exc:
        return await refused(request, api, session, experiment_id, exc, "log")
    return back(experiment_id, "redelivered", "log")
