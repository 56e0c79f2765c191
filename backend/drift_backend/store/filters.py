"""Client search filters, checked against an allow-list before they reach MongoDB.

Search bodies look like MongoDB filters (drift-watch clients send them that way) but are
never passed on as given: only known fields and the operators below are accepted, values are
typed per field, and depth and size are bounded. Anything else is a 422 naming the key.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from drift_backend.errors import ValidationFailed

COMPARISON_OPERATORS = frozenset({"$eq", "$ne", "$gt", "$gte", "$lt", "$lte"})
LIST_OPERATORS = frozenset({"$in", "$nin", "$all"})
LOGICAL_OPERATORS = frozenset({"$and", "$or"})
ALLOWED_OPERATORS = COMPARISON_OPERATORS | LIST_OPERATORS | LOGICAL_OPERATORS | {"$exists"}

_SAFE_SUBPATH = re.compile(r"^[A-Za-z0-9_\-]+(\.[A-Za-z0-9_\-]+)*$")
Scalar = str | int | float | bool | None | datetime


def _any_scalar(value: Any) -> Scalar:
    if isinstance(value, int) and not -(2**63) <= value < 2**63:
        raise ValueError("integers must fit in 64 bits")
    if value is None or isinstance(value, str | int | float | bool):
        return value
    raise ValueError("must be a string, number, boolean or null")


def _string(value: Any) -> Scalar:
    if isinstance(value, str):
        return value
    raise ValueError("must be a string")


def _boolean(value: Any) -> Scalar:
    if isinstance(value, bool):
        return value
    raise ValueError("must be true or false")


def _timestamp(value: Any) -> Scalar:
    if not isinstance(value, str):
        raise ValueError("must be an ISO 8601 timestamp string")
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError("must be an ISO 8601 timestamp string") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@dataclass(frozen=True)
class Field:
    """A searchable field: where it lives in the document and how its values are typed."""

    path: str
    coerce: Callable[[Any], Scalar]


STRING = _string
BOOLEAN = _boolean
TIMESTAMP = _timestamp
ANY = _any_scalar


@dataclass(frozen=True)
class FilterSchema:
    fields: Mapping[str, Field]
    #: Prefixes under which any safe sub-path is searchable with scalar values.
    open_prefixes: tuple[str, ...] = ()

    def resolve(self, key: str) -> Field | None:
        if key in self.fields:
            return self.fields[key]
        for prefix in self.open_prefixes:
            if key.startswith(prefix + ".") and _SAFE_SUBPATH.match(key):
                return Field(path=key, coerce=_any_scalar)
        return None


class _Translator:
    def __init__(self, schema: FilterSchema, max_depth: int, max_nodes: int) -> None:
        self.schema = schema
        self.max_depth = max_depth
        self.max_nodes = max_nodes
        self.nodes = 0

    def _count(self, where: str) -> None:
        self.nodes += 1
        if self.nodes > self.max_nodes:
            raise ValidationFailed(where, f"filter has more than {self.max_nodes} conditions")

    def document(self, value: Any, where: str, depth: int) -> dict[str, Any]:
        if depth > self.max_depth:
            raise ValidationFailed(where, f"filter is nested deeper than {self.max_depth} levels")
        if not isinstance(value, dict):
            raise ValidationFailed(where, "must be a JSON object")
        out: dict[str, Any] = {}
        for key, item in value.items():
            self._count(key)
            if key in LOGICAL_OPERATORS:
                if not isinstance(item, list) or not item:
                    raise ValidationFailed(key, "must be a non-empty list of filters")
                out[key] = [self.document(sub, key, depth + 1) for sub in item]
            elif key.startswith("$"):
                raise ValidationFailed(key, "operator is not allowed")
            else:
                field = self.schema.resolve(key)
                if field is None:
                    raise ValidationFailed(key, "unknown or unsearchable field")
                out[field.path] = self.condition(field, item, key)
        return out

    def condition(self, field: Field, value: Any, key: str) -> Any:
        if isinstance(value, dict):
            if not value:
                raise ValidationFailed(key, "empty condition")
            out: dict[str, Any] = {}
            for op, operand in value.items():
                self._count(key)
                where = f"{key}.{op}"
                if op not in ALLOWED_OPERATORS or op in LOGICAL_OPERATORS:
                    reason = (
                        "operator is not allowed"
                        if op.startswith("$")
                        else ("sub-document matches are not supported; use a dotted path")
                    )
                    raise ValidationFailed(where, reason)
                if op == "$exists":
                    if not isinstance(operand, bool):
                        raise ValidationFailed(where, "must be true or false")
                    out[op] = operand
                elif op in LIST_OPERATORS:
                    if not isinstance(operand, list):
                        raise ValidationFailed(where, "must be a list")
                    out[op] = [self.scalar(field, element, where) for element in operand]
                else:
                    out[op] = self.scalar(field, operand, where)
            return out
        if isinstance(value, list):
            return [self.scalar(field, element, key) for element in value]
        return self.scalar(field, value, key)

    @staticmethod
    def scalar(field: Field, value: Any, where: str) -> Scalar:
        try:
            return field.coerce(value)
        except ValueError as error:
            raise ValidationFailed(where, str(error)) from None


def translate(
    value: Any, schema: FilterSchema, *, max_depth: int, max_nodes: int
) -> dict[str, Any]:
    """Check a client filter against ``schema`` and return the equivalent MongoDB filter."""
    if value is None:
        return {}
    return _Translator(schema, max_depth, max_nodes).document(value, "body", 1)
