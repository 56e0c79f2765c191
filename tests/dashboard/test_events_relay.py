"""The dashboard's ``GET /events`` relay against a real stack: the backend's stream with the
session's token (or none), its permission filtering passed through, ``Last-Event-ID`` (header
and query) forwarded, the upstream closed when the browser leaves, and the backend's 503 and
401 turned into clear answers. The page's own use of it (a run appearing without a reload)
is in test_experiment_pages.py."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx2
import pytest
from drift_dashboard.sessions import COLLECTION
from pymongo import MongoClient
from pymongo.collection import Collection

from tests.dashboard.conftest import Stack, Visitor, unique

#: A small stream limit, so the 503 is reachable; every test closes its streams.
MAX_STREAMS = 3
BACKEND_SETTINGS = {"events_max_streams": MAX_STREAMS, "events_poll_seconds": 0.05}
#: A hang guard, not a timing threshold.
LONG = 30.0


@dataclass
class Frame:
    id: str | None = None
    event: str | None = None
    data: dict[str, Any] | None = None
    retry: int | None = None
    comments: list[str] = field(default_factory=list)


class Events:
    """An open relay stream, read frame by frame (the socket buffers what arrives while the
    test does something else)."""

    def __init__(self, response: httpx2.Response) -> None:
        self.response = response
        self.lines = response.iter_lines()

    def frame(self) -> Frame:
        current, data = Frame(), list[str]()
        for line in self.lines:
            if line == "":
                if data:
                    current.data = json.loads("\n".join(data))
                return current
            if line.startswith(":"):
                current.comments.append(line[1:].strip())
                continue
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "id":
                current.id = value
            elif name == "event":
                current.event = value
            elif name == "data":
                data.append(value)
            elif name == "retry":
                current.retry = int(value)
        raise AssertionError("the stream ended")

    def event(self) -> Frame:
        """The next event (pings and retry hints skipped)."""
        while True:
            got = self.frame()
            if got.event is not None:
                return got


@contextmanager
def relay(
    stack: Stack,
    cookies: dict[str, str] | None = None,
    *,
    params: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
) -> Iterator[Events]:
    """``GET /events`` at the dashboard, as a browser with these cookies; open once the
    relayed reconnection hint has arrived (the backend's subscription exists then)."""
    with (
        httpx2.Client(base_url=stack.url, cookies=cookies, timeout=LONG) as http,
        http.stream("GET", "/events", params=params, headers=headers) as response,
    ):
        assert response.status_code == 200, response.read()
        events = Events(response)
        assert events.frame().retry is not None
        yield events


@dataclass
class Seeded:
    private: dict[str, Any]  # alice's
    public: dict[str, Any]  # alice's too


@pytest.fixture(scope="module")
def seeded(stack: Stack) -> Seeded:
    return Seeded(
        private=stack.create("alice", unique("relay-private")),
        public=stack.create("alice", unique("relay-public"), public=True),
    )


@pytest.fixture(scope="module")
def cookies(browser: Any, stack: Stack) -> Iterator[dict[str, dict[str, str]]]:
    """Logged-in sessions of alice and bob (the browser logs in; HTTP uses the cookies)."""
    found = {}
    visitors = []
    for who in ("alice", "bob"):
        visitor = Visitor(browser, stack)
        visitor.login(who)
        found[who] = visitor.cookies()
        visitors.append(visitor)
    yield found
    for visitor in visitors:
        visitor.close()


def _run(stack: Stack, experiment: dict[str, Any], **body: Any) -> dict[str, Any]:
    made = httpx2.post(
        f"{stack.url}/api/v1/experiment/{experiment['id']}/drift",
        json={"model": "relay", "job_status": "Completed", **body},
        headers={"Authorization": f"Bearer {stack.token('alice')}"},
        timeout=LONG,
    )
    assert made.status_code == 201, made.text
    result: dict[str, Any] = made.json()
    return result


def _open_streams(stack: Stack) -> int:
    return len(stack.backend.state.event_hub.subscribers)


def _until_no_streams(stack: Stack) -> None:
    deadline = time.monotonic() + LONG  # a hang guard
    while _open_streams(stack) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _open_streams(stack) == 0


def test_the_stream_is_relayed_unbuffered_with_its_headers(
    stack: Stack, seeded: Seeded, cookies: dict[str, dict[str, str]]
) -> None:
    with relay(stack, cookies["alice"], params={"experiment": seeded.private["id"]}) as events:
        headers = events.response.headers
        assert headers["content-type"].startswith("text/event-stream")
        assert headers["cache-control"] == "no-cache"
        assert headers["x-accel-buffering"] == "no"
        assert "content-length" not in headers
        # The stream stays open: an event made now arrives on it (nothing waits for an end).
        run = _run(stack, seeded.private)
        created = events.event()
        assert created.event == "run.created"
        assert created.data is not None
        assert created.data["run_id"] == run["id"]
        assert created.id is not None
        assert events.event().event == "run.finished"
    _until_no_streams(stack)


def test_another_user_s_private_events_never_reach_the_browser(
    stack: Stack, seeded: Seeded, cookies: dict[str, dict[str, str]]
) -> None:
    with ExitStack() as streams:
        bob = streams.enter_context(relay(stack, cookies["bob"]))
        anonymous = streams.enter_context(relay(stack))
        alice = streams.enter_context(relay(stack, cookies["alice"]))
        private = _run(stack, seeded.private)
        public = _run(stack, seeded.public)
        # bob and an anonymous visitor get the public run's event first: the private
        # run's events never came. alice gets both runs' (created and finished each).
        for stream in (bob, anonymous):
            got = stream.event()
            assert got.data is not None
            assert got.data["run_id"] == public["id"], got
            assert got.data["experiment_id"] == seeded.public["id"]
        seen = [(alice.event().data or {}).get("run_id") for _ in range(4)]
        assert seen == [private["id"], private["id"], public["id"], public["id"]]
    _until_no_streams(stack)


def test_filtering_to_an_experiment_one_cannot_read_is_refused(
    stack: Stack, seeded: Seeded, cookies: dict[str, dict[str, str]]
) -> None:
    for who in ("bob", None):
        answer = httpx2.get(
            f"{stack.url}/events",
            params={"experiment": seeded.private["id"]},
            cookies=cookies[who] if who else None,
            timeout=LONG,
        )
        assert answer.status_code == 404
        assert answer.json()["status"] == 404
        assert seeded.private["name"] not in answer.text
    assert _open_streams(stack) == 0


def test_last_event_id_is_forwarded_from_the_header_and_the_query(
    stack: Stack, seeded: Seeded, cookies: dict[str, dict[str, str]]
) -> None:
    only = {"experiment": seeded.private["id"]}
    with relay(stack, cookies["alice"], params=only) as events:
        _run(stack, seeded.private)
        _run(stack, seeded.private)
        ids = [events.event().id for _ in range(4)]  # created, finished; created, finished
    assert all(ids)
    # A reconnect (EventSource sends the header) replays what came after that event.
    with relay(stack, cookies["alice"], params=only, headers={"Last-Event-ID": ids[0] or ""}) as e:
        assert [e.event().id for _ in range(3)] == ids[1:]
    # A fresh EventSource cannot send the header: the query does the same.
    with relay(stack, cookies["alice"], params={**only, "last_event_id": ids[2] or ""}) as e:
        assert e.event().id == ids[3]
    # Not an event id: the backend's 422, passed on.
    bad = httpx2.get(
        f"{stack.url}/events",
        params=only,
        headers={"Last-Event-ID": "yesterday"},
        cookies=cookies["alice"],
        timeout=LONG,
    )
    assert bad.status_code == 422
    _until_no_streams(stack)


def test_leaving_closes_the_upstream_and_a_full_backend_is_a_503(
    stack: Stack, cookies: dict[str, dict[str, str]]
) -> None:
    with ExitStack() as streams:
        for _ in range(MAX_STREAMS):
            streams.enter_context(relay(stack, cookies["alice"]))
        assert _open_streams(stack) == MAX_STREAMS
        full = httpx2.get(f"{stack.url}/events", cookies=cookies["alice"], timeout=LONG)
        assert full.status_code == 503
        assert int(full.headers["retry-after"]) > 0
        assert full.json()["code"] == "unavailable"
        assert "try again" in full.json()["message"]
    # The browsers left: each relay closed its upstream, and the backend's slots are free.
    _until_no_streams(stack)
    with relay(stack, cookies["alice"]):
        assert _open_streams(stack) == 1
    _until_no_streams(stack)


def test_a_login_the_backend_refuses_is_a_401_and_ends_the_session(
    browser: Any, stack: Stack
) -> None:
    visitor = Visitor(browser, stack)
    try:
        visitor.login("bob")
        cookie = visitor.cookies()["drift_session"]
        key = hashlib.sha256(cookie.encode()).hexdigest()
        client: MongoClient[dict[str, Any]]
        with MongoClient(stack.mongodb_url) as client:
            sessions: Collection[dict[str, Any]] = client[stack.database][COLLECTION]
            # The provider revoked it, say: still unexpired here, refused by the backend.
            changed = sessions.update_one(
                {"_id": key}, {"$set": {"tokens.access_token": "revoked-token"}}
            )
            assert changed.modified_count == 1
            answer = httpx2.get(
                f"{stack.url}/events", cookies={"drift_session": cookie}, timeout=LONG
            )
            assert answer.status_code == 401
            assert "log in" in answer.json()["message"]
            assert sessions.find_one({"_id": key}) is None
    finally:
        visitor.close()
    assert _open_streams(stack) == 0
