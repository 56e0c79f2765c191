"""Shared API schema pieces: timestamps with offsets, base models."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, PlainSerializer


def _iso(value: datetime) -> str:
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat()


#: A UTC timestamp written as ISO 8601 with an explicit offset.
Timestamp = Annotated[datetime, PlainSerializer(_iso, return_type=str)]


class RequestModel(BaseModel):
    """Request bodies reject unknown keys so typos fail loudly."""

    model_config = ConfigDict(extra="forbid")


class LenientRequestModel(BaseModel):
    """For drift-watch bodies whose clients echo server fields back (ignored)."""

    model_config = ConfigDict(extra="ignore")


def utcnow() -> datetime:
    # BSON keeps milliseconds; truncating here makes API echoes equal stored values.
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)
