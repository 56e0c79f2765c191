"""The SDK's ``Client.events()`` against a live backend: typed events, the experiment
filter, replay from an id, and reconnecting after the server ends the stream."""

from __future__ import annotations

import asyncio
import itertools
from datetime import datetime

from drift_monitor import Client, Event, TokenProvider
from drift_monitor._events import Message, parse_stream

from tests.events.conftest import Live
from tests.support.jwt_issuer import JWTIssuer


class ShortLivedTokens(TokenProvider):
    """A fresh token on every call, valid for ``seconds`` (counted, to see reconnections)."""

    def __init__(self, issuer: JWTIssuer, who: str, seconds: int) -> None:
        self.issuer, self.who, self.seconds = issuer, who, seconds
        self.issued = 0

    def get_token(self) -> str:
        self.issued += 1
        return self.issuer.token(self.who, expires_in=self.seconds)


def _client(live: Live, who: str) -> Client:
    return Client(live.url, token=live.issuer.token(who), retries=3)


async def test_events_iterates_typed_events_of_the_chosen_experiments(live: Live) -> None:
    exp = await live.experiment("alice")
    other = await live.experiment("alice")
    with _client(live, "alice") as client:
        events = client.events(experiment=[exp])
        try:
            first = asyncio.create_task(asyncio.to_thread(next, events))
            for _ in range(3000):  # it connects on the first next(); live events from then on
                if live.hub.subscribers:
                    break
                await asyncio.sleep(0.01)
            await live.run("alice", other)
            run = await live.run("alice", exp)
            event: Event = await asyncio.wait_for(first, 30)
        finally:
            events.close()  # type: ignore[attr-defined]
    assert event.type == "run.created"
    assert event.run_id == run["id"]
    assert event.experiment_id == exp
    assert event.model == "m1"
    assert event.status == "Running"
    assert event.drift_detected is False
    assert isinstance(event.time, datetime)
    assert int(event.id) > 0

    # Replay from that id, without following: what came after it, then the end.
    await live.finish("alice", exp, run["id"], data_drift={"drift": True, "parameters": {}})
    with _client(live, "alice") as client:
        rest = await asyncio.to_thread(
            lambda: list(client.events(exp, last_event_id=event.id, follow=False))
        )
    assert [(e.type, e.run_id, e.drift_detected) for e in rest] == [
        ("run.finished", run["id"], True)
    ]


async def test_events_reconnects_where_it_left_off(live: Live) -> None:
    exp = await live.experiment("alice")
    tokens = ShortLivedTokens(live.issuer, "alice", seconds=2)
    first = await live.run("alice", exp)
    with Client(live.url, token=tokens, retries=3) as client:
        # From the start of what is kept: the run above comes first.
        events = client.events(exp, last_event_id="0")
        try:
            got = await asyncio.to_thread(next, events)
            assert got.run_id == first["id"]
            # The server ends each stream when its token expires; the iterator reconnects
            # with a fresh token and Last-Event-ID. Runs made meanwhile arrive, once each.
            await asyncio.sleep(2.5)
            later = [await live.run("alice", exp) for _ in range(3)]
            received = [await asyncio.to_thread(next, events) for _ in range(3)]
        finally:
            events.close()  # type: ignore[attr-defined]
    assert [e.run_id for e in received] == [run["id"] for run in later]
    assert tokens.issued >= 2  # it did connect again


def test_the_parser_follows_the_event_stream_rules() -> None:
    lines = [
        "\ufeffretry: 2500",
        "",
        ": ping",
        "",
        "id: 7",
        "event: run.created",
        "data: {",
        'data:"a": 1}',
        "",
        "id: bad\0id",
        "data: x",
        "unknown: field",
        "",
        "event: ignored-without-data",
        "",
    ]
    assert list(parse_stream(lines)) == [
        Message("", None, None, 2500),
        Message("run.created", '{\n"a": 1}', "7"),
        Message("message", "x", "7"),  # an id with NUL is ignored; the last one stays
    ]
    assert list(itertools.islice(parse_stream(["data: 1", ""]), 1)) == [
        Message("message", "1", None)
    ]
