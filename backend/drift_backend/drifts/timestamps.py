"""Times a client reports for its runs: a spool replayed after an outage keeps the time a run
really ran, within bounds the server's clock sets."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from drift_backend.errors import ValidationFailed
from drift_backend.schemas import utcnow

#: Client and server clocks may disagree by this much: a time up to this far in the future is
#: stored as "now", a finish up to this far before its start as the start.
CLOCK_SKEW = timedelta(minutes=5)


def reported_time(
    field: str, value: datetime, max_backdate_days: float, *, not_before: datetime | None = None
) -> datetime:
    """``value`` in UTC at BSON's millisecond precision, or a 422 on ``field``."""
    now = utcnow()
    when = value.astimezone(UTC)
    when = when.replace(microsecond=when.microsecond // 1000 * 1000)
    if when > now + CLOCK_SKEW:
        minutes = CLOCK_SKEW.total_seconds() / 60
        raise ValidationFailed(field, f"is in the future (over {minutes:g} minutes ahead)")
    if when < now - timedelta(days=max_backdate_days):
        raise ValidationFailed(
            field, f"is more than {max_backdate_days:g} days old (DRIFT_MAX_BACKDATE_DAYS)"
        )
    when = min(when, now)
    if not_before is not None:
        # A run created live (server clock) and finished from a spool (client clock) may
        # look finished a little before it started: the same skew is tolerated.
        if when < not_before - CLOCK_SKEW:
            raise ValidationFailed(field, "is before the run's created_at")
        when = max(when, not_before)
    return when
