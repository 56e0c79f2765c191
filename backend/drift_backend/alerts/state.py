"""The state machine of one alert group (one rule, one model), written once as a pure function.

``step(group, observation, now, timing, mute) -> (group, notices)``: what the group becomes
after a run was observed (``observation``) or time passed (``None``: the worker's tick), and
which notifications are due now. No I/O: the caller reads the group, the silences and the
baseline, and writes the result (``alerts/evaluation.py``).

States: ``inactive`` -> ``pending`` (the condition held for fewer than ``for_runs`` runs in a
row) -> ``firing`` -> ``resolved`` (the condition stopped holding, and ``keep_firing_for`` has
passed since). Timing as Alertmanager does it, for a group of one alert: the first firing
notification waits ``group_wait`` after firing began; every later one waits at least
``group_interval`` after the one before; a group still firing says so again every
``repeat_interval``; a resolved one says so once (``send_resolved``) if its firing was said.
A condition that comes back before its resolution was said continues the same episode: the
receivers never heard it end. ``episode`` and ``sent`` number the notifications, so a decision
evaluated again gives the same dedup key.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Literal

from drift_backend.notify.message import AlertStatus, FeatureAlert

#: How long an inhibited group waits before it looks at its baseline again (at least).
INHIBITED_RECHECK_SECONDS = 30.0


class State(StrEnum):
    inactive = "inactive"
    pending = "pending"
    firing = "firing"
    resolved = "resolved"


@dataclass(frozen=True)
class Timing:
    """A rule's timing (seconds); ``no_run_within`` only for the dead man's switch."""

    for_runs: int = 1
    keep_firing_for: float = 0.0
    group_wait: float = 30.0
    group_interval: float = 300.0
    repeat_interval: float = 4 * 3600.0
    send_resolved: bool = True
    no_run_within: float | None = None


@dataclass(frozen=True)
class Detail:
    """What a notification says about the run that made the condition hold."""

    summary: str
    run_id: str | None = None
    features: tuple[FeatureAlert, ...] = ()
    values: Mapping[str, float] = field(default_factory=dict)
    exception: str | None = None


@dataclass(frozen=True)
class Observation:
    """One evaluated run: whether the rule's condition held on it. ``at``: when it finished
    (the dead man's switch measures from there)."""

    holds: bool
    at: datetime
    run_id: str | None = None
    detail: Detail | None = None


@dataclass(frozen=True)
class Mute:
    """Why the group may not notify now: a silence (until its end) or an inhibition (no
    baseline: looked at again later)."""

    reason: Literal["silenced", "inhibited"]
    until: datetime | None = None


@dataclass(frozen=True)
class Group:
    state: State = State.inactive
    #: Runs in a row on which the condition held (reset by one on which it did not).
    streak: int = 0
    #: Numbers the firing episodes; ``sent`` numbers the notifications within one.
    episode: int = 0
    sent: int = 0
    #: When the current (or last) episode began firing: the notifications' ``starts_at``.
    active_at: datetime | None = None
    #: When the condition stopped holding while ``keep_firing_for`` keeps the group firing.
    keep_firing_since: datetime | None = None
    resolved_at: datetime | None = None
    resolved_by: str | None = None
    #: The episode's firing was notified and its end not yet: a resolution is owed.
    announced: bool = False
    last_sent_at: datetime | None = None
    #: The newest evaluated run's finishing time (the dead man's switch's clock).
    last_seen: datetime | None = None
    detail: Detail | None = None
    muted: str | None = None
    due_at: datetime | None = None


@dataclass(frozen=True)
class Notice:
    """One notification to queue."""

    status: AlertStatus
    episode: int
    n: int
    starts_at: datetime
    ends_at: datetime | None
    detail: Detail | None
    run_id: str | None

    def dedup_key(self, rule_id: str, model: str) -> str:
        return f"{rule_id}:{model}:{self.episode}:{self.n}"


def _seconds(value: float) -> timedelta:
    return timedelta(seconds=value)


def overdue(group: Group, timing: Timing, now: datetime) -> bool:
    """The dead man's switch: no run within ``no_run_within`` of the last one."""
    if timing.no_run_within is None or group.state is State.firing or group.last_seen is None:
        return False
    return now >= group.last_seen + _seconds(timing.no_run_within)


def _no_run_detail(group: Group, timing: Timing, now: datetime) -> Detail:
    assert group.last_seen is not None
    assert timing.no_run_within is not None
    quiet = (now - group.last_seen).total_seconds()
    return Detail(
        summary=f"no run for {quiet:.0f} s (allowed: {timing.no_run_within:g} s)",
        values={"seconds_since_last_run": quiet, "within_seconds": timing.no_run_within},
    )


def _resolve(group: Group, now: datetime, by: str | None, timing: Timing) -> Group:
    return replace(
        group,
        state=State.resolved,
        streak=0,
        keep_firing_since=None,
        resolved_at=now,
        resolved_by=by,
        # Without resolved notifications the episode ends here, said or not.
        announced=group.announced and timing.send_resolved,
    )


def _observe(group: Group, seen: Observation, now: datetime, timing: Timing) -> Group:
    g = group
    if seen.run_id is not None:
        last = g.last_seen
        g = replace(g, last_seen=seen.at if last is None or seen.at > last else last)
    if seen.holds:
        g = replace(g, detail=seen.detail or g.detail, keep_firing_since=None)
        if g.state is State.firing:
            return g
        streak = g.streak + 1
        if streak < timing.for_runs:
            return replace(g, state=State.pending, streak=streak)
        if g.announced:  # back before its resolution was said: the same episode goes on
            return replace(g, state=State.firing, streak=streak, resolved_at=None)
        return replace(
            g,
            state=State.firing,
            streak=streak,
            episode=g.episode + 1,
            sent=0,
            active_at=now,
            resolved_at=None,
            resolved_by=None,
        )
    g = replace(g, streak=0)
    run_id = seen.run_id
    if g.state is State.pending or g.state is State.resolved:
        return replace(g, state=State.inactive)
    if g.state is State.firing:
        since = g.keep_firing_since or now
        if timing.keep_firing_for > 0 and now - since < _seconds(timing.keep_firing_for):
            return replace(g, keep_firing_since=since, resolved_by=run_id)
        return _resolve(g, now, run_id, timing)
    return g


def _wanted(g: Group, timing: Timing) -> tuple[AlertStatus, datetime] | None:
    """The notification the group owes, and from when."""
    floor = g.last_sent_at + _seconds(timing.group_interval) if g.last_sent_at else None
    if g.state is State.firing:
        assert g.active_at is not None
        if not g.announced:
            due = g.active_at + _seconds(timing.group_wait)
        else:
            assert g.last_sent_at is not None
            due = g.last_sent_at + _seconds(timing.repeat_interval)
        return "firing", max(due, floor) if floor else due
    if g.announced and g.resolved_at is not None:
        return "resolved", max(g.resolved_at, floor) if floor else g.resolved_at
    return None


def step(
    group: Group,
    observation: Observation | None,
    now: datetime,
    timing: Timing,
    mute: Mute | None = None,
) -> tuple[Group, list[Notice]]:
    """The group after ``observation`` (a run) or, with ``None``, after time passed to ``now``;
    and the notifications due now (none while ``mute``\\ d: the state moves on all the same)."""
    g = group
    if observation is None and overdue(g, timing, now):
        observation = Observation(holds=True, at=now, detail=_no_run_detail(g, timing, now))
    if observation is not None:
        g = _observe(g, observation, now, timing)
    if (
        g.state is State.firing
        and g.keep_firing_since is not None
        and now - g.keep_firing_since >= _seconds(timing.keep_firing_for)
    ):
        g = _resolve(g, now, g.resolved_by, timing)

    notices: list[Notice] = []
    wanted = _wanted(g, timing)
    next_due: datetime | None = None
    g = replace(g, muted=None)
    if wanted is not None:
        status, due = wanted
        if now < due:
            next_due = due
        elif mute is not None:
            g = replace(g, muted=mute.reason)
            recheck = now + _seconds(max(timing.group_interval, INHIBITED_RECHECK_SECONDS))
            next_due = mute.until or recheck
        else:
            assert g.active_at is not None
            n = g.sent + 1
            notices.append(
                Notice(
                    status=status,
                    episode=g.episode,
                    n=n,
                    starts_at=g.active_at,
                    ends_at=g.resolved_at if status == "resolved" else None,
                    detail=g.detail,
                    run_id=g.resolved_by if status == "resolved" else _run_of(g.detail),
                )
            )
            g = replace(g, sent=n, last_sent_at=now, announced=status == "firing")
            again = _wanted(g, timing)
            next_due = again[1] if again else None
    g = replace(g, due_at=_earliest(next_due, *_deadlines(g, timing)))
    return g, notices


def _run_of(detail: Detail | None) -> str | None:
    return detail.run_id if detail else None


def _deadlines(g: Group, timing: Timing) -> list[datetime | None]:
    """When time alone changes the group: keep_firing_for ends, the dead man's switch trips."""
    out: list[datetime | None] = []
    if g.state is State.firing and g.keep_firing_since is not None:
        out.append(g.keep_firing_since + _seconds(timing.keep_firing_for))
    if timing.no_run_within is not None and g.state is not State.firing and g.last_seen:
        out.append(g.last_seen + _seconds(timing.no_run_within))
    return out


def _earliest(*times: datetime | None) -> datetime | None:
    present = [t for t in times if t is not None]
    return min(present) if present else None
