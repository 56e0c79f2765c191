"""One origin for the API and the dashboard: ``/api/...`` and ``/health/...`` go to the
backend app, everything else to the dashboard. The local stack serves this, so the browser
sees a single origin (``http://127.0.0.1:8000/``) and the dashboard calls the API there.

It takes both as plain ASGI apps, so the dashboard package imports nothing of the backend.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AsyncExitStack
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

BACKEND_PREFIXES = ("/api", "/health")


class SameOriginDispatcher:
    def __init__(
        self,
        backend: Any,
        dashboard: Any,
        backend_prefixes: Sequence[str] = BACKEND_PREFIXES,
    ) -> None:
        self.backend: ASGIApp = backend
        self.dashboard: ASGIApp = dashboard
        self.prefixes = tuple(backend_prefixes)
        # FastAPI apps: their lifespans run here, in order, and stop in reverse.
        self._apps = (backend, dashboard)

    def _target(self, path: str) -> ASGIApp:
        for prefix in self.prefixes:
            if path == prefix or path.startswith(prefix + "/"):
                return self.backend
        return self.dashboard

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        await self._target(scope.get("path", ""))(scope, receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        await receive()  # lifespan.startup
        async with AsyncExitStack() as stack:
            try:
                for app in self._apps:
                    await stack.enter_async_context(app.router.lifespan_context(app))
            except Exception as exc:
                await send({"type": "lifespan.startup.failed", "message": repr(exc)})
                return
            await send({"type": "lifespan.startup.complete"})
            await receive()  # lifespan.shutdown
        await send({"type": "lifespan.shutdown.complete"})
