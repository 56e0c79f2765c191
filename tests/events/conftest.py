"""Event-stream tests run against backends served over real HTTP (uvicorn on loopback): an
in-process transport buffers whole answers, and a stream never ends. Each backend gets its
own database and short intervals (keep-alive, polling, the permission cache)."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import Any

import httpx2
import pytest
from drift_backend.devstack.services import ManagedProcess
from drift_backend.main import create_app
from drift_backend.settings import Settings

from tests.conftest import _drop, make_settings
from tests.support.jwt_issuer import JWTIssuer
from tests.support.threads import ThreadedServer

PREFIX = "/api/v1"
#: A hang guard, not a timing threshold: what is awaited arrives long before it.
LONG = 120.0
#: Short intervals so the suite stays fast.
FAST: dict[str, Any] = {
    "events_keepalive_seconds": 0.3,
    "events_poll_seconds": 0.05,
    "events_permission_cache_seconds": 0.2,
}


@dataclass
class Frame:
    """One SSE block: an event (``id``, ``event``, ``data``), a comment, or a ``retry``."""

    id: str | None = None
    event: str | None = None
    data: dict[str, Any] | None = None
    comments: list[str] = field(default_factory=list)
    retry: int | None = None


class Stream:
    """An open ``GET /events``, its frames parsed as they arrive (None marks the end)."""

    def __init__(self, response: httpx2.Response) -> None:
        self.response = response
        self.frames: asyncio.Queue[Frame | None] = asyncio.Queue()
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        current = Frame()
        data: list[str] = []
        try:
            async for line in self.response.aiter_lines():
                if line == "":
                    if data:
                        current.data = json.loads("\n".join(data))
                    await self.frames.put(current)
                    current, data = Frame(), []
                elif line.startswith(":"):
                    current.comments.append(line[1:].strip())
                else:
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
        except (httpx2.ReadError, httpx2.RemoteProtocolError):
            pass
        finally:
            await self.frames.put(None)

    async def frame(self) -> Frame | None:
        return await asyncio.wait_for(self.frames.get(), LONG)

    async def event(self) -> Frame:
        """The next event (comments and retry hints skipped)."""
        while True:
            got = await self.frame()
            assert got is not None, "the stream ended"
            if got.event is not None:
                return got

    async def event_of(self, run_id: str) -> Frame:
        """The next event; it must be about ``run_id`` (earlier ones would be a leak)."""
        got = await self.event()
        assert got.data is not None
        assert got.data["run_id"] == run_id, got
        return got

    async def rest(self) -> list[Frame]:
        """Events until the stream ends."""
        events = []
        while (got := await self.frame()) is not None:
            if got.event is not None:
                events.append(got)
        return events


@dataclass
class Live:
    """A backend over HTTP, with tokens for the test personas."""

    url: str
    http: httpx2.AsyncClient
    issuer: JWTIssuer
    settings: Settings
    app: Any
    stack: AsyncExitStack

    def auth(self, who: str | None) -> dict[str, str]:
        return {} if who is None else {"Authorization": f"Bearer {self.issuer.token(who)}"}

    async def request(
        self, method: str, path: str, who: str | None = None, **kwargs: Any
    ) -> httpx2.Response:
        headers = {**self.auth(who), **kwargs.pop("headers", {})}
        return await self.http.request(method, PREFIX + path, headers=headers, **kwargs)

    async def register(self, who: str) -> str:
        response = await self.request("POST", "/user", who)
        assert response.status_code in (201, 409), response.text
        if response.status_code == 409:
            response = await self.request("GET", "/user/self", who)
        return str(response.json()["id"])

    async def experiment(self, who: str, **fields: Any) -> str:
        body = {"name": f"ev-{uuid.uuid4().hex[:8]}", **fields}
        response = await self.request("POST", "/experiment", who, json=body)
        assert response.status_code == 201, response.text
        return str(response.json()["id"])

    async def run(self, who: str, experiment_id: str, **fields: Any) -> dict[str, Any]:
        body = {"model": "m1", "job_status": "Running", **fields}
        response = await self.request("POST", f"/experiment/{experiment_id}/drift", who, json=body)
        assert response.status_code == 201, response.text
        return dict(response.json())

    async def finish(self, who: str, experiment_id: str, run_id: str, **fields: Any) -> None:
        body = {"model": "m1", "job_status": "Completed", **fields}
        response = await self.request(
            "PUT", f"/experiment/{experiment_id}/drift/{run_id}", who, json=body
        )
        assert response.status_code == 200, response.text

    async def stream(
        self,
        who: str | None,
        *,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Stream:
        response = await self.stack.enter_async_context(
            self.http.stream(
                "GET",
                PREFIX + "/events",
                params=params,
                headers={**self.auth(who), **(headers or {})},
            )
        )
        assert response.status_code == 200, (await response.aread()).decode()
        assert response.headers["content-type"].startswith("text/event-stream")
        stream = Stream(response)
        # The first frame is the reconnection hint: the subscription exists once it is here.
        first = await stream.frame()
        assert first is not None
        assert first.retry is not None
        return stream

    @property
    def hub(self) -> Any:
        return self.app.state.event_hub


@pytest.fixture
async def live_factory(
    mongodb: ManagedProcess, issuer: JWTIssuer, oidc_provider: ManagedProcess
) -> AsyncIterator[Callable[..., Any]]:
    """``await live_factory(**setting_overrides)``: a fresh backend over HTTP."""
    servers: list[tuple[ThreadedServer, Settings, httpx2.AsyncClient, AsyncExitStack]] = []

    async def build(**overrides: Any) -> Live:
        settings = make_settings(mongodb, [issuer.url, oidc_provider.url], **{**FAST, **overrides})
        app = create_app(settings)
        server = ThreadedServer(app)
        await asyncio.to_thread(server.__enter__)
        http = httpx2.AsyncClient(base_url=server.url, timeout=httpx2.Timeout(LONG))
        stack = AsyncExitStack()
        servers.append((server, settings, http, stack))
        return Live(server.url, http, issuer, settings, app, stack)

    yield build
    for server, settings, http, stack in servers:
        await stack.aclose()
        await http.aclose()
        await asyncio.to_thread(server.__exit__, None, None, None)
        await _drop(settings)


@pytest.fixture
async def live(live_factory: Callable[..., Any]) -> Live:
    built: Live = await live_factory()
    for who in ("alice", "bob", "admin"):
        await built.register(who)
    return built
