"""Alert rules and silences (create, read, change, delete), the alerts now not inactive, and
what other domains ask of alerts: ``firing_count`` (metrics), ``delete_for_experiment``."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from pydantic import ValidationError as PydanticValidationError

from drift_backend.alerts import repository
from drift_backend.alerts.groups import from_doc, group_id, to_fields
from drift_backend.alerts.schemas import RuleCreate, RulePatch, SilenceCreate, rule_out
from drift_backend.alerts.state import Group, State
from drift_backend.drifts import service as drifts
from drift_backend.errors import Conflict, NotFound, ValidationFailed, first_problem
from drift_backend.schemas import utcnow
from drift_backend.store.database import Database, Document

#: The most rules one experiment may have.
MAX_RULES = 100
#: The most silences active at once in one experiment.
MAX_SILENCES = 100
#: The furthest ahead a silence may end.
MAX_SILENCE_DAYS = 90
#: What makes a group's state: changing it starts the rule's groups afresh.
_STATEFUL = ("condition", "models", "tags")


def _not_found(rule_id: str) -> NotFound:
    return NotFound(f"alert rule {rule_id} not found in this experiment")


async def _seed_no_run(db: Database, rule: Document, now: datetime) -> None:
    """A dead man's switch watches its models from now: the named ones, or every model the
    experiment has run so far (models seen later join with their first run)."""
    condition = rule["condition"]
    if condition["type"] != "no_run":
        return
    models = rule["models"] or await drifts.models(db, rule["experiment_id"])
    deadline = now + timedelta(seconds=condition["within_seconds"])
    for model in models:
        group = Group(last_seen=now, due_at=deadline)
        await repository.insert_group(db, new_group_doc(rule, model, group))


def new_group_doc(rule: Document, model: str, group: Group) -> Document:
    return {
        "_id": group_id(rule["_id"], model),
        "experiment_id": rule["experiment_id"],
        "rule_id": rule["_id"],
        "model": model,
        "version": 1,
        "outbox": [],
        "last_run": None,
        **to_fields(group),
    }


async def create_rule(
    db: Database, experiment_id: str, body: RuleCreate, created_by: str | None
) -> Document:
    if await repository.count_rules(db, experiment_id) >= MAX_RULES:
        raise Conflict(f"an experiment may have at most {MAX_RULES} alert rules")
    now = utcnow()
    doc: Document = {
        "_id": str(uuid.uuid4()),
        "experiment_id": experiment_id,
        **body.model_dump(mode="json"),
        "created_at": now,
        "updated_at": now,
        "created_by": created_by,
    }
    await repository.insert_rule(db, doc)
    # Two creations racing past the count: the later one backs out.
    if await repository.count_rules(db, experiment_id) > MAX_RULES:
        await repository.delete_rule(db, experiment_id, doc["_id"])
        raise Conflict(f"an experiment may have at most {MAX_RULES} alert rules")
    await _seed_no_run(db, doc, now)
    return rule_out(doc)


async def list_rules(db: Database, experiment_id: str) -> list[Document]:
    return [rule_out(doc) for doc in await repository.list_rules(db, experiment_id)]


async def get_rule(db: Database, experiment_id: str, rule_id: str) -> Document:
    doc = await repository.get_rule(db, experiment_id, rule_id)
    if doc is None:
        raise _not_found(rule_id)
    return rule_out(doc)


async def replace_rule(
    db: Database, experiment_id: str, rule_id: str, body: RuleCreate
) -> Document:
    return await _change(db, experiment_id, rule_id, body.model_dump(mode="json"))


async def patch_rule(db: Database, experiment_id: str, rule_id: str, body: RulePatch) -> Document:
    current = await repository.get_rule(db, experiment_id, rule_id)
    if current is None:
        raise _not_found(rule_id)
    merged = {
        **{k: v for k, v in current.items() if k in RuleCreate.model_fields},
        **body.model_dump(mode="json", exclude_unset=True),
    }
    try:  # the merged rule must be a valid whole (no_run with for_runs, ...)
        whole = RuleCreate.model_validate(merged)
    except PydanticValidationError as error:
        raise ValidationFailed(*first_problem(error)) from None
    return await _change(db, experiment_id, rule_id, whole.model_dump(mode="json"))


async def _change(db: Database, experiment_id: str, rule_id: str, fields: Document) -> Document:
    before = await repository.get_rule(db, experiment_id, rule_id)
    if before is None:
        raise _not_found(rule_id)
    now = utcnow()
    after = await repository.update_rule(db, experiment_id, rule_id, {**fields, "updated_at": now})
    if after is None:
        raise _not_found(rule_id)
    if any(before.get(key) != after.get(key) for key in _STATEFUL):
        # What the groups' state says no longer describes the rule: start afresh.
        await repository.delete_groups_of_rule(db, rule_id)
        await _seed_no_run(db, after, now)
    else:  # the same state under new timing: due times are worked out again
        await repository.wake_groups_of_rule(db, rule_id, now)
    return rule_out(after)


async def delete_rule(db: Database, experiment_id: str, rule_id: str) -> None:
    if not await repository.delete_rule(db, experiment_id, rule_id):
        raise _not_found(rule_id)
    await repository.delete_groups_of_rule(db, rule_id)


# --- silences ---------------------------------------------------------------------------------


def silence_out(doc: Document, now: datetime) -> Document:
    return {
        "id": doc["_id"],
        "experiment_id": doc["experiment_id"],
        "rule_id": doc.get("rule_id"),
        "model": doc.get("model"),
        "starts_at": doc["starts_at"],
        "ends_at": doc["ends_at"],
        "comment": doc.get("comment"),
        "state": "active" if doc["ends_at"] > now else "expired",
        "created_by": doc.get("created_by"),
    }


async def create_silence(
    db: Database, experiment_id: str, body: SilenceCreate, created_by: str | None
) -> Document:
    now = utcnow()
    if body.ends_at <= now:
        raise ValidationFailed("ends_at", "must be in the future")
    if body.ends_at > now + timedelta(days=MAX_SILENCE_DAYS):
        raise ValidationFailed("ends_at", f"at most {MAX_SILENCE_DAYS} days ahead")
    if (
        body.rule_id is not None
        and await repository.get_rule(db, experiment_id, body.rule_id) is None
    ):
        raise ValidationFailed("rule_id", "no such alert rule in this experiment")
    if await repository.count_active_silences(db, experiment_id, now) >= MAX_SILENCES:
        raise Conflict(f"an experiment may have at most {MAX_SILENCES} active silences")
    doc: Document = {
        "_id": str(uuid.uuid4()),
        "experiment_id": experiment_id,
        "rule_id": body.rule_id,
        "model": body.model,
        "starts_at": now,
        "ends_at": body.ends_at,
        "comment": body.comment,
        "created_by": created_by,
    }
    await repository.insert_silence(db, doc)
    return silence_out(doc, now)


async def list_silences(db: Database, experiment_id: str, state: str | None) -> list[Document]:
    now = utcnow()
    query: Document = {}
    if state == "active":
        query = {"ends_at": {"$gt": now}}
    elif state == "expired":
        query = {"ends_at": {"$lte": now}}
    return [
        silence_out(doc, now) for doc in await repository.list_silences(db, experiment_id, query)
    ]


async def expire_silence(db: Database, experiment_id: str, silence_id: str) -> None:
    """End a silence now (it stays listed, expired); what it held back is looked at again."""
    if await repository.get_silence(db, experiment_id, silence_id) is None:
        raise NotFound(f"silence {silence_id} not found in this experiment")
    now = utcnow()
    await repository.expire_silence(db, experiment_id, silence_id, now)
    await repository.wake_silenced(db, experiment_id, now)


def silence_matches(silence: Document, rule_id: str, model: str) -> bool:
    return silence.get("rule_id") in (None, rule_id) and silence.get("model") in (None, model)


# --- alerts -----------------------------------------------------------------------------------

_SHOWN = [str(State.pending), str(State.firing), str(State.resolved)]


async def alerts(db: Database, experiment_id: str, state: str | None = None) -> list[Document]:
    """The experiment's (rule, model) groups that are not inactive (or only ``state``)."""
    docs = await repository.groups_of(db, experiment_id, [state] if state else _SHOWN)
    rules = {rule["_id"]: rule for rule in await repository.list_rules(db, experiment_id)}
    out: list[Document] = []
    for doc in docs:
        rule = rules.get(doc["rule_id"])
        if rule is None:  # its rule was just deleted
            continue
        group = from_doc(doc)
        detail = group.detail
        out.append(
            {
                "rule_id": rule["_id"],
                "rule_name": rule["name"],
                "condition": rule["condition"]["type"],
                "model": doc["model"],
                "state": str(group.state),
                "streak": group.streak,
                "active_at": group.active_at if group.state is not State.pending else None,
                "resolved_at": group.resolved_at,
                "last_notified_at": group.last_sent_at,
                "muted": group.muted,
                "summary": detail.summary if detail else None,
                "run_id": detail.run_id if detail else None,
                "features": [{"name": f.name, "kind": f.kind} for f in detail.features]
                if detail
                else [],
                "values": dict(detail.values) if detail else {},
            }
        )
    return out


async def firing_count(db: Database) -> dict[str, int]:
    """Firing (rule, model) groups by experiment id (the metrics' "alerts firing" gauge)."""
    return await repository.firing_by_experiment(db)


async def delete_for_experiment(db: Database, experiment_id: str) -> None:
    """The experiment's rules, their groups and its silences (the experiment is deleted)."""
    await repository.delete_for_experiment(db, experiment_id)
