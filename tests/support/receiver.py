"""A real HTTP receiver on loopback for notification tests: records every request and
answers as scripted (a status, ``Retry-After``, a redirect, a hang), or refuses connections
altogether while it is down."""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from drift_backend.devstack.services import LOCALHOST, free_port


@dataclass(frozen=True)
class Reply:
    status: int = 200
    body: bytes = b"ok"
    headers: dict[str, str] = field(default_factory=dict)
    #: Keep the request waiting (until ``release()``) instead of answering.
    hang: bool = False


@dataclass(frozen=True)
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    receiver: Receiver


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_POST(self) -> None:
        receiver = self.server.receiver
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length)
        reply = receiver.record(
            Received(
                self.command,
                self.path,
                {key.lower(): value for key, value in self.headers.items()},
                body,
            )
        )
        if reply.hang:
            receiver.released.wait(timeout=60)
            return
        self.send_response(reply.status)
        for key, value in reply.headers.items():
            self.send_header(key, value)
        self.send_header("content-length", str(len(reply.body)))
        self.end_headers()
        self.wfile.write(reply.body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class Receiver:
    def __init__(self) -> None:
        self.port = free_port()
        self.requests: list[Received] = []
        self.released = threading.Event()
        self._script: deque[Reply] = deque()
        self._lock = threading.Lock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def url(self, path: str = "/hook") -> str:
        return f"http://{LOCALHOST}:{self.port}{path}"

    def reply(self, *replies: Reply) -> None:
        """Answer the next requests so, in order; then 200 ``ok`` again."""
        with self._lock:
            self._script.extend(replies)

    def record(self, request: Received) -> Reply:
        with self._lock:
            self.requests.append(request)
            return self._script.popleft() if self._script else Reply()

    def release(self) -> None:
        """Let hanging requests go (they end without an answer)."""
        self.released.set()

    def up(self) -> Receiver:
        server = _Server((LOCALHOST, self.port), _Handler)
        server.receiver = self
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def down(self) -> None:
        """Close the listening socket: connections are refused until ``up()``."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    async def wait_for(self, count: int, timeout: float = 20.0) -> list[Received]:
        """The requests once there are ``count`` (the bound only ends a broken test)."""
        deadline = time.monotonic() + timeout
        while len(self.requests) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"expected {count} requests, got {len(self.requests)}")
            await asyncio.sleep(0.02)
        return list(self.requests)

    def __enter__(self) -> Receiver:
        return self.up()

    def __exit__(self, *exc: object) -> None:
        self.release()
        self.down()
