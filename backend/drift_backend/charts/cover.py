"""How a chart window is read from counts kept per span (``run_counts``, ``check_counts``,
``feature_counts``): the largest counted spans that fit the window's step, smaller ones at
its edges, and what is left (less than the smallest span at each edge, or a window cut
finer than any span) from the documents themselves.

**The 6-hour spans are kept in their day's document** (a field per quarter, :func:`quarter`):
a default 30-day window has 6-hour buckets (121 of its 200), so a day document per span
would fit no step it is asked for, while four quarters in one document serve every step
that is a multiple of 6 hours (6 and 12 hours, whole days) and are read as 30 documents
instead of 120. (SecantusDB, the test database, pays a fixed cost per document a query
reads, ~0.25 ms: the number of documents is what a long window costs.)"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from drift_backend.charts.buckets import Window


def floor(when: datetime, grain: timedelta) -> datetime:
    """The start of the ``grain``-long span ``when`` falls in (spans from midnight)."""
    midnight = when.replace(hour=0, minute=0, second=0, microsecond=0)
    return midnight + ((when - midnight) // grain) * grain


#: The document that holds a quarter's counts, and the quarter itself.
DAY = timedelta(days=1)
QUARTER = timedelta(hours=6)
#: The same for the run timeline's 10-minute spans: six in their hour's document.
HOUR = timedelta(hours=1)
TEN_MINUTES = timedelta(minutes=10)


def quarter(when: datetime) -> str:
    """The field of ``when``'s 6-hour span in its day's document: ``h00``, ``h06``, ``h12``,
    ``h18`` (not digits alone: a path of digits reads as an array index)."""
    return f"h{floor(when, QUARTER).hour:02d}"


def quarter_start(day: datetime, field: str) -> datetime:
    """The start of the quarter ``field`` (:func:`quarter`) of the day starting at ``day``."""
    return day + timedelta(hours=int(field[1:]))


def sixth(when: datetime) -> str:
    """The field of ``when``'s 10-minute span in its hour's document: ``m00`` .. ``m50``."""
    return f"m{floor(when, TEN_MINUTES).minute:02d}"


def sixth_start(hour: datetime, field: str) -> datetime:
    """The start of the 10-minute span ``field`` (:func:`sixth`) of the hour at ``hour``."""
    return hour + timedelta(minutes=int(field[1:]))


def holder_range(start: datetime, end: datetime, holder: timedelta = DAY) -> dict[str, Any]:
    """The ``start`` range of the ``holder`` documents (days, hours) whose spans overlap
    ``[start, end)``."""
    return {"$gte": floor(start, holder), "$lt": end}


def holders_filter(
    experiment_id: str, model: str | None, holder: timedelta, start: datetime, end: datetime
) -> dict[str, Any]:
    """The count documents of grain ``holder`` whose spans overlap ``[start, end)``, on the
    ``(experiment_id[, model], grain, start)`` index of ``run_counts`` and
    ``violation_counts``."""
    match: dict[str, Any] = {"experiment_id": experiment_id}
    if model is not None:
        match["model"] = model
    match["grain"] = int(holder.total_seconds())
    match["start"] = holder_range(start, end, holder)
    return match


def held_spans(
    holder_start: datetime,
    spans: dict[str, Any] | None,
    span_start: Callable[[datetime, str], datetime],
    start: datetime,
    end: datetime,
) -> Iterator[tuple[datetime, Any]]:
    """``(span start, what is kept of it)`` of the ``spans`` a holder document starting at
    ``holder_start`` keeps by field (a day's quarters, an hour's 10 minutes), those in
    ``[start, end)``."""
    for name, kept in (spans or {}).items():
        at = span_start(holder_start, name)
        if start <= at < end:
            yield at, kept


@dataclass(frozen=True)
class Part:
    """``[start, end)`` read from the spans of ``grain``, or from the documents (None)."""

    grain: timedelta | None
    start: datetime
    end: datetime


def parts(window: Window, grains: tuple[timedelta, ...]) -> list[Part]:
    """``grains``: largest first, each dividing a day. A span lies in exactly one bucket
    when the step is a multiple of its grain (both align to midnight, the buckets'
    reference being one)."""
    found: list[Part] = []

    def cover(start: datetime, end: datetime, grains: tuple[timedelta, ...]) -> None:
        if start >= end:
            return
        usable = [g for g in grains if window.step % g == timedelta(0)]
        if not usable:
            found.append(Part(None, start, end))
            return
        grain, smaller = usable[0], tuple(usable[1:])
        first = floor(start, grain)
        if first < start:
            first += grain
        last = floor(end, grain)
        if first >= last:
            cover(start, end, smaller)
            return
        found.append(Part(grain, first, last))
        cover(start, first, smaller)
        cover(last, end, smaller)

    cover(window.start, window.end, grains)
    return found


def span_key(doc: dict[str, Any], grain: timedelta) -> str:
    """The id of the count document of ``doc``'s (experiment, model, span). The experiment id
    (a UUID), the grain and the time have no "|"; the model may, but it sits between fixed
    parts, so keys stay unique."""
    start = floor(doc["created_at"], grain).isoformat()
    return f"{doc['experiment_id']}|{doc['model']}|{int(grain.total_seconds())}|{start}"


def span_fields(doc: dict[str, Any], grain: timedelta) -> dict[str, Any]:
    """The fields a count document of ``doc``'s span is found by."""
    return {
        "experiment_id": doc["experiment_id"],
        "model": doc["model"],
        "grain": int(grain.total_seconds()),
        "start": floor(doc["created_at"], grain),
    }
