"""A client that stops reading is dropped: its subscription and queue go at once, and the
server ends its connection instead of buffering events for it without bound."""

from __future__ import annotations

import asyncio
import socket
import uuid

from drift_backend.events import service
from drift_backend.events.schemas import EventType
from drift_backend.store.database import connect

from tests.events.conftest import LONG, Live

#: A hang guard: far more events than a stopped reader's socket buffers can take.
MOST_EVENTS = 2000


def _open_unread_stream(url: str, token: str) -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    # A small receive window, so the server's send buffers fill after few events.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect((host, int(port)))
    request = (
        f"GET /api/v1/events HTTP/1.1\r\nHost: {host}\r\n"
        f"Authorization: Bearer {token}\r\nAccept: text/event-stream\r\n\r\n"
    )
    sock.sendall(request.encode())
    return sock


def _read_to_end(sock: socket.socket) -> bytes:
    sock.settimeout(LONG)
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


async def test_a_client_that_stops_reading_is_dropped(live_factory: object) -> None:
    live: Live = await live_factory(events_queue_size=8)  # type: ignore[operator]
    await live.register("alice")
    exp = await live.experiment("alice")
    sock = _open_unread_stream(live.url, live.issuer.token("alice"))
    try:
        for _ in range(3000):  # until the server holds its subscription
            if live.hub.subscribers:
                break
            await asyncio.sleep(0.01)
        assert len(live.hub.subscribers) == 1
        client = connect(live.settings.mongodb_url.get_secret_value())
        db = client[live.settings.mongodb_database]
        padding = "x" * 100_000  # big events fill the buffers after a few
        emitted = 0
        try:
            while live.hub.dropped == 0 and emitted < MOST_EVENTS:
                await service.emit(
                    db,
                    EventType.run_updated,
                    experiment_id=exp,
                    run_id=str(uuid.uuid4()),
                    model=padding,
                    payload={"status": "Running"},
                )
                emitted += 1
                if emitted % 10 == 0:
                    await asyncio.sleep(0.05)  # let the tailer hand them out
        finally:
            await client.close()
        assert live.hub.dropped == 1, emitted
        assert live.hub.subscribers == set()
        # The server let the connection go: the client reads what was in flight, then the end.
        received = await asyncio.to_thread(_read_to_end, sock)
    finally:
        sock.close()
    assert received.startswith(b"HTTP/1.1 200")
    assert 0 < received.count(b"event: run.updated") < emitted
