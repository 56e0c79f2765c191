"""What every page inside one experiment shares: its path parameters, the date range its
filter forms put in the URL (``from``, ``to``), the experiment, the caller's level on it
(which decides what the experiment's nav offers), and the render call that gives the nav its
context.

The backend enforces every permission itself (a Read caller's PUT is a 403 there); the level
worked out here only decides what to show. It is the backend's rule (``level_of``): the best
of the caller's permission entries (their user id or one of their entitlements), Read for a
public experiment. Administrators get Manage from the backend without an entry; the
permissions page asks the backend about them (:func:`backend_allows_manage`).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any

from fastapi import Path, Query, Request
from starlette.responses import HTMLResponse

from drift_dashboard.api import Api, ApiError
from drift_dashboard.sessions import Session
from drift_dashboard.templating import render

_ID = r"^[A-Za-z0-9\-]+$"
ExperimentId = Annotated[str, Path(min_length=1, max_length=64, pattern=_ID)]
RunId = Annotated[str, Path(min_length=1, max_length=64, pattern=_ID)]
BaselineId = Annotated[str, Path(min_length=1, max_length=64, pattern=_ID)]
#: A free-text choice of a page's filter form (a model, tags, a metric).
Text = Annotated[str, Query(max_length=256)]

RANK = {"Read": 1, "Edit": 2, "Manage": 3}
LEVELS = ("Read", "Edit", "Manage")
#: The backend's id of the logged-in user, kept in the session (it never changes for a login;
#: a new login starts with empty session data).
USER_ID_KEY = "backend_user_id"


def moment(value: str, *, end: bool, times: bool = True) -> datetime | None:
    """A ``from``/``to`` of the URL as a UTC instant: a date is its start, or for an end the
    next day's (the end date is included, its whole day); with ``times`` a time too (a naive
    one read as UTC). None when it does not read."""
    try:
        day = date.fromisoformat(value)
    except ValueError:
        pass
    else:
        start = datetime(day.year, day.month, day.day, tzinfo=UTC)
        return start + timedelta(days=1) if end else start
    if not times:
        return None
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        return None
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def read_range(start: str, end: str, errors: list[str], *, times: bool) -> tuple[str, str]:
    """The form's ``from`` and ``to``, stripped, each kept only where it reads; one that does
    not is dropped and ``errors`` says so (the page shows it rather than failing)."""
    what = "a date (YYYY-MM-DD)" + (" or a time (YYYY-MM-DDTHH:MM)" if times else "")
    kept: list[str] = []
    for value in (start.strip(), end.strip()):
        if value and moment(value, end=False, times=times) is None:
            errors.append(f"“{value}” is not {what}: ignored.")
            value = ""
        kept.append(value)
    return kept[0], kept[1]


@dataclass
class ExperimentScope:
    experiment: dict[str, Any]
    level: str | None
    user_id: str | None
    #: Alert groups firing now (the header's badge); None when the backend cannot say.
    firing: int | None = None

    @property
    def id(self) -> str:
        return str(self.experiment["id"])

    @property
    def can_manage(self) -> bool:
        return self.level == "Manage"

    @property
    def can_edit(self) -> bool:
        return RANK.get(self.level or "", 0) >= RANK["Edit"]


async def backend_user_id(api: Api, session: Session) -> str | None:
    if api.anonymous:
        return None
    cached = session.data.get(USER_ID_KEY)
    if isinstance(cached, str):
        return cached
    me = await api.get_or_none("/user/self")
    if me is None:  # not registered (yet): no permission entry can name them
        return None
    session.data[USER_ID_KEY] = str(me["id"])
    return str(me["id"])


def level_of(
    experiment: dict[str, Any], user_id: str | None, entitlements: list[str]
) -> str | None:
    entities = set(entitlements)
    if user_id:
        entities.add(user_id)
    best = "Read" if experiment.get("public") else None
    for entry in experiment.get("permissions", []):
        level = entry.get("level")
        if (
            entry.get("entity") in entities
            and level in RANK
            and (best is None or RANK[level] > RANK[best])
        ):
            best = level
    return best


async def load_scope(api: Api, session: Session, experiment_id: str) -> ExperimentScope:
    """The experiment (a 404/403 from the backend becomes the friendly error page) and the
    caller's level on it."""
    if api.anonymous:
        experiment, firing = await asyncio.gather(
            api.get(f"/experiment/{experiment_id}"), firing_count(api, experiment_id)
        )
        return ExperimentScope(experiment, level_of(experiment, None, []), None, firing)
    experiment, user_id, entitlements, firing = await asyncio.gather(
        api.get(f"/experiment/{experiment_id}"),
        backend_user_id(api, session),
        api.get("/entitlement"),
        firing_count(api, experiment_id),
    )
    items = [str(e) for e in entitlements.get("items", [])]
    return ExperimentScope(experiment, level_of(experiment, user_id, items), user_id, firing)


async def firing_count(api: Api, experiment_id: str) -> int | None:
    """How many of the experiment's alert groups fire now; None when the backend cannot
    say (a backend without alerts, an error): the header then shows no badge rather than
    failing the page."""
    try:
        alerts = await api.get(f"/experiment/{experiment_id}/alerts", params={"state": "firing"})
    except ApiError as exc:
        if exc.status == 401:
            raise
        return None
    return len(alerts) if isinstance(alerts, list) else None


async def backend_allows_manage(api: Api, experiment_id: str) -> bool:
    """Whether the backend grants this caller Manage (an administrator has no entry): an
    empty PATCH needs Manage and changes nothing (the backend returns the experiment as is)."""
    if api.anonymous:
        return False
    try:
        await api.request("PATCH", f"/experiment/{experiment_id}", json={})
    except ApiError as exc:
        if exc.status in (401, 403):
            return False
        raise
    return True


def render_in(
    request: Request,
    scope: ExperimentScope,
    name: str,
    *,
    section: str,
    status_code: int = 200,
    **context: Any,
) -> HTMLResponse:
    """A page inside an experiment: the experiment's nav knows where it is (``section``)."""
    return render(
        request,
        name,
        status_code=status_code,
        experiment=scope.experiment,
        scope=scope,
        section=section,
        **context,
    )
