"""Search endpoints' shared mechanics: page parameters, filter check, X-Pagination."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from fastapi import Depends, Query, Response
from pymongo.asynchronous.collection import AsyncCollection

from drift_backend.api.deps import SettingsDep
from drift_backend.errors import ValidationFailed
from drift_backend.schemas import utcnow
from drift_backend.settings import Settings
from drift_backend.store.filters import FilterSchema, translate
from drift_backend.store.keyset import Cursor, KeysetPage, keyset_page
from drift_backend.store.pagination import Page

Order = Literal["asc", "desc", "ascending", "descending"]


def get_page(
    settings: SettingsDep,
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
    page_size: Annotated[int, Query(ge=1)] = 10,
    sort_by: Annotated[str, Query(max_length=64)] = "created_at",
    order_by: Annotated[Order, Query()] = "desc",
) -> Page:
    if page_size > settings.max_page_size:
        raise ValidationFailed("page_size", f"must be at most {settings.max_page_size}")
    return Page(page, page_size, sort_by, order_by.startswith("desc"))


PageDep = Annotated[Page, Depends(get_page)]


def combine(scope: dict[str, Any], client_filter: dict[str, Any]) -> dict[str, Any]:
    """Both filters. One document when their keys differ (the same query as ``$and``):
    SecantusDB plans no index for a top-level ``$and`` and scanned every run of every
    experiment for ``{"model": ...}`` within an experiment; merged, the (experiment, model,
    time) index serves it."""
    if not client_filter:
        return scope
    if not scope:
        return client_filter
    if scope.keys().isdisjoint(client_filter):
        return {**scope, **client_filter}
    return {"$and": [scope, client_filter]}


#: A total known without counting (``client filter -> total``, or None: count them).
KnownTotal = Callable[[dict[str, Any]], Awaitable[int | None]]
#: The deepest newest-first page (skip + page size) read by keyset windows; past it, the
#: database sorts and skips as before (holding that many documents in the backend would
#: cost more memory than it saves time).
KEYSET_DEPTH = 1000


async def search_page(
    collection: AsyncCollection[dict[str, Any]],
    query: Any,
    schema: FilterSchema,
    scope: dict[str, Any],
    page: Page,
    settings: Settings,
    response: Response,
    *,
    sort_fields: set[str],
    known_total: KnownTotal | None = None,
    newest_by_windows: bool = False,
) -> list[dict[str, Any]]:
    """One page of ``collection`` matching the client's filter within ``scope``.

    ``known_total`` gives the total for filters whose count is kept elsewhere (the others
    are counted). ``newest_by_windows`` (a collection with ``(scope, created_at, _id)``
    indexes): a newest-first page by ``created_at`` within :data:`KEYSET_DEPTH` rows is
    read as the keyset pages are (``store/keyset.py``), in widening time windows back from
    now, so its cost is its depth, not the size of the match. Same order, same rows."""
    if page.sort_by not in sort_fields:
        raise ValidationFailed("sort_by", f"must be one of {', '.join(sorted(sort_fields))}")
    client_filter = translate(
        query, schema, max_depth=settings.max_filter_depth, max_nodes=settings.max_filter_nodes
    )
    mongo_filter = combine(scope, client_filter)
    total = await known_total(client_filter) if known_total is not None else None
    if total is None:
        total = await collection.count_documents(mongo_filter)
    depth = page.skip + page.page_size
    newest_first = page.sort_by == "created_at" and page.descending
    if newest_by_windows and newest_first and depth <= KEYSET_DEPTH:
        newest = await keyset_page(
            collection, mongo_filter, after=None, before=None, limit=depth, now=utcnow()
        )
        response.headers["X-Pagination"] = page.header(total)
        return newest.items[page.skip :]
    sort_key = "_id" if page.sort_by == "id" else page.sort_by
    cursor = (
        collection.find(mongo_filter)
        .sort([(sort_key, page.direction), ("_id", page.direction)])
        .skip(page.skip)
        .limit(page.page_size)
    )
    docs = [doc async for doc in cursor]
    response.headers["X-Pagination"] = page.header(total)
    return docs


@dataclass(frozen=True)
class Keyset:
    after: Cursor | None
    before: Cursor | None
    limit: int


def get_keyset(
    settings: SettingsDep,
    after: Annotated[
        str | None, Query(max_length=512, description="A page's `next`: the rows older than it.")
    ] = None,
    before: Annotated[
        str | None,
        Query(max_length=512, description="A page's `previous`: the rows newer than it."),
    ] = None,
    limit: Annotated[int, Query(ge=1)] = 25,
) -> Keyset:
    if limit > settings.max_page_size:
        raise ValidationFailed("limit", f"must be at most {settings.max_page_size}")
    if after is not None and before is not None:
        raise ValidationFailed("before", "give 'after' or 'before', not both")
    return Keyset(
        Cursor.decode("after", after) if after is not None else None,
        Cursor.decode("before", before) if before is not None else None,
        limit,
    )


KeysetDep = Annotated[Keyset, Depends(get_keyset)]


async def search_keyset(
    collection: AsyncCollection[dict[str, Any]],
    query: Any,
    schema: FilterSchema,
    scope: dict[str, Any],
    keyset: Keyset,
    settings: Settings,
) -> KeysetPage:
    """One keyset page (newest first) of ``collection`` matching the client's filter within
    ``scope``: no count, so its cost is the page's, not everything that matches."""
    client_filter = translate(
        query, schema, max_depth=settings.max_filter_depth, max_nodes=settings.max_filter_nodes
    )
    return await keyset_page(
        collection,
        combine(scope, client_filter),
        after=keyset.after,
        before=keyset.before,
        limit=keyset.limit,
        now=utcnow(),
    )
