"""Keyset pages, newest first by ``(created_at, _id)``: the page after (older than) or before
(newer than) a cursor, ``limit + 1`` documents read to know whether another page follows,
and no count of everything that matches.

The time range is read in widening, non-overlapping windows back (or forward) from the
cursor (from now for the first page), each asking only for what is still missing, until the
page is full. Why windows and not one sorted query with a limit: MongoDB walks the
``(scope, created_at, _id)`` index in order and stops at the limit either way, but SecantusDB
(the test database) fetches, decodes and sorts every document an index range yields before
applying the limit, so one query over an experiment's whole history costs its size (10 s at
100,000 runs). A window's cost is what it holds: the first page of a run every five minutes
reads the last hour or eight, a sparse experiment a few more small windows.

Another time field may order the rows (``time``: ``performance_runs`` by ``run_created_at``),
and the ``_id`` of every row matched may share a prefix the cursors leave out (``id_prefix``:
a cursor then names the row by what is its own, and stays short whatever the prefix).
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pymongo import ASCENDING, DESCENDING
from pymongo.asynchronous.collection import AsyncCollection

from drift_backend.errors import ValidationFailed

TIME = "created_at"
#: Window widths, each 8x the one before; past the last, the rest of time in one query.
SPANS = tuple(timedelta(hours=8**k) for k in range(6))  # 1 h .. 32,768 h (3.7 years)
_LOWER = {"$gt", "$gte"}
_UPPER = {"$lt", "$lte"}


@dataclass(frozen=True)
class Cursor:
    """A row's place in the order: its ``created_at`` and ``_id``."""

    at: datetime
    id: str

    def encode(self) -> str:
        raw = f"{self.at.isoformat()}|{self.id}".encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def of(cls, doc: dict[str, Any], time: str = TIME, id_prefix: str = "") -> Cursor:
        return cls(doc[time], str(doc["_id"]).removeprefix(id_prefix))

    @classmethod
    def decode(cls, field: str, text: str) -> Cursor:
        try:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode()
            at, _, doc_id = raw.partition("|")
            when = datetime.fromisoformat(at)
        except (binascii.Error, UnicodeDecodeError, ValueError):
            raise ValidationFailed(field, "is not a cursor this server gave out") from None
        if when.tzinfo is None or not doc_id:
            raise ValidationFailed(field, "is not a cursor this server gave out")
        return cls(when, doc_id)


@dataclass
class KeysetPage:
    """Newest first; ``next``: the cursor of older rows, ``previous``: of newer ones."""

    items: list[dict[str, Any]]
    next: str | None
    previous: str | None


def _is_range(condition: Any) -> bool:
    return isinstance(condition, dict) and bool(condition) and set(condition) <= _LOWER | _UPPER


def _tighter(op_a: str, a: Any, op_b: str, b: Any, lower: bool) -> tuple[str, Any]:
    if a == b:  # the strict operator is the tighter one
        return (op_a, a) if op_a in ("$gt", "$lt") else (op_b, b)
    return (op_a, a) if (a > b) == lower else (op_b, b)


def _intersect(*ranges: dict[str, Any]) -> dict[str, Any]:
    """One range document (at most one lower and one upper bound) from several."""
    lower: tuple[str, Any] | None = None
    upper: tuple[str, Any] | None = None
    for condition in ranges:
        for op, value in condition.items():
            if op in _LOWER:
                lower = (op, value) if lower is None else _tighter(*lower, op, value, lower=True)
            else:
                upper = (op, value) if upper is None else _tighter(*upper, op, value, lower=False)
    return dict(bound for bound in (lower, upper) if bound is not None)


def _and(base: dict[str, Any], extra: dict[str, Any], time: str) -> dict[str, Any]:
    """Both filters as one document where keys differ (SecantusDB plans no index for a
    top-level ``$and``), time ranges intersected; else ``$and``."""
    merged = dict(base)
    for key, value in extra.items():
        if key not in merged:
            merged[key] = value
        elif key == time and _is_range(merged[key]) and _is_range(value):
            merged[key] = _intersect(merged[key], value)
        else:
            return {"$and": [base, extra]}
    return merged


def _windows(anchor: datetime, newer: bool, strict: bool) -> list[dict[str, Any]]:
    """Time ranges of the widening windows from ``anchor``: older than it (``newer``
    False) or newer; ``strict`` leaves the anchor itself out."""
    ops = ("$gt", "$gte") if newer else ("$lt", "$lte")
    edge = (ops[0] if strict else ops[1], anchor)
    windows = []
    for span in SPANS:
        far = anchor + span if newer else anchor - span
        windows.append(dict([edge, ("$lt" if newer else "$gte", far)]))
        edge = ("$gte" if newer else "$lt", far)
    windows.append(dict([edge]))
    return windows


async def _read(
    collection: AsyncCollection[dict[str, Any]],
    match: dict[str, Any],
    newer: bool,
    limit: int,
    time: str,
) -> list[dict[str, Any]]:
    direction = ASCENDING if newer else DESCENDING
    cursor = collection.find(match).sort([(time, direction), ("_id", direction)]).limit(limit)
    return [doc async for doc in cursor]


async def _collect(
    collection: AsyncCollection[dict[str, Any]],
    match: dict[str, Any],
    cursor: Cursor | None,
    newer: bool,
    want: int,
    now: datetime,
    time: str,
) -> list[dict[str, Any]]:
    """Up to ``want`` rows past ``cursor`` (its id the whole ``_id``) in the direction asked,
    nearest first."""
    found: list[dict[str, Any]] = []
    if cursor is not None:  # first the rows at the cursor's very time, past its id
        at: Any = cursor.at if time not in match else {"$gte": cursor.at, "$lte": cursor.at}
        past = {"_id": {"$gt" if newer else "$lt": cursor.id}}
        ties = _and(_and(match, {time: at}, time), past, time)
        found += await _read(collection, ties, newer, want, time)
        windows = _windows(cursor.at, newer, strict=True)
    else:
        windows = _windows(now, newer=False, strict=False)
        # The first page also takes rows stamped after ``now`` (a clock ahead of ours).
        del windows[0]["$lte"]
    for window in windows:
        if len(found) >= want:
            break
        window_match = _and(match, {time: window}, time)
        found += await _read(collection, window_match, newer, want - len(found), time)
    return found[:want]


async def keyset_page(
    collection: AsyncCollection[dict[str, Any]],
    match: dict[str, Any],
    *,
    after: Cursor | None,
    before: Cursor | None,
    limit: int,
    now: datetime,
    time: str = TIME,
    id_prefix: str = "",
) -> KeysetPage:
    """The page of ``match`` after ``after`` (older), before ``before`` (newer), or the
    newest page; a page before the newest rows that is not full is the newest page.
    ``time``: the field ordering the rows; ``id_prefix``: what every matched ``_id`` starts
    with, left out of the cursors (given and answered)."""

    def whole(cursor: Cursor | None) -> Cursor | None:
        return None if cursor is None else Cursor(cursor.at, id_prefix + cursor.id)

    def mark(doc: dict[str, Any]) -> str:
        return Cursor.of(doc, time, id_prefix).encode()

    if before is not None:
        found = await _collect(collection, match, whole(before), True, limit + 1, now, time)
        if len(found) > limit:
            items = list(reversed(found[:limit]))
            return KeysetPage(items, mark(items[-1]), mark(items[0]))
        after = None  # nothing newer beyond these: the newest page, full
    found = await _collect(collection, match, whole(after), False, limit + 1, now, time)
    items = found[:limit]
    has_next = len(found) > limit
    return KeysetPage(
        items,
        mark(items[-1]) if has_next else None,
        mark(items[0]) if after is not None and items else None,
    )
