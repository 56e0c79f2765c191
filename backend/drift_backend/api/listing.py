"""Search endpoints' shared mechanics: page parameters, filter check, X-Pagination."""

from __future__ import annotations

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
) -> list[dict[str, Any]]:
    """One page of ``collection`` matching the client's filter within ``scope``."""
    if page.sort_by not in sort_fields:
        raise ValidationFailed("sort_by", f"must be one of {', '.join(sorted(sort_fields))}")
    client_filter = translate(
        query, schema, max_depth=settings.max_filter_depth, max_nodes=settings.max_filter_nodes
    )
    mongo_filter = combine(scope, client_filter)
    total = await collection.count_documents(mongo_filter)
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
