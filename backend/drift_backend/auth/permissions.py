"""Experiment permissions: entries ``{entity, level}`` with Read < Edit < Manage, plus ``public``."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from enum import StrEnum
from typing import Any

from drift_backend.auth.identity import Identity


class Level(StrEnum):
    Read = "Read"
    Edit = "Edit"
    Manage = "Manage"

    @property
    def rank(self) -> int:
        return _RANK[self]


_RANK = {Level.Read: 1, Level.Edit: 2, Level.Manage: 3}


def caller_entities(identity: Identity | None, user_id: str | None) -> list[str]:
    """The permission entities a caller matches: their user id and their entitlements."""
    if identity is None:
        return []
    entities = list(identity.entitlements)
    if user_id:
        entities.append(user_id)
    return entities


def level_of(
    experiment: Mapping[str, Any], identity: Identity | None, user_id: str | None
) -> Level | None:
    """The caller's effective level on an experiment; None when they may not even read it."""
    if identity is not None and identity.is_admin:
        return Level.Manage
    entities = set(caller_entities(identity, user_id))
    best: Level | None = Level.Read if experiment.get("public") else None
    for entry in experiment.get("permissions", []):
        if entry.get("entity") in entities:
            level = Level(entry["level"])
            if best is None or level.rank > best.rank:
                best = level
    return best


def has_manager(permissions: Iterable[Mapping[str, Any]]) -> bool:
    return any(entry.get("level") == Level.Manage for entry in permissions)


def visibility_filter(identity: Identity | None, user_id: str | None) -> dict[str, Any]:
    """A MongoDB filter matching exactly the experiments the caller may read."""
    if identity is not None and identity.is_admin:
        return {}
    entities = caller_entities(identity, user_id)
    if not entities:
        return {"public": True}
    return {"$or": [{"public": True}, {"permissions.entity": {"$in": entities}}]}
