"""The Alerts tab's forms: create and delete rules and targets (Manage), create and expire
silences (Edit), send a target a test notification, redeliver a notification (Manage).

Plain POST forms with the CSRF token. Success redirects back (303, so a reload does not repeat
it) with a confirmation; a refusal from the backend (422 naming the field and the reason, 409
beyond a limit, 403) shows the page again with the form's values and the reasons beside it.
The backend validates every value; the dashboard only turns the form's text into JSON.
"""

from __future__ import annotations

from collections.abc import Awaitable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, Request
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


@dataclass
class AlertForm:
    """One submitted form of the tab: what every handler needs to send it and answer."""

    request: Request
    api: Api
    session: Session
    experiment_id: str

    @property
    def path(self) -> str:
        """The experiment's path on the backend API."""
        return f"/experiment/{self.experiment_id}"

    async def send(
        self, call: Awaitable[Any], which: str, done: str, form: dict[str, str] | None = None
    ) -> Response:
        """Every form's one shape: send it, then back to its section with a confirmation (303,
        so a reload does not repeat it), or the page again with the refusal beside the form."""
        try:
            await call
        except ApiError as exc:
            return await self.refused(exc, which, form)
        anchor = SECTION_OF.get(which, which)
        return RedirectResponse(
            f"{BASE.format(self.experiment_id)}?done={done}#{anchor}", status_code=303
        )

    async def refused(
        self, exc: ApiError, which: str, form: dict[str, str] | None = None
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
        return await self.render(outcome)

    async def render(self, outcome: Outcome) -> Response:
        return await render_page(
            self.request, self.api, self.session, self.experiment_id, outcome=outcome
        )


async def alert_form(
    request: Request,
    api: ApiDep,
    session: SessionDep,
    user: LoggedInDep,
    experiment_id: ExperimentId,
) -> AlertForm:
    return AlertForm(request, api, session, experiment_id)


AlertFormDep = Annotated[AlertForm, Depends(alert_form)]


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
    page: AlertFormDep,
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
    return await page.send(
        page.api.post(f"{page.path}/alert-rules", rule_body(form, chosen)),
        "rule",
        "rule-created",
        form,
    )


@router.post("/experiments/{experiment_id}/alerts/rules/delete")
async def delete_rule(
    page: AlertFormDep,
    rule_id: ItemId,
) -> Response:
    return await page.send(
        page.api.request("DELETE", f"{page.path}/alert-rules/{rule_id}"), "rules", "rule-deleted"
    )


@router.post("/experiments/{experiment_id}/alerts/silences")
async def create_silence(
    page: AlertFormDep,
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
    return await page.send(
        page.api.post(f"{page.path}/silences", body), "silence", "silence-created", form
    )


@router.post("/experiments/{experiment_id}/alerts/silences/expire")
async def expire_silence(
    page: AlertFormDep,
    silence_id: ItemId,
) -> Response:
    return await page.send(
        page.api.request("DELETE", f"{page.path}/silences/{silence_id}"),
        "silences",
        "silence-expired",
    )


@router.post("/experiments/{experiment_id}/alerts/targets")
async def create_target(
    page: AlertFormDep,
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
    return await page.send(
        page.api.post(f"{page.path}/alert-targets", body), "target", "target-created", form
    )


@router.post("/experiments/{experiment_id}/alerts/targets/delete")
async def delete_target(
    page: AlertFormDep,
    target_id: ItemId,
) -> Response:
    return await page.send(
        page.api.request("DELETE", f"{page.path}/alert-targets/{target_id}"),
        "targets",
        "target-deleted",
    )


@router.post("/experiments/{experiment_id}/alerts/targets/enable")
async def enable_target(
    page: AlertFormDep,
    target_id: ItemId,
) -> Response:
    """Resume a target that stopped on its own (a receiver answered 410 Gone)."""
    return await page.send(
        page.api.request(
            "PATCH",
            f"{page.path}/alert-targets/{target_id}",
            json={"enabled": True},
        ),
        "targets",
        "target-enabled",
    )


@router.post("/experiments/{experiment_id}/alerts/targets/test")
async def test_target(
    page: AlertFormDep,
    target_id: ItemId,
) -> Response:
    """Sends now and shows what the receiver answered on the page itself (no redirect: the
    answer is the point, and sending again is what a reload should do)."""
    try:
        result = await page.api.post(f"{page.path}/alert-targets/{target_id}/test")
    except ApiError as exc:
        return await page.refused(exc, "targets")
    outcome = Outcome(test={"target_id": target_id, **result})
    return await page.render(outcome)


@router.post("/experiments/{experiment_id}/alerts/notifications/redeliver")
async def redeliver(
    page: AlertFormDep,
    # A notification's id is its dedup key, ``<rule>:<model>:<episode>:<n>``: any model name.
    notification_id: Annotated[str, Form(min_length=1, max_length=1024)],
) -> Response:
    nid = quote(notification_id, safe="")
    return await page.send(
        page.api.post(f"{page.path}/notifications/{nid}/redeliver"), "log", "redelivered"
    )
