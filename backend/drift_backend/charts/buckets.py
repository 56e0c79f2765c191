"""Time buckets for the charts: a window and the ``$dateTrunc`` step that splits it into at
most the number of buckets a chart is wide."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from drift_backend.errors import ValidationFailed

Unit = Literal["minute", "hour", "day"]
#: The most buckets a chart may ask for, and what it gets when it does not say.
MAX_BUCKETS = 1000
DEFAULT_BUCKETS = 200
#: The window when a chart names no ``from``: the last 30 days (a dashboard's first view).
DEFAULT_WINDOW = timedelta(days=30)
#: Round steps, smallest first; past the last one, whole days.
STEPS: list[tuple[Unit, int]] = [
    ("minute", 1),
    ("minute", 2),
    ("minute", 5),
    ("minute", 10),
    ("minute", 15),
    ("minute", 30),
    ("hour", 1),
    ("hour", 2),
    ("hour", 3),
    ("hour", 6),
    ("hour", 12),
    ("day", 1),
    ("day", 2),
    ("day", 7),
    ("day", 14),
    ("day", 30),
]
_SECONDS: dict[Unit, int] = {"minute": 60, "hour": 3600, "day": 86400}
#: Where MongoDB's ``$dateTrunc`` starts counting ``binSize`` bins for these units.
REFERENCE = datetime(2000, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Window:
    start: datetime
    end: datetime
    unit: Unit
    bin_size: int

    @property
    def step(self) -> timedelta:
        return timedelta(seconds=_SECONDS[self.unit] * self.bin_size)

    def bucket_of(self, when: datetime) -> datetime:
        """The start of the bucket ``when`` falls in (what :meth:`expression` computes)."""
        steps = (when - REFERENCE) // self.step
        return REFERENCE + steps * self.step

    def expression(self, field: str) -> dict[str, Any]:
        """The bucket of ``field`` as an aggregation expression. SecantusDB (the test
        database) implements ``$dateTrunc`` with ``binSize`` like MongoDB 5.0+, so no
        ``$subtract``/``$mod`` stand-in is needed."""
        return {
            "$dateTrunc": {
                "date": f"${field}",
                "unit": self.unit,
                "binSize": self.bin_size,
                "timezone": "UTC",
            }
        }


def window(start: datetime | None, end: datetime | None, buckets: int, now: datetime) -> Window:
    """``[start, end)`` (defaults: the 30 days up to ``now``) and the smallest round step
    that cuts it into at most ``buckets`` buckets (aligned bins: the first and last may be
    partial, so a span of ``k`` steps touches up to ``k + 1`` of them)."""
    end = end or now
    start = start or end - DEFAULT_WINDOW
    if start >= end:
        raise ValidationFailed("from", "must be before 'to'")
    span = (end - start).total_seconds()
    for unit, size in STEPS:
        if math.ceil(span / (_SECONDS[unit] * size)) + 1 <= buckets:
            return Window(start, end, unit, size)
    days = math.ceil(span / _SECONDS["day"] / (buckets - 1))
    return Window(start, end, "day", max(days, 1))
