"""The experiments list (search, sort, keyset pagination) and the create form.

The backend's ``POST /experiment/search`` takes a filter and page/sort parameters; we page by
keyset, not by page number: the next page is "after the last row's (sort value, id)", sent
as a filter, so a page costs the same however deep it is and rows added meanwhile do not
shift it. The previous page is "before the first row's": the same filter the other way,
asked for in the reversed order and turned round. The cursor travels in the URL (``after=``
or ``before=``), so paging works without JavaScript.

Each row shows its experiment's last run (``GET /drift/latest``, one call for the page).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Query, Request
from starlette.responses import RedirectResponse, Response

from drift_dashboard.api import Api, ApiError
from drift_dashboard.deps import ApiDep, LoggedInDep
from drift_dashboard.pages.scope import firing_count
from drift_dashboard.templating import render

router = APIRouter()
PAGE_SIZE = 20


@dataclass(frozen=True)
class SortOption:
    label: str
    field: str
    descending: bool


SORTS: dict[str, SortOption] = {
    "newest": SortOption("Newest first", "created_at", True),
    "oldest": SortOption("Oldest first", "created_at", False),
    "updated": SortOption("Recently changed", "updated_at", True),
    "name": SortOption("Name A-Z", "name", False),
}


def encode_cursor(row: dict[str, Any], sort: SortOption) -> str:
    raw = json.dumps([row[sort.field], row["id"]], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(text: str | None) -> tuple[str, str] | None:
    if not text:
        return None
    try:
        value = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
    except (ValueError, binascii.Error):
        return None
    if (
        isinstance(value, list)
        and len(value) == 2
        and all(isinstance(part, str) and 0 < len(part) <= 512 for part in value)
    ):
        return value[0], value[1]
    return None


def search_filter(
    q: str, sort: SortOption, after: tuple[str, str] | None, *, backward: bool = False
) -> dict[str, Any]:
    """The search for a page: rows after the cursor in the sort's order, or before it
    (``backward``) when paging back."""
    parts: list[dict[str, Any]] = []
    if q:
        # A name prefix (the backend's filters have no text search): [q, q + max char).
        parts.append({"name": {"$gte": q, "$lt": q + "\U0010ffff"}})
    if after is not None:
        value, last_id = after
        op = "$lt" if sort.descending != backward else "$gt"
        parts.append(
            {
                "$or": [
                    {sort.field: {op: value}},
                    {sort.field: {"$eq": value}, "id": {op: last_id}},
                ]
            }
        )
    if not parts:
        return {}
    return parts[0] if len(parts) == 1 else {"$and": parts}


@router.get("/")
async def home() -> Response:
    return RedirectResponse("/experiments", status_code=302)


def relative_time(text: str, now: datetime | None = None) -> str:
    """``3 min ago``, ``5 h ago``, ``2 days ago``, for an ISO 8601 time with an offset."""
    try:
        then = datetime.fromisoformat(text)
    except ValueError:
        return ""
    if then.tzinfo is None:
        then = then.replace(tzinfo=UTC)
    seconds = ((now or datetime.now(UTC)) - then).total_seconds()
    if seconds < 60:
        return "just now"
    for size, unit in ((86400 * 365, "year"), (86400, "day"), (3600, "h"), (60, "min")):
        if seconds >= size:
            count = int(seconds // size)
            plural = "s" if count != 1 and unit in ("day", "year") else ""
            return f"{count} {unit}{plural} ago"
    return "just now"


async def last_runs(api: Api, experiments: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Experiment id -> its last run (None: no runs); None when the backend cannot say (the
    list still renders, without the column's values)."""
    if not experiments:
        return {}
    try:
        answer = await api.get(
            "/drift/latest", params=[("experiment", exp["id"]) for exp in experiments]
        )
    except ApiError as exc:
        if exc.status == 401:
            raise
        return None
    return {item["experiment_id"]: item["run"] for item in answer.get("items", [])}


#: Alert calls in flight at once for one list page (a page has at most PAGE_SIZE rows).
ALERT_CALLS = 8


async def firing_alerts(api: Api, experiments: list[dict[str, Any]]) -> dict[str, int | None]:
    """Experiment id -> how many of its alert groups fire now (None: the backend could not
    say), from ``GET .../alerts?state=firing`` per row, at most ALERT_CALLS at once."""
    gate = asyncio.Semaphore(ALERT_CALLS)

    async def one(experiment_id: str) -> int | None:
        async with gate:
            return await firing_count(api, experiment_id)

    ids = [str(exp["id"]) for exp in experiments]
    counts = await asyncio.gather(*(one(i) for i in ids))
    return dict(zip(ids, counts, strict=True))


def _url(**params: str | None) -> str:
    return "/experiments?" + urlencode({k: v for k, v in params.items() if v})


@router.get("/experiments")
async def list_experiments(
    request: Request,
    api: ApiDep,
    q: Annotated[str, Query(max_length=128)] = "",
    sort: Annotated[str, Query(max_length=16)] = "newest",
    after: Annotated[str | None, Query(max_length=1024)] = None,
    before: Annotated[str | None, Query(max_length=1024)] = None,
) -> Response:
    q = q.strip()
    option = SORTS.get(sort) or SORTS["newest"]
    sort = sort if sort in SORTS else "newest"
    backward_from = decode_cursor(before)
    cursor = backward_from or decode_cursor(after)
    backward = backward_from is not None
    descending = option.descending != backward
    page = await api.search(
        "/experiment/search",
        search_filter(q, option, cursor, backward=backward),
        page=1,
        page_size=PAGE_SIZE,
        sort_by=option.field,
        order_by="desc" if descending else "asc",
    )
    rows = page.items[::-1] if backward else page.items
    # Paging forward, there is more after this page when the backend says so, and something
    # before it when we came from a cursor; paging back, the other way round.
    more_after = page.has_next if not backward else True
    more_before = cursor is not None if not backward else page.has_next
    next_url = prev_url = first_url = None
    if more_after and rows:
        next_url = _url(q=q, sort=sort, after=encode_cursor(rows[-1], option))
    if more_before and rows:
        prev_url = _url(q=q, sort=sort, before=encode_cursor(rows[0], option))
        first_url = _url(q=q, sort=sort)
    if cursor is not None and not rows:  # paged past the end (rows went away): start over
        first_url = _url(q=q, sort=sort)
    latest, firing = await asyncio.gather(last_runs(api, rows), firing_alerts(api, rows))
    return render(
        request,
        "experiments/list.html",
        title="Experiments",
        experiments=rows,
        latest=latest,
        firing=firing,
        relative_time=relative_time,
        total=page.total,
        q=q,
        sort=sort,
        sorts=SORTS,
        next_url=next_url,
        prev_url=prev_url,
        first_url=first_url,
        anonymous=api.anonymous,
    )


@router.get("/experiments/new")
async def new_experiment(request: Request, user: LoggedInDep) -> Response:
    return render(
        request,
        "experiments/new.html",
        title="New experiment",
        form={"name": "", "description": "", "public": False},
        error=None,
    )


@router.post("/experiments")
async def create_experiment(
    request: Request,
    api: ApiDep,
    user: LoggedInDep,
    name: Annotated[str, Form(max_length=256)] = "",
    description: Annotated[str, Form(max_length=8192)] = "",
    public: Annotated[str, Form(max_length=8)] = "",
) -> Response:
    form = {"name": name, "description": description, "public": bool(public)}
    body: dict[str, Any] = {"name": name.strip(), "public": bool(public)}
    if description.strip():
        body["description"] = description.strip()
    error = None if body["name"] else "Give the experiment a name."
    if error is None:
        try:
            created = await api.post("/experiment", body)
        except ApiError as exc:
            if exc.status not in (409, 422):
                raise
            error = exc.detail
        else:
            return RedirectResponse(f"/experiments/{created['id']}", status_code=303)
    return render(
        request,
        "experiments/new.html",
        status_code=422,
        title="New experiment",
        form=form,
        error=error,
    )
