"""A group's state (``state.Group``) to and from its stored document, and its id."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from drift_backend.alerts.state import Detail, Group, State
from drift_backend.notify.message import FeatureAlert
from drift_backend.store.database import Document

#: The fields of ``state.Group`` as stored (the rest of a group document is its identity,
#: ``version``, ``outbox`` and the ordering of the runs it has seen).
_FIELDS = tuple(Group.__dataclass_fields__)


def group_id(rule_id: str, model: str) -> str:
    return f"{rule_id}:{model}"


def _detail_out(detail: Detail | None) -> dict[str, Any] | None:
    if detail is None:
        return None
    out = asdict(detail)
    out["features"] = [asdict(f) for f in detail.features]
    out["values"] = dict(detail.values)
    return out


def _detail_in(doc: dict[str, Any] | None) -> Detail | None:
    if doc is None:
        return None
    return Detail(
        summary=doc["summary"],
        run_id=doc.get("run_id"),
        features=tuple(FeatureAlert(**f) for f in doc.get("features") or []),
        values=dict(doc.get("values") or {}),
        exception=doc.get("exception"),
    )


def to_fields(group: Group) -> Document:
    out: Document = {name: getattr(group, name) for name in _FIELDS}
    out["state"] = str(group.state)
    out["detail"] = _detail_out(group.detail)
    return out


def from_doc(doc: Document | None) -> Group:
    if doc is None:
        return Group()
    values = {name: doc[name] for name in _FIELDS if name in doc}
    values["state"] = State(doc.get("state", "inactive"))
    values["detail"] = _detail_in(doc.get("detail"))
    return Group(**values)
