"""Alert rules (Manage to change, Read to see), silences (Edit to make or expire, Read to
see) and the experiment's alerts now (Read)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Response, status

from drift_backend.alerts import service
from drift_backend.alerts.schemas import Alert, Rule, RuleCreate, RulePatch, Silence, SilenceCreate
from drift_backend.api.deps import CallerDep, DbDep
from drift_backend.api.responses import errors
from drift_backend.auth.permissions import Level
from drift_backend.experiments.service import get_for

router = APIRouter(tags=["alerts"])
RULES = "/experiment/{experiment_id}/alert-rules"
RULE = RULES + "/{rule_id}"
SILENCES = "/experiment/{experiment_id}/silences"


@router.get(RULES, response_model=list[Rule], responses=errors(404))
async def list_rules(experiment_id: str, caller: CallerDep, db: DbDep) -> Any:
    await get_for(db, experiment_id, caller, Level.Read)
    return await service.list_rules(db, experiment_id)


@router.post(
    RULES, response_model=Rule, status_code=status.HTTP_201_CREATED, responses=errors(404, 409)
)
async def create_rule(experiment_id: str, body: RuleCreate, caller: CallerDep, db: DbDep) -> Any:
    """A rule: a condition on finished runs of some models, with Alertmanager-like timing.
    At most 100 per experiment (409 beyond)."""
    await get_for(db, experiment_id, caller, Level.Manage)
    return await service.create_rule(db, experiment_id, body, caller.user_id)


@router.get(RULE, response_model=Rule, responses=errors(404))
async def get_rule(experiment_id: str, rule_id: str, caller: CallerDep, db: DbDep) -> Any:
    await get_for(db, experiment_id, caller, Level.Read)
    return await service.get_rule(db, experiment_id, rule_id)


@router.put(RULE, response_model=Rule, responses=errors(404))
async def replace_rule(
    experiment_id: str, rule_id: str, body: RuleCreate, caller: CallerDep, db: DbDep
) -> Any:
    """Replace the rule whole. A changed condition, models or tags starts its state afresh."""
    await get_for(db, experiment_id, caller, Level.Manage)
    return await service.replace_rule(db, experiment_id, rule_id, body)


@router.patch(RULE, response_model=Rule, responses=errors(404))
async def patch_rule(
    experiment_id: str, rule_id: str, body: RulePatch, caller: CallerDep, db: DbDep
) -> Any:
    """Change only the fields sent (the result must be a valid rule)."""
    await get_for(db, experiment_id, caller, Level.Manage)
    return await service.patch_rule(db, experiment_id, rule_id, body)


@router.delete(RULE, status_code=status.HTTP_204_NO_CONTENT, responses=errors(404))
async def delete_rule(experiment_id: str, rule_id: str, caller: CallerDep, db: DbDep) -> Response:
    await get_for(db, experiment_id, caller, Level.Manage)
    await service.delete_rule(db, experiment_id, rule_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(SILENCES, response_model=list[Silence], responses=errors(404))
async def list_silences(
    experiment_id: str,
    caller: CallerDep,
    db: DbDep,
    state: Annotated[Literal["active", "expired"] | None, Query()] = None,
) -> Any:
    await get_for(db, experiment_id, caller, Level.Read)
    return await service.list_silences(db, experiment_id, state)


@router.post(
    SILENCES,
    response_model=Silence,
    status_code=status.HTTP_201_CREATED,
    responses=errors(404, 409),
)
async def create_silence(
    experiment_id: str, body: SilenceCreate, caller: CallerDep, db: DbDep
) -> Any:
    """Hold back the notifications of the groups matching ``rule_id`` and/or ``model`` until
    ``ends_at`` (at most 90 days ahead; at most 100 active per experiment)."""
    await get_for(db, experiment_id, caller, Level.Edit)
    return await service.create_silence(db, experiment_id, body, caller.user_id)


@router.delete(
    SILENCES + "/{silence_id}", status_code=status.HTTP_204_NO_CONTENT, responses=errors(404)
)
async def expire_silence(
    experiment_id: str, silence_id: str, caller: CallerDep, db: DbDep
) -> Response:
    """Expire the silence now (it stays listed as expired)."""
    await get_for(db, experiment_id, caller, Level.Edit)
    await service.expire_silence(db, experiment_id, silence_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/experiment/{experiment_id}/alerts", response_model=list[Alert], responses=errors(404))
async def list_alerts(
    experiment_id: str,
    caller: CallerDep,
    db: DbDep,
    state: Annotated[Literal["pending", "firing", "resolved"] | None, Query()] = None,
) -> Any:
    """The (rule, model) groups that are pending, firing or just resolved."""
    await get_for(db, experiment_id, caller, Level.Read)
    return await service.alerts(db, experiment_id, state)
