"""The alert state machine on sequences of runs and ticks: for_runs, keep_firing_for,
flapping, resolve, group_wait, group_interval, repeat_interval, silences, the dead man's switch."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from drift_backend.alerts.state import (
    Detail,
    Group,
    Mute,
    Notice,
    Observation,
    State,
    Timing,
    step,
)

T0 = datetime(2026, 12, 1, tzinfo=UTC)
#: Everything at once, so sequences read as runs: no waits unless a test sets them.
PROMPT = Timing(group_wait=0, group_interval=0, repeat_interval=3600)

Event = tuple[float, bool | None]  # (seconds after T0, holds?) ; None: a tick


def run(holds: bool, at: datetime, run_id: str = "r") -> Observation:
    return Observation(holds=holds, at=at, run_id=run_id, detail=Detail(summary="s", run_id=run_id))


def play(
    events: Sequence[Event], timing: Timing, group: Group | None = None, mute: Mute | None = None
) -> tuple[Group, list[tuple[float, Notice]]]:
    g = group or Group()
    out: list[tuple[float, Notice]] = []
    for i, (seconds, holds) in enumerate(events):
        now = T0 + timedelta(seconds=seconds)
        seen = None if holds is None else run(holds, now, f"r{i}")
        g, notices = step(g, seen, now, timing, mute)
        out.extend((seconds, notice) for notice in notices)
    return g, out


def said(notices: list[tuple[float, Notice]]) -> list[tuple[float, str]]:
    return [(at, n.status) for at, n in notices]


def test_one_drifting_run_fires_once_and_a_clean_one_resolves() -> None:
    g, notices = play([(0, True), (10, True), (20, False)], PROMPT)
    assert said(notices) == [(0, "firing"), (20, "resolved")]
    assert g.state is State.resolved
    assert [n.dedup_key("rule", "m") for _, n in notices] == ["rule:m:1:1", "rule:m:1:2"]
    assert notices[1][1].ends_at == T0 + timedelta(seconds=20)
    assert notices[1][1].starts_at == T0
    # The next clean run leaves the resolved state behind.
    g, _ = step(g, run(False, T0 + timedelta(seconds=30)), T0 + timedelta(seconds=30), PROMPT)
    assert g.state is State.inactive


def test_for_runs_needs_that_many_runs_in_a_row() -> None:
    timing = Timing(for_runs=3, group_wait=0, group_interval=0)
    g, notices = play([(0, True), (1, True), (2, False), (3, True), (4, True)], timing)
    assert g.state is State.pending
    assert g.streak == 2
    assert notices == []
    g, notices = play([(5, True)], timing, g)
    assert g.state is State.firing
    assert said(notices) == [(5, "firing")]


def test_a_pending_group_that_stops_holding_says_nothing() -> None:
    timing = Timing(for_runs=2, group_wait=0, group_interval=0)
    g, notices = play([(0, True), (1, False), (2, True), (3, False)], timing)
    assert g.state is State.inactive
    assert notices == []


def test_group_wait_delays_the_first_notification_to_a_tick() -> None:
    timing = Timing(group_wait=30, group_interval=0)
    g, notices = play([(0, True)], timing)
    assert notices == []
    assert g.state is State.firing
    assert g.due_at == T0 + timedelta(seconds=30)
    g, notices = play([(10, None), (20, True)], timing, g)
    assert notices == []
    g, notices = play([(30, None)], timing, g)
    assert said(notices) == [(30, "firing")]
    assert notices[0][1].starts_at == T0


def test_resolved_within_group_wait_says_nothing_at_all() -> None:
    timing = Timing(group_wait=30, group_interval=0)
    g, notices = play([(0, True), (10, False), (30, None), (60, None)], timing)
    assert notices == []
    assert g.state is State.resolved
    assert g.due_at is None


def test_repeat_interval_repeats_while_firing_and_nothing_between() -> None:
    timing = Timing(group_wait=0, group_interval=60, repeat_interval=600)
    g, notices = play([(0, True), (100, True), (300, None), (599, True)], timing)
    assert said(notices) == [(0, "firing")]
    assert g.due_at == T0 + timedelta(seconds=600)
    g, notices = play([(600, None), (700, True), (1200, None)], timing, g)
    assert said(notices) == [(600, "firing"), (1200, "firing")]
    assert [n.n for _, n in notices] == [2, 3]
    assert {n.episode for _, n in notices} == {1}


def test_group_interval_holds_the_resolution_back_and_a_return_continues_the_episode() -> None:
    timing = Timing(group_wait=0, group_interval=300, repeat_interval=3600)
    g, notices = play([(0, True), (60, False)], timing)
    assert said(notices) == [(0, "firing")]
    assert g.state is State.resolved
    assert g.due_at == T0 + timedelta(seconds=300)
    # Back before the resolution went out: receivers never heard it end, nothing to say.
    g, notices = play([(120, True), (300, None)], timing, g)
    assert notices == []
    assert g.state is State.firing
    assert g.episode == 1
    assert g.active_at == T0
    # Resolved for real: said after group_interval.
    g, notices = play([(400, False), (500, None), (700, None)], timing, g)
    assert said(notices) == [(400, "resolved")]


def test_flapping_without_keep_firing_for_makes_one_episode_per_flap_said() -> None:
    timing = Timing(group_wait=0, group_interval=0)
    _g, notices = play([(0, True), (1, False), (2, True), (3, False)], timing)
    assert said(notices) == [(0, "firing"), (1, "resolved"), (2, "firing"), (3, "resolved")]
    assert [n.dedup_key("r", "m") for _, n in notices] == [
        "r:m:1:1",
        "r:m:1:2",
        "r:m:2:1",
        "r:m:2:2",
    ]


def test_keep_firing_for_rides_out_flapping() -> None:
    timing = Timing(group_wait=0, group_interval=0, keep_firing_for=600)
    events: list[Event] = [(0, True), (60, False), (120, True), (180, False), (240, True)]
    g, notices = play(events, timing)
    assert said(notices) == [(0, "firing")]
    assert g.state is State.firing
    assert g.keep_firing_since is None
    # Stops holding for good: still firing until keep_firing_for has passed, then resolved
    # by a tick (no run needed).
    g, notices = play([(300, False), (600, False), (899, None)], timing, g)
    assert notices == []
    assert g.state is State.firing
    assert g.due_at == T0 + timedelta(seconds=900)
    g, notices = play([(900, None)], timing, g)
    assert said(notices) == [(900, "resolved")]
    assert g.state is State.resolved


def test_send_resolved_off_ends_the_episode_quietly() -> None:
    timing = Timing(group_wait=0, group_interval=0, send_resolved=False)
    _g, notices = play([(0, True), (1, False), (2, True)], timing)
    assert said(notices) == [(0, "firing"), (2, "firing")]
    assert [n.episode for _, n in notices] == [1, 2]


def test_a_silence_holds_notifications_back_until_it_ends() -> None:
    until = T0 + timedelta(seconds=100)
    g, notices = play([(0, True), (10, True)], PROMPT, mute=Mute("silenced", until))
    assert notices == []
    assert g.state is State.firing
    assert g.muted == "silenced"
    assert g.due_at == until
    g, notices = play([(100, None)], PROMPT, g)
    assert said(notices) == [(100, "firing")]
    assert notices[0][1].starts_at == T0


def test_a_group_resolved_while_silenced_before_it_was_said_says_nothing() -> None:
    g, notices = play([(0, True), (10, False)], PROMPT, mute=Mute("silenced", T0))
    g, notices2 = play([(100, None)], PROMPT, g)
    assert notices == notices2 == []


def test_an_inhibited_group_looks_again_later() -> None:
    timing = Timing(group_wait=0, group_interval=60)
    g, notices = play([(0, True)], timing, mute=Mute("inhibited"))
    assert notices == []
    assert g.muted == "inhibited"
    assert g.due_at == T0 + timedelta(seconds=60)
    g, notices = play([(60, None)], timing, g)
    assert said(notices) == [(60, "firing")]


def test_the_same_decision_evaluated_twice_gives_the_same_dedup_key() -> None:
    g, _ = play([(0, True)], Timing(group_wait=30, group_interval=0))
    _, first = play([(30, None)], Timing(group_wait=30, group_interval=0), g)
    _, again = play([(45, None)], Timing(group_wait=30, group_interval=0), g)
    assert [n.dedup_key("r", "m") for _, n in first] == [n.dedup_key("r", "m") for _, n in again]


def test_no_run_trips_after_its_deadline_and_a_run_resolves_it() -> None:
    timing = Timing(group_wait=0, group_interval=0, no_run_within=60)
    g = Group(last_seen=T0)
    g, notices = play([(59, None)], timing, g)
    assert notices == []
    assert g.due_at == T0 + timedelta(seconds=60)
    g, notices = play([(60, None), (90, None)], timing, g)
    assert said(notices) == [(60, "firing")]
    assert notices[0][1].detail is not None
    assert notices[0][1].detail.values["seconds_since_last_run"] == 60
    g, notices = play([(100, False)], timing, g)
    assert said(notices) == [(100, "resolved")]
    assert g.due_at == T0 + timedelta(seconds=160)
