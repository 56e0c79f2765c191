"""An experiment's Alerts tab: the alerts firing or pending now, the rules, the silences, the
notification targets and the delivery log, all from the backend's alert and notify routes
with the user's token. The forms that change them are in :mod:`alert_actions`; this module
renders the page (after a change, or with a refused form's values and the backend's reasons).

Who sees which form is decided here only for display (the backend enforces it): rules and
targets need Manage, silences Edit; Read users see the lists.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from drift_dashboard.api import Api, ApiError
from drift_dashboard.deps import ApiDep, SessionDep
from drift_dashboard.pages.experiments import relative_time
from drift_dashboard.pages.scope import (
    ExperimentId,
    ExperimentScope,
    backend_allows_manage,
    load_scope,
    render_in,
)
from drift_dashboard.sessions import Session

router = APIRouter()

CONDITIONS = {
    "dataset_drift": "Dataset drift",
    "feature_drift": "A feature drifted",
    "violations": "Constraint violations",
    "run_failed": "A run failed or timed out",
    "no_run": "No run within a time (dead man's switch)",
}
VIOLATION_KINDS = (
    "Bound",
    "Outlier",
    "Type",
    "Null",
    "Negative",
    "Categorical",
    "data_type_check",
    "completeness_check",
    "categorical_values_check",
    "missing_column_check",
    "extra_column_check",
)
TARGET_KINDS = {
    "webhook": "Webhook (signed, Standard Webhooks)",
    "slack": "Slack incoming webhook",
    "zapier": "Zapier catch hook",
    "alertmanager": "Prometheus Alertmanager",
}
#: The backend's defaults (docs/alerts.md), shown in the rule form.
RULE_DEFAULTS = {
    "name": "",
    "condition": "dataset_drift",
    "feature": "",
    "min_effect": "",
    "kinds": "",
    "within_seconds": "86400",
    "models": "",
    "tags": "",
    "for_runs": "1",
    "keep_firing_for": "0",
    "group_wait": "30",
    "group_interval": "300",
    "repeat_interval": "14400",
    "send_resolved": "1",
}
TARGET_DEFAULTS = {"name": "", "kind": "webhook", "url": "", "auth_scheme": ""}
LOG_PAGE = 20

DONE = {
    "rule-created": "Rule created.",
    "rule-deleted": "Rule deleted.",
    "silence-created": "Silence created.",
    "silence-expired": "Silence expired.",
    "target-created": "Target created.",
    "target-deleted": "Target deleted.",
    "target-enabled": "Target enabled again: new notifications go to it.",
    "redelivered": "Queued again: the workers deliver it shortly, with the same webhook-id.",
}


@dataclass
class Problem:
    """What the backend (or the form's own check) refused: shown beside that form."""

    message: str
    fields: list[dict[str, str]] = field(default_factory=list)

    @classmethod
    def of(cls, exc: ApiError) -> Problem:
        return cls(exc.detail, exc.errors)


@dataclass
class Outcome:
    """What a POST leaves for the page: the refused form (its values and the problem), or a
    target test's answer."""

    problems: dict[str, Problem] = field(default_factory=dict)
    forms: dict[str, dict[str, str]] = field(default_factory=dict)
    test: dict[str, Any] | None = None
    status_code: int = 200


def default_silence_end(now: datetime | None = None) -> str:
    """Two hours ahead, to the minute, as a ``datetime-local`` input shows it (UTC)."""
    end = (now or datetime.now(UTC)) + timedelta(hours=2)
    return end.strftime("%Y-%m-%dT%H:%M")


def duration_text(seconds: float | int | None) -> str:
    """``30 s``, ``5 min``, ``4 h``, ``1 day``: the rule's timing for people."""
    if seconds is None:
        return ""
    value = float(seconds)
    for size, unit in ((86400, "day"), (3600, "h"), (60, "min")):
        if value >= size and value % size == 0:
            count = int(value // size)
            return f"{count} {unit}{'s' if unit == 'day' and count != 1 else ''}"
    return f"{value:g} s"


def condition_text(condition: dict[str, Any]) -> str:
    kind = str(condition.get("type", ""))
    if kind == "feature_drift":
        text = f"feature “{condition.get('feature')}” drifted"
        if condition.get("min_effect") is not None:
            text += f" with effect ≥ {condition['min_effect']:g}"
        return text
    if kind == "violations":
        kinds = condition.get("kinds") or []
        return "violations: " + (", ".join(kinds) if kinds else "any kind")
    if kind == "no_run":
        return f"no run within {duration_text(condition.get('within_seconds'))}"
    return CONDITIONS.get(kind, kind)


async def _optional(call: Any, missing: Any) -> Any:
    """A list the page can do without when the backend lacks it (an older backend: 404 on the
    route itself would also be an unreadable experiment, which load_scope reports first)."""
    try:
        return await call
    except ApiError as exc:
        if exc.status in (401, 403):
            raise
        return missing


async def load_log(
    api: Api, experiment_id: str, before: str | None
) -> tuple[dict[str, Any], Problem | None]:
    params: dict[str, Any] = {"limit": LOG_PAGE}
    if before:
        params["before"] = before
    try:
        page = await api.get(f"/experiment/{experiment_id}/notifications", params=params)
    except ApiError as exc:
        if exc.status != 422 or not before:
            raise
        # A cursor the backend did not give out (an edited URL): say so, show the first page.
        page = await api.get(
            f"/experiment/{experiment_id}/notifications", params={"limit": LOG_PAGE}
        )
        return page, Problem(f"That page of the log does not exist: {exc.detail}")
    return page, None


async def manage_or_admin(api: Api, scope: ExperimentScope) -> ExperimentScope:
    """Who reads an experiment with no entry of their own (and it is not public) is an
    administrator, who has Manage without an entry: ask the backend, as permissions does."""
    if scope.level is None and await backend_allows_manage(api, scope.id):
        scope.level = "Manage"
    return scope


async def render_page(
    request: Request,
    api: Api,
    session: Session,
    experiment_id: str,
    *,
    log_before: str | None = None,
    done: str | None = None,
    outcome: Outcome | None = None,
) -> Response:
    outcome = outcome or Outcome()
    base = f"/experiment/{experiment_id}"
    scope, rules, silences, alerts, targets, (log, log_problem) = await asyncio.gather(
        load_scope(api, session, experiment_id),
        _optional(api.get(f"{base}/alert-rules"), []),
        _optional(api.get(f"{base}/silences"), []),
        _optional(api.get(f"{base}/alerts"), []),
        _optional(api.get(f"{base}/alert-targets"), []),
        _optional(load_log(api, experiment_id, log_before), ({"items": [], "next": None}, None)),
    )
    scope = await manage_or_admin(api, scope)
    problems = dict(outcome.problems)
    if log_problem is not None:
        problems["log"] = log_problem
    forms = {
        "rule": {**RULE_DEFAULTS, **outcome.forms.get("rule", {})},
        "target": {**TARGET_DEFAULTS, **outcome.forms.get("target", {})},
        "silence": {
            "rule_id": "",
            "model": "",
            "ends_at": default_silence_end(),
            "comment": "",
            **outcome.forms.get("silence", {}),
        },
    }
    order = {"firing": 0, "pending": 1, "resolved": 2}
    alerts = sorted(alerts, key=lambda a: (order.get(a.get("state"), 3), a.get("rule_name", "")))
    rule_names = {r["id"]: r["name"] for r in rules}
    target_names = {t["id"]: t["name"] for t in targets}
    return render_in(
        request,
        scope,
        "alerts/index.html",
        section="alerts",
        status_code=outcome.status_code,
        title=f"Alerts · {scope.experiment['name']}",
        alerts=alerts,
        rules=rules,
        silences=silences,
        targets=targets,
        log=log,
        log_before=log_before,
        rule_names=rule_names,
        target_names=target_names,
        conditions=CONDITIONS,
        violation_kinds=VIOLATION_KINDS,
        target_kinds=TARGET_KINDS,
        forms=forms,
        problems=problems,
        test=outcome.test,
        done=DONE.get(done or ""),
        condition_text=condition_text,
        duration_text=duration_text,
        relative_time=relative_time,
    )


@router.get("/experiments/{experiment_id}/alerts")
async def show_alerts(
    request: Request,
    api: ApiDep,
    session: SessionDep,
    experiment_id: ExperimentId,
    done: Annotated[str, Query(max_length=32)] = "",
    before: Annotated[str | None, Query(max_length=512)] = None,
) -> Response:
    return await render_page(
        request, api, session, experiment_id, log_before=before or None, done=done
    )
