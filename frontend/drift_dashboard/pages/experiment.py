"""One experiment: its runs (filtered by model, status, tags and date range, paged by keyset,
filters in the URL), the charts (each with its numbers as a table and a CSV link), and live
updates of the runs table.

The runs come from the backend's ``POST /experiment/{id}/drift/page``: keyset pages by the
backend's cursors (``after``: older runs, ``before``: newer ones), without a count of all
runs, so a page costs the same in an experiment of any size. A GET form carries the
filters, so a filtered view is a link and works without JavaScript.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request
from starlette.responses import Response

from drift_dashboard.api import Api, ApiError
from drift_dashboard.deps import ApiDep, SessionDep
from drift_dashboard.pages import charts
from drift_dashboard.pages.scope import (
    ExperimentId,
    Text,
    load_scope,
    moment,
    read_range,
    render_in,
)
from drift_dashboard.templating import render

router = APIRouter()
PAGE_SIZE = 25
STATUSES = ("Running", "Completed", "Failed")
MAX_TAGS = 8


@dataclass
class RunFilters:
    """The runs filters as the form sends them, checked; ``errors`` says what was ignored."""

    model: str = ""
    status: str = ""
    tags: str = ""
    start: str = ""
    end: str = ""
    errors: list[str] = field(default_factory=list)

    @classmethod
    def parse(cls, model: str, status: str, tags: str, start: str, end: str) -> RunFilters:
        out = cls(model=model.strip(), tags=tags.strip())
        if status in STATUSES:
            out.status = status
        elif status:
            out.errors.append(f"Unknown status “{status}”: showing every status.")
        out.start, out.end = read_range(start, end, out.errors, times=False)
        if len(out.tag_list) > MAX_TAGS:
            out.errors.append(f"At most {MAX_TAGS} tags: the first {MAX_TAGS} are used.")
        return out

    @property
    def tag_list(self) -> list[str]:
        return [t.strip() for t in self.tags.split(",") if t.strip()]

    def window(self) -> tuple[datetime | None, datetime | None]:
        """``[from, to)`` in UTC: the end date is included (its whole day)."""
        start = moment(self.start, end=False, times=False) if self.start else None
        end = moment(self.end, end=True, times=False) if self.end else None
        return start, end

    def query(self) -> dict[str, str]:
        values = {
            "model": self.model,
            "status": self.status,
            "tags": self.tags,
            "from": self.start,
            "to": self.end,
        }
        return {k: v for k, v in values.items() if v}

    @property
    def active(self) -> bool:
        return bool(self.query())


async def get_run_filters(
    model: Text = "",
    status: Annotated[str, Query(max_length=16)] = "",
    tags: Text = "",
    start: Annotated[str, Query(alias="from", max_length=32)] = "",
    end: Annotated[str, Query(alias="to", max_length=32)] = "",
) -> RunFilters:
    """The runs filters of the URL (what the filter form sends), checked."""
    return RunFilters.parse(model, status, tags, start, end)


RunFiltersDep = Annotated[RunFilters, Depends(get_run_filters)]


def runs_filter(filters: RunFilters) -> dict[str, Any]:
    """The backend search filter (its allow-listed fields and operators only)."""
    parts: list[dict[str, Any]] = []
    if filters.model:
        parts.append({"model": filters.model})
    if filters.status:
        parts.append({"job_status": filters.status})
    tags = filters.tag_list[:MAX_TAGS]
    if tags:
        parts.append({"tags": {"$all": tags}})
    start, end = filters.window()
    created: dict[str, str] = {}
    if start is not None:
        created["$gte"] = start.isoformat()
    if end is not None:
        created["$lt"] = end.isoformat()
    if created:
        parts.append({"created_at": created})
    if not parts:
        return {}
    if len(parts) == 1:
        return parts[0]
    # One document when no key repeats: the backend's database plans an index for it
    # where it may not under a top-level $and.
    merged: dict[str, Any] = {}
    for part in parts:
        if merged.keys() & part.keys():
            return {"$and": parts}
        merged.update(part)
    return merged


@dataclass
class RunsPage:
    runs: list[dict[str, Any]]
    next_url: str | None
    previous_url: str | None
    first_url: str | None
    refresh_url: str


#: The page asked for: ``("after", c)``, runs older than a page's last, or ``("before",
#: c)``, newer than its first (the backend's opaque cursors); None: the newest runs.
Cursor = tuple[str, str] | None


async def load_runs(api: Api, experiment_id: str, filters: RunFilters, cursor: Cursor) -> RunsPage:
    path = f"/experiment/{experiment_id}/drift/page"
    body = runs_filter(filters)
    params: dict[str, Any] = {"limit": PAGE_SIZE}
    try:
        page = await api.post(path, body, params={**params, **dict([cursor] if cursor else [])})
    except ApiError as exc:
        if exc.status != 422 or cursor is None:
            raise
        # A cursor the backend does not take (edited, or from another version): the newest.
        cursor = None
        page = await api.post(path, body, params=params)
    base = f"/experiments/{experiment_id}"
    query = filters.query()

    def link(**more: str) -> str:
        return f"{base}?{urlencode({**query, **more})}" if query or more else base

    fragment = {**query, **dict([cursor] if cursor else [])}
    return RunsPage(
        runs=page["items"],
        next_url=link(after=page["next"]) if page["next"] else None,
        previous_url=link(before=page["previous"]) if page["previous"] else None,
        first_url=link() if cursor is not None else None,
        refresh_url=f"{base}/runs-table" + (f"?{urlencode(fragment)}" if fragment else ""),
    )


async def get_cursor(
    after: Annotated[str | None, Query(max_length=1024)] = None,
    before: Annotated[str | None, Query(max_length=1024)] = None,
) -> Cursor:
    if after:
        return ("after", after)
    if before:
        return ("before", before)
    return None


CursorDep = Annotated[Cursor, Depends(get_cursor)]


def duration(run: dict[str, Any]) -> str:
    """How long a finished run took, for people (``1 h 02 min``, ``3.4 s``)."""
    if not run.get("finished_at"):
        return ""
    try:
        start = datetime.fromisoformat(run["created_at"])
        end = datetime.fromisoformat(run["finished_at"])
    except (TypeError, ValueError):
        return ""
    seconds = max(0.0, (end - start).total_seconds())
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


@router.get("/experiments/{experiment_id}")
async def show_experiment(
    request: Request,
    api: ApiDep,
    session: SessionDep,
    experiment_id: ExperimentId,
    filters: RunFiltersDep,
    cursor: CursorDep,
    feature: Text = "",
) -> Response:
    scope = await load_scope(api, session, experiment_id)
    # Independent backend calls: the page waits for the slowest, not for their sum.
    runs, board = await asyncio.gather(
        load_runs(api, experiment_id, filters, cursor),
        charts.load_all(api, experiment_id, filters, feature.strip()),
    )
    return render_in(
        request,
        scope,
        "experiment/show.html",
        section="runs",
        title=scope.experiment["name"],
        filters=filters,
        statuses=STATUSES,
        runs=runs,
        duration=duration,
        charts=board,
        num=charts.number,
    )


@router.get("/experiments/{experiment_id}/runs-table")
async def runs_table(
    request: Request,
    api: ApiDep,
    experiment_id: ExperimentId,
    filters: RunFiltersDep,
    cursor: CursorDep,
) -> Response:
    """The runs table alone: what the live updates swap in when a run starts or ends."""
    runs = await load_runs(api, experiment_id, filters, cursor)
    return render(
        request,
        "experiment/_runs.html",
        experiment={"id": experiment_id},
        runs=runs,
        duration=duration,
        filters=filters,
    )
