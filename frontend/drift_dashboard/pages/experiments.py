"""The experiments list (search, sort, keyset pagination) and the create form.

The backend's ``POST /experiment/search`` takes a filter and page/sort parameters; we page by
keyset, not by page number: the next page is "after the last row's (sort value, id)", sent
as a filter, so a page costs the same however deep it is and rows added meanwhile do not
shift it. The cursor travels in the URL (``after=``), so paging works without JavaScript.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Query, Request
from starlette.responses import RedirectResponse, Response

from drift_dashboard.api import ApiError
from drift_dashboard.deps import ApiDep, LoggedInDep
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


def search_filter(q: str, sort: SortOption, after: tuple[str, str] | None) -> dict[str, Any]:
    parts: list[dict[str, Any]] = []
    if q:
        # A name prefix (the backend's filters have no text search): [q, q + max char).
        parts.append({"name": {"$gte": q, "$lt": q + "\U0010ffff"}})
    if after is not None:
        value, last_id = after
        op = "$lt" if sort.descending else "$gt"
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


@router.get("/experiments")
async def list_experiments(
    request: Request,
    api: ApiDep,
    q: Annotated[str, Query(max_length=128)] = "",
    sort: Annotated[str, Query(max_length=16)] = "newest",
    after: Annotated[str | None, Query(max_length=1024)] = None,
) -> Response:
    q = q.strip()
    option = SORTS.get(sort) or SORTS["newest"]
    sort = sort if sort in SORTS else "newest"
    cursor = decode_cursor(after)
    page = await api.search(
        "/experiment/search",
        search_filter(q, option, cursor),
        page=1,
        page_size=PAGE_SIZE,
        sort_by=option.field,
        order_by="desc" if option.descending else "asc",
    )
    next_url = None
    if page.has_next and page.items:
        params = {"q": q, "sort": sort, "after": encode_cursor(page.items[-1], option)}
        next_url = "/experiments?" + urlencode({k: v for k, v in params.items() if v})
    first_url = None
    if cursor is not None:
        first_url = "/experiments?" + urlencode(
            {k: v for k, v in {"q": q, "sort": sort}.items() if v}
        )
    # TODO(pages helper): last run, its state and whether it drifted per row. The backend
    # has no cheap per-experiment "latest run" (it would be one drift search per row); add
    # it with the chart aggregations (one query for a page of experiment ids).
    return render(
        request,
        "experiments/list.html",
        title="Experiments",
        experiments=page.items,
        total=page.total,
        q=q,
        sort=sort,
        sorts=SORTS,
        next_url=next_url,
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
