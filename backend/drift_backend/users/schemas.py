from __future__ import annotations

from pydantic import BaseModel

from drift_backend.schemas import Timestamp


class User(BaseModel):
    id: str
    created_at: Timestamp
    updated_at: Timestamp
    subject: str
    issuer: str
    email: str | None


class Entitlements(BaseModel):
    items: list[str]
