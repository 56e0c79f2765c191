"""HTTP requests and their latency by route template and status, per process, as a pure
ASGI middleware (request bodies and event streams pass through it untouched).

The route label is the route's template (``/api/v1/experiment/{experiment_id}``),
never the raw path: a path with an id in it would make a series per id. A path no route
matches is counted under ``unmatched``, a method outside HTTP's usual ones under ``other``:
what clients send can never add series.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from typing import Any

from prometheus_client import (
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    Counter,
    Histogram,
)
from starlette.routing import compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

UNMATCHED = "unmatched"
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
#: Seconds; API calls take milliseconds, checks that ``wait`` up to a minute.
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class HttpInstruments:
    """This process's HTTP metrics, in a registry of the app's own (not the global one: a
    process may build several apps, as the tests do), with the process collectors."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        for collector in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
            self.registry.register(collector)
        self.requests = Counter(
            "drift_monitor_http_requests",
            "HTTP requests answered, by method, route template and status",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "drift_monitor_http_request_duration_seconds",
            "Time to answer an HTTP request, by method and route template",
            ["method", "route"],
            buckets=BUCKETS,
            registry=self.registry,
        )


def _endpoints(routes: Iterable[Any]) -> Iterator[str]:
    """The full path template of every endpoint, through included routers (recent FastAPI
    keeps them nested, and a nested route's own ``path`` lacks the router's prefix)."""
    for route in routes:
        path = getattr(route, "path", None)
        if isinstance(path, str) and getattr(route, "methods", None) is not None:
            yield path
        elif hasattr(route, "effective_route_contexts"):
            yield from _endpoints(route.effective_route_contexts())
        elif isinstance(path, str) and hasattr(route, "path_regex"):  # a mount, a websocket
            yield path


class RouteTemplates:
    """Path -> the template of the route it matches, from the app's own route table (so a
    request refused before routing, by the body-size limit, still gets its route)."""

    def __init__(self, routes: Iterable[Any]) -> None:
        templates = dict.fromkeys(_endpoints(routes))
        self.patterns = [(compile_path(path)[0], path) for path in templates]

    def __call__(self, path: str) -> str:
        for pattern, template in self.patterns:
            if pattern.match(path):
                return template
        return UNMATCHED


class HttpMetrics:
    """Add it just inside ``RequestIds``, so every answer is counted, 413s included."""

    def __init__(self, app: ASGIApp, instruments: HttpInstruments) -> None:
        self.app = app
        self.instruments = instruments
        self._templates: RouteTemplates | None = None

    def _route(self, scope: Scope) -> str:
        if self._templates is None:  # the routes are all there once requests arrive
            self._templates = RouteTemplates(getattr(scope.get("app"), "routes", ()))
        path = str(scope.get("path", ""))
        root = str(scope.get("root_path", ""))
        return self._templates(path.removeprefix(root) if root else path)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        # An exception that escapes becomes RequestIds' 500.
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            method = str(scope.get("method", ""))
            method = method if method in METHODS else "other"
            route = self._route(scope)
            self.instruments.requests.labels(method, route, str(status)).inc()
            self.instruments.latency.labels(method, route).observe(time.perf_counter() - started)
