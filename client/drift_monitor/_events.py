"""``Client.events()``: the server's event stream (``GET /events``, Server-Sent Events) as an
iterator of :class:`Event`, reconnecting with ``Last-Event-ID`` after a dropped connection.

The parser follows the WHATWG ``text/event-stream`` rules: ``field: value`` lines (one
leading space dropped), ``:`` comments (the server's keep-alive pings), ``data`` lines joined
by newlines, ``retry`` setting the reconnection delay, a blank line ending each event.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

import httpx2

from drift_monitor._exceptions import TransportError

if TYPE_CHECKING:
    from drift_monitor._client import Client

__all__ = ["Event", "EventType", "Message", "parse_stream"]

logger = logging.getLogger("drift_monitor")

EventType = Literal[
    "run.created",
    "run.updated",
    "run.finished",
    "check.finished",
    "performance.window_updated",  # run_id is ""
]
#: Wait before reconnecting until the server says otherwise (``retry:``), in seconds.
DEFAULT_RECONNECT = 1.0
#: Without a byte for this long (the server pings every 15 s by default) the connection is
#: taken for dead and opened again.
READ_TIMEOUT = 60.0


@dataclass(frozen=True)
class Event:
    """One event: what happened (``type``) to which run, and a small ``payload``.

    Runs' payloads hold ``status``, ``drift_detected``, ``concept_drift`` and ``data_drift``;
    checks' (``check.finished``) ``status``, ``drift_detected``, ``drifted_features`` (a
    count), ``n_tested`` and ``violations``. ``type`` is a plain string so that event types
    a newer server adds still arrive.
    """

    id: str
    type: str
    experiment_id: str
    run_id: str
    model: str
    time: datetime
    payload: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Event:
        return cls(
            id=str(data["id"]),
            type=str(data["type"]),
            experiment_id=str(data["experiment_id"]),
            run_id=str(data["run_id"]),
            model=str(data["model"]),
            time=datetime.fromisoformat(str(data["time"])),
            payload=dict(data.get("payload") or {}),
        )

    @property
    def status(self) -> str | None:
        """The run's ``job_status`` when the event happened."""
        value = self.payload.get("status")
        return None if value is None else str(value)

    @property
    def drift_detected(self) -> bool:
        return bool(self.payload.get("drift_detected", False))


@dataclass(frozen=True)
class Message:
    """One dispatched SSE message (``retry`` alone is reported with ``data=None``)."""

    event: str
    data: str | None
    id: str | None
    retry: int | None = None


def parse_stream(lines: Iterable[str]) -> Iterator[Message]:
    """SSE messages from the lines of a ``text/event-stream`` (without line endings)."""
    event, last_id = "", None
    data: list[str] = []
    for number, raw in enumerate(lines):
        line = raw.removeprefix("\ufeff") if number == 0 else raw
        if line == "":
            if data:
                yield Message(event or "message", "\n".join(data), last_id)
            event, data = "", []
            continue
        if line.startswith(":"):
            continue  # a comment: the keep-alive ping
        name, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if name == "event":
            event = value
        elif name == "data":
            data.append(value)
        elif name == "id" and "\0" not in value:
            last_id = value
        elif name == "retry" and value.isdigit():
            yield Message("", None, last_id, int(value))


def experiment_ids(experiment: str | Iterable[str] | None) -> list[str] | None:
    if experiment is None:
        return None
    return [experiment] if isinstance(experiment, str) else [str(item) for item in experiment]


def stream_events(
    client: Client,
    *,
    experiment: str | Iterable[str] | None,
    last_event_id: str | None,
    follow: bool,
    read_timeout: float,
) -> Iterator[Event]:
    """The events, across reconnections; see :meth:`Client.events`."""
    from drift_monitor._client import RETRY_STATUSES

    params: dict[str, Any] = {}
    ids = experiment_ids(experiment)
    if ids:
        params["experiment"] = ids
    if not follow:
        params["follow"] = "false"
    last = last_event_id
    reconnect = DEFAULT_RECONNECT
    failures = 0  # in a row, without an event in between
    refreshed = False
    timeout = httpx2.Timeout(client.settings.timeout, read=read_timeout)
    while True:
        headers = {"Accept": "text/event-stream", "Cache-Control": "no-cache"}
        if last is not None:
            headers["Last-Event-ID"] = last
        if client._token is not None:
            headers["Authorization"] = f"Bearer {client._token.get_token()}"
        try:
            with client._http.stream(
                "GET", "/events", params=params, headers=headers, timeout=timeout
            ) as response:
                if response.status_code == 401 and client._token is not None and not refreshed:
                    refreshed = True  # a cached token may have expired early: fetch once more
                    if client._token.invalidate():
                        continue
                if response.status_code in RETRY_STATUSES and failures < client.settings.retries:
                    failures += 1
                    pause = _retry_after(response.headers.get("Retry-After"))
                    _wait(client, pause, failures, f"GET /events: HTTP {response.status_code}")
                    continue
                if response.is_error:
                    response.read()
                    raise client._error(response)
                refreshed = False
                for message in parse_stream(response.iter_lines()):
                    if message.retry is not None:
                        reconnect = message.retry / 1000
                    if message.data is None:
                        continue
                    failures = 0
                    if message.id is not None:
                        last = message.id
                    yield Event.from_json(json.loads(message.data))
        except httpx2.TransportError as exc:
            if failures >= client.settings.retries:
                raise TransportError(
                    f"GET {client.settings.api_url}/events failed: {exc!r}"
                ) from exc
            failures += 1
            _wait(client, None, failures, f"GET /events: {exc!r}")
            continue
        if not follow:
            return
        # The server ended the stream (the token expired, this client fell behind, the
        # server is stopping): pick up where it left off.
        logger.info("event stream ended; reconnecting after event %s", last)
        client._sleep(reconnect)


def _wait(client: Client, pause: float | None, failures: int, why: str) -> None:
    """The server's ``Retry-After`` when it gave one, else the client's backoff."""
    if pause is None:
        client._backoff(failures - 1, why)
    else:
        logger.info("retrying in %.2fs after %s", pause, why)
        client._sleep(pause)


def _retry_after(value: str | None) -> float | None:
    if value is None or not value.strip().isdigit():
        return None
    return float(value.strip())
