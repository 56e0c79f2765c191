"""``GET /metrics``: Prometheus text format, outside ``/api/v1`` and not routed by Traefik
(Prometheus scrapes each backend replica directly). It needs ``Authorization: Bearer
<DRIFT_METRICS_TOKEN>``; production refuses to start without a token, development without
one leaves the route open."""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST

from drift_backend.api.deps import ContextDep, SettingsDep
from drift_backend.errors import Unauthorized
from drift_backend.metrics.exposition import render
from drift_backend.metrics.http import HttpInstruments
from drift_backend.metrics.service import Scraper
from drift_backend.settings import Settings

router = APIRouter(tags=["metrics"])


@dataclass
class MetricsState:
    """What the app keeps for ``/metrics``: its HTTP instruments and the scrape cache."""

    http: HttpInstruments
    scraper: Scraper


def install(app: FastAPI, settings: Settings) -> MetricsState:
    """The ``/metrics`` route and its state; the caller adds the HTTP middleware
    (``metrics.http.HttpMetrics``) where it belongs in the middleware order."""
    state = MetricsState(HttpInstruments(), Scraper.from_settings(settings))
    app.state.metrics = state
    app.include_router(router)
    return state


async def get_state(request: Request) -> MetricsState:
    state: MetricsState = request.app.state.metrics
    return state


async def require_metrics_token(request: Request, settings: SettingsDep) -> None:
    expected = settings.metrics_token
    if expected is None:  # development only: production refuses to start without one
        return
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized(
            "/metrics needs 'Authorization: Bearer <metrics token>'", error="invalid_request"
        )
    # Constant time: the comparison must not tell how much of a guess was right.
    if not hmac.compare_digest(
        token.strip().encode("utf-8"), expected.get_secret_value().encode("utf-8")
    ):
        raise Unauthorized("wrong metrics token")


MetricsStateDep = Annotated[MetricsState, Depends(get_state)]
MetricsToken = Annotated[None, Depends(require_metrics_token)]


@router.get("/metrics", include_in_schema=False)
async def metrics(_: MetricsToken, state: MetricsStateDep, context: ContextDep) -> Response:
    """This process's HTTP metrics, and the drift, run and queue gauges from MongoDB."""
    samples = await state.scraper.samples(context.db)
    body = render(samples, [state.http.registry])
    return Response(body, media_type=CONTENT_TYPE_LATEST)
