"""Who is calling: the verified claims of a bearer token, reduced to what we decide on."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Identity:
    subject: str
    issuer: str
    email: str | None = None
    email_verified: bool = False
    entitlements: tuple[str, ...] = ()
    is_admin: bool = False
    claims: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)


def claim_at(claims: Mapping[str, Any], path: str) -> Any:
    """Read a claim by path: ``realm_access/roles`` or ``realm_access.roles``.

    A top-level claim whose own name contains the separator wins, so a dotted claim name
    such as ``eduperson.entitlement`` still resolves.
    """
    if path in claims:
        return claims[path]
    node: Any = claims
    for part in path.replace(".", "/").split("/"):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


def entitlements_from(claims: Mapping[str, Any], path: str) -> tuple[str, ...]:
    value = claim_at(claims, path)
    if isinstance(value, str):
        return tuple(part for part in value.split() if part)
    if isinstance(value, Sequence):
        return tuple(str(item) for item in value if isinstance(item, str | int))
    return ()
