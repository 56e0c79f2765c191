"""Who is calling: the verified identity (or none) and their registered user record.

It lives in ``auth/`` rather than beside the FastAPI dependency that builds it
(``api.deps.get_caller``) so that services can take a caller without importing the web layer.
"""

from __future__ import annotations

from typing import Any

from drift_backend.auth.identity import Identity
from drift_backend.errors import Forbidden, Unauthorized


class Caller:
    """The authenticated (or anonymous) caller and their registered user record, if any."""

    def __init__(self, identity: Identity | None, user: dict[str, Any] | None) -> None:
        self.identity = identity
        self.user = user

    @property
    def user_id(self) -> str | None:
        return str(self.user["_id"]) if self.user else None

    @property
    def is_admin(self) -> bool:
        return self.identity is not None and self.identity.is_admin

    def registered(self) -> dict[str, Any]:
        if self.identity is None:
            raise Unauthorized("authentication required", error="invalid_request")
        if self.user is None:
            raise Forbidden("register first: POST /api/v1/user")
        return self.user
