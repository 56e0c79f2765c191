"""Evaluating alert rules: a finished run (the ``alerts.evaluate`` job, queued by
``alerts/trigger.py``) and the passing of time (the worker's tick, :func:`tick`).

Both read a group, let the pure state machine (``alerts/state.py``) decide, and write the
decision with its notifications in one compare-and-set update of the group document (its
``outbox``); then hand the outbox to ``notify`` (queued once per dedup key) and clear it.
A worker that dies anywhere in between leaves either no decision (the job is retried, or the
tick claims the group again once its claim lapses) or a decision with its outbox, which the
next look at the group hands over. Several workers deciding at once: one write wins, the
others read again and decide on the new state.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

from drift_backend.alerts import repository
from drift_backend.alerts.conditions import PERFORMANCE_ORIGIN, Decided, in_scope, observe
from drift_backend.alerts.groups import from_doc, group_id, to_fields
from drift_backend.alerts.schemas import DRIFT_CONDITIONS
from drift_backend.alerts.service import new_group_doc, silence_matches
from drift_backend.alerts.state import Mute, Notice, Observation, Timing, step
from drift_backend.alerts.trigger import EVALUATE_KIND
from drift_backend.baselines.service import resolve_baseline
from drift_backend.checks import service as checks
from drift_backend.drifts import service as drifts
from drift_backend.errors import NotFound, ValidationFailed
from drift_backend.experiments import service as experiments
from drift_backend.jobs.handlers import JobKind, WorkerContext
from drift_backend.jobs.queue import Claim
from drift_backend.notify import service as notify
from drift_backend.notify.message import AlertMessage, FeatureAlert
from drift_backend.performance import service as performance
from drift_backend.schemas import utcnow
from drift_backend.store.cancellation import raise_if_cancelled
from drift_backend.store.database import Database, Document

log = logging.getLogger(__name__)
#: Decisions tried on one group before giving up this attempt (the job is retried).
MAX_TRIES = 8
#: A decision's outbox not handed over within this long is handed over by the tick.
OUTBOX_GRACE_SECONDS = 30.0
#: How long a tick's claim on a group keeps other workers off it.
CLAIM_SECONDS = 60.0
#: Groups one tick looks at, at most (the next tick goes on).
TICK_BATCH = 200
_REPORT_CONDITIONS = frozenset({"dataset_drift", "feature_drift", "violations"})

__all__ = ["EVALUATE_JOB", "EVALUATE_KIND", "evaluate_run", "outbox_entry", "tick"]


def timing(rule: Mapping[str, Any]) -> Timing:
    condition = rule["condition"]
    return Timing(
        for_runs=int(rule["for_runs"]),
        keep_firing_for=float(rule["keep_firing_for"]),
        group_wait=float(rule["group_wait"]),
        group_interval=float(rule["group_interval"]),
        repeat_interval=float(rule["repeat_interval"]),
        send_resolved=bool(rule["send_resolved"]),
        no_run_within=(
            float(condition["within_seconds"]) if condition["type"] == "no_run" else None
        ),
    )


@dataclass
class _Lookups:
    """What one evaluation reads once for all its groups: the experiment, its silences,
    whether a model has a baseline."""

    db: Database
    experiment_id: str
    experiment: Document | None = None
    silences: list[Document] | None = None
    baselines: dict[str, bool] = field(default_factory=dict)

    async def get_experiment(self) -> Document | None:
        if self.experiment is None:
            self.experiment = await experiments.find(self.db, self.experiment_id)
        return self.experiment

    async def mute(self, rule: Document, model: str, now: datetime) -> Mute | None:
        if self.silences is None:
            self.silences = await repository.active_silences(self.db, self.experiment_id, now)
        ends = [
            s["ends_at"]
            for s in self.silences
            if s["ends_at"] > now and silence_matches(s, rule["_id"], model)
        ]
        if ends:
            return Mute("silenced", max(ends))
        if rule["condition"]["type"] in DRIFT_CONDITIONS and not await self.has_baseline(model):
            return Mute("inhibited")
        return None

    async def has_baseline(self, model: str) -> bool:
        """Whether a check of ``model`` would find a baseline (as checks choose one)."""
        if model not in self.baselines:
            experiment = await self.get_experiment()
            found = experiment is not None
            if found:
                assert experiment is not None
                try:
                    await resolve_baseline(self.db, experiment, None, model, {"_id": 1})
                except (ValidationFailed, NotFound):
                    found = False
            self.baselines[model] = found
        return self.baselines[model]


def _message(
    notice: Notice, rule: Document, model: str, experiment: Document | None
) -> AlertMessage:
    detail = notice.detail
    what = detail.summary if detail else rule["condition"]["type"]
    prefix = "RESOLVED" if notice.status == "resolved" else "FIRING"
    targets = rule.get("targets")
    return AlertMessage(
        dedup_key=notice.dedup_key(rule["_id"], model),
        experiment_id=rule["experiment_id"],
        experiment_name=experiment["name"] if experiment else "",
        rule_id=rule["_id"],
        rule_name=rule["name"],
        model=model,
        status=notice.status,
        starts_at=notice.starts_at,
        ends_at=notice.ends_at,
        summary=f"[{prefix}] {rule['name']} (model {model}): {what}",
        run_id=notice.run_id,
        features=detail.features if detail else (),
        exception=detail.exception if detail else None,
        values=dict(detail.values) if detail else {},
        target_ids=tuple(targets) if targets is not None else None,
    )


def outbox_entry(
    notice: Notice, rule: Document, model: str, experiment: Document | None
) -> Document:
    """A decided notification as the group's outbox keeps it until ``notify`` has it."""
    message = _message(notice, rule, model, experiment)
    out = asdict(message)
    out["features"] = [dict(f) for f in out["features"]]
    out["target_ids"] = list(message.target_ids) if message.target_ids is not None else None
    return out


def _loaded(doc: Document) -> AlertMessage:
    targets = doc.get("target_ids")
    return AlertMessage(
        **{
            **doc,
            "features": tuple(FeatureAlert(**f) for f in doc.get("features") or []),
            "target_ids": tuple(targets) if targets is not None else None,
        }
    )


async def _hand_over(
    db: Database, gid: str, version: int, outbox: list[Document], due_at: datetime | None
) -> None:
    for message in outbox:
        await notify.enqueue(db, _loaded(message))
    if outbox:
        await repository.clear_outbox(db, gid, version, due_at)


def _order(run: Mapping[str, Any]) -> list[Any]:
    return [run["created_at"], run["_id"]]


async def _decide(
    db: Database,
    rule: Document,
    model: str,
    doc: Document | None,
    observation: Observation | None,
    lookups: _Lookups,
    last_run: list[Any] | None,
) -> bool:
    """One decision on ``doc`` (None: the group is new); False when another was written first."""
    now = utcnow()
    group = from_doc(doc)
    mute = await lookups.mute(rule, model, now)
    new, notices = step(group, observation, now, timing(rule), mute)
    experiment = await lookups.get_experiment() if notices else None
    outbox = list(doc["outbox"]) if doc else []
    outbox += [outbox_entry(n, rule, model, experiment) for n in notices]
    fields = to_fields(new)
    fields["outbox"] = outbox
    if last_run is not None:
        fields["last_run"] = last_run
    if outbox:  # handed over below; if this worker dies first, the tick does it
        grace = now + timedelta(seconds=OUTBOX_GRACE_SECONDS)
        fields["due_at"] = min(new.due_at, grace) if new.due_at else grace
    gid = group_id(rule["_id"], model)
    if doc is None:
        version = 1
        written = await repository.insert_group(db, {**new_group_doc(rule, model, new), **fields})
    else:
        version = doc["version"] + 1
        written = await repository.save_group(db, gid, doc["version"], fields)
    if written:
        await _hand_over(db, gid, version, outbox, new.due_at)
    return written


async def _apply(
    db: Database, rule: Document, run: Document, observation: Observation, lookups: _Lookups
) -> None:
    model = run["model"]
    order = _order(run)
    for _ in range(MAX_TRIES):
        doc = await repository.get_group(db, group_id(rule["_id"], model))
        if doc is not None and doc.get("last_run") is not None and doc["last_run"] >= order:
            # This run (an earlier attempt got this far) or a newer one was seen already;
            # hand over what an attempt that died may have left.
            await _hand_over(db, doc["_id"], doc["version"], doc.get("outbox") or [], doc["due_at"])
            return
        if await _decide(db, rule, model, doc, observation, lookups, order):
            return
    raise RuntimeError(f"alert group {rule['_id']}:{model} kept changing; trying again later")


async def evaluate_run(db: Database, run_id: str) -> None:
    """Every rule of the run's experiment on the run (finished), one group each."""
    run = await drifts.find(db, run_id)
    if run is None or run["job_status"] not in ("Completed", "Failed"):
        return
    rules = [r for r in await repository.list_rules(db, run["experiment_id"]) if in_scope(r, run)]
    needs_report = any(r["condition"]["type"] in _REPORT_CONDITIONS for r in rules)
    report = await checks.get_report(db, run_id) if needs_report else None
    lookups = _Lookups(db, run["experiment_id"])
    decided: dict[str | None, Decided] = {}
    for rule in rules:
        condition = rule["condition"]
        if condition["type"] == "performance_degraded" and run.get("origin") == PERFORMANCE_ORIGIN:
            # what the model's newest decided window says now.
            metric = condition.get("metric")
            if metric not in decided:
                decided[metric] = await performance.latest_decision(
                    db, run["experiment_id"], run["model"], metric
                )
        observation = observe(rule, run, report, decided.get(condition.get("metric")))
        if observation is not None:
            await _apply(db, rule, run, observation, lookups)


async def _tick_group(db: Database, doc: Document) -> None:
    rule = await repository.find_rule(db, doc["rule_id"])
    if rule is None:  # the rule was deleted after this group was written
        await repository.delete_group(db, doc["_id"])
        return
    lookups = _Lookups(db, doc["experiment_id"])
    # Lost to a decision written meanwhile: that one set its own due time.
    await _decide(db, rule, doc["model"], doc, None, lookups, None)


async def tick(db: Database) -> int:
    """Look at the groups whose time has come (group_wait, repeat_interval, keep_firing_for
    ending, a dead man's switch, a silence ending, an outbox left behind); how many."""
    handled = 0
    while handled < TICK_BATCH:
        now = utcnow()
        doc = await repository.claim_due(db, now, now + timedelta(seconds=CLAIM_SECONDS))
        if doc is None:
            break
        handled += 1
        try:
            await _tick_group(db, doc)
        except Exception:  # its claim lapses and it comes due again
            raise_if_cancelled()
            log.warning("alert group %s: tick failed", doc["_id"], exc_info=True)
    return handled


async def _handle(claim: Claim, ctx: WorkerContext) -> None:
    await evaluate_run(ctx.db, claim.job["drift_id"])


async def _give_up(job: dict[str, Any], ctx: WorkerContext) -> None:
    log.error("alert evaluation of run %s failed for good: %s", job["drift_id"], job.get("error"))


EVALUATE_JOB = JobKind(handle=_handle, give_up=_give_up)
