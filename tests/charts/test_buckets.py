"""The bucket step: the smallest round one that keeps a window within the bucket limit."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest
from drift_backend.charts.buckets import DEFAULT_WINDOW, STEPS, Window, window
from drift_backend.errors import ValidationFailed

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def _touched(w: Window) -> int:
    """Aligned buckets ``[start, end)`` touches."""
    return (w.bucket_of(w.end - timedelta(microseconds=1)) - w.bucket_of(w.start)) // w.step + 1


@pytest.mark.parametrize(
    ("span", "buckets", "unit", "size"),
    [
        (timedelta(hours=1), 200, "minute", 1),
        (timedelta(days=1), 25, "hour", 1),
        (timedelta(days=1), 24, "hour", 2),
        (timedelta(days=30), 200, "hour", 6),
        (timedelta(days=30), 10, "day", 7),
        (timedelta(days=365), 1000, "hour", 12),
        (timedelta(days=800), 1000, "day", 1),
        (timedelta(days=3650), 2, "day", 3650),
    ],
)
def test_smallest_round_step_within_the_limit(
    span: timedelta, buckets: int, unit: str, size: int
) -> None:
    w = window(NOW - span, NOW, buckets, NOW)
    assert (w.unit, w.bin_size) == (unit, size)
    assert _touched(w) <= buckets


@pytest.mark.parametrize("buckets", [2, 3, 7, 50, 200, 999, 1000])
@pytest.mark.parametrize("days", [0.01, 0.5, 3, 30, 400, 5000])
def test_never_more_buckets_than_asked(buckets: int, days: float) -> None:
    # Starting off a bucket boundary: the first and last buckets are partial.
    start = datetime(2026, 1, 1, 0, 7, 13, tzinfo=UTC)
    w = window(start, start + timedelta(days=days), buckets, NOW)
    assert _touched(w) <= buckets
    span = (w.end - w.start).total_seconds()
    for unit, size in STEPS:
        step = Window(w.start, w.end, unit, size).step.total_seconds()
        if step < w.step.total_seconds():  # a smaller round step would not have fitted
            assert math.ceil(span / step) + 1 > buckets


def test_default_window_is_the_last_30_days() -> None:
    w = window(None, None, 200, NOW)
    assert (w.start, w.end) == (NOW - DEFAULT_WINDOW, NOW)


def test_start_after_end_is_refused() -> None:
    with pytest.raises(ValidationFailed):
        window(NOW, NOW, 200, NOW)
