"""HTTP requests and their latency by route template and status, per process, as a pure
ASGI middleware (request bodies and event streams pass through it untouched).

The route label is the matched route's template (``/api/v1/experiment/{experiment_id}``),
never the raw path: a path with an id in it would make a series per id. A request no route
matched (an unknown path, or one refused before routing) is counted under ``unmatched``.
"""

from __future__ import annotations

import time

from prometheus_client import (
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    Counter,
    Histogram,
)
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

UNMATCHED = "unmatched"
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


def route_template(scope: Scope) -> str:
    """The template of the route that handled the request; when routing did not run (the
    body-size limit answered first), the route the path would have matched."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    if isinstance(path, str):
        return path
    app = scope.get("app")
    for candidate in getattr(app, "routes", ()):
        matches = getattr(candidate, "matches", None)
        path = getattr(candidate, "path", None)
        if matches is not None and isinstance(path, str) and matches(scope)[0] is Match.FULL:
            return path
    return UNMATCHED


class HttpMetrics:
    """Add it just inside ``RequestIds``, so every answer is counted, 413s included."""

    def __init__(self, app: ASGIApp, instruments: HttpInstruments) -> None:
        self.app = app
        self.instruments = instruments

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
            method = str(scope.get("method", "?"))
            route = route_template(scope)
            self.instruments.requests.labels(method, route, str(status)).inc()
            self.instruments.latency.labels(method, route).observe(time.perf_counter() - started)
