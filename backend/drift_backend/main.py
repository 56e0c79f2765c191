"""The composition root: ``create_app(settings)`` builds the FastAPI app around injected
settings, and :func:`job_kinds` is the table of job kinds handed to every worker (the one
inside the backend and the ``worker`` command's), so ``worker/`` never imports ``checks/``."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Mapping
from typing import Any

import httpx2
from fastapi import APIRouter, FastAPI

from drift_backend.alerts.endpoints import router as alerts_router
from drift_backend.alerts.evaluation import EVALUATE_JOB, EVALUATE_KIND
from drift_backend.alerts.evaluation import tick as alerts_tick
from drift_backend.api import health
from drift_backend.api.errors import install_error_handlers
from drift_backend.api.limits import BodySizeLimit
from drift_backend.api.request_id import RequestIds
from drift_backend.api.responses import install_openapi
from drift_backend.auth.issuers import IssuerClient
from drift_backend.auth.tokens import TokenVerifier
from drift_backend.baselines.endpoints import router as baselines_router
from drift_backend.charts import run_counts
from drift_backend.charts.endpoints import router as charts_router
from drift_backend.checks.endpoints import router as checks_router
from drift_backend.checks.jobs import CHECK_JOB
from drift_backend.checks.service import CHECK_KIND
from drift_backend.context import AppContext
from drift_backend.drifts.endpoints import router as drifts_router
from drift_backend.drifts.sweeper import sweep_forever
from drift_backend.events import service as events
from drift_backend.events.endpoints import router as events_router
from drift_backend.events.hub import EventHub
from drift_backend.experiments.endpoints import router as experiments_router
from drift_backend.idempotency.middleware import Idempotency
from drift_backend.jobs.handlers import JobKind
from drift_backend.memory import MIB, retain_freed_memory
from drift_backend.metrics import endpoints as metrics
from drift_backend.metrics.http import HttpMetrics
from drift_backend.notify.endpoints import router as notify_router
from drift_backend.performance import upgrade as performance_upgrade
from drift_backend.performance.endpoints import router as performance_router
from drift_backend.performance.recount import periodic as performance_periodic
from drift_backend.settings import Settings
from drift_backend.store.cancellation import raise_if_cancelled
from drift_backend.store.database import connect, ensure_indexes
from drift_backend.users.cache import UserCache
from drift_backend.users.endpoints import router as users_router
from drift_backend.worker.service import Periodic, running_worker

log = logging.getLogger(__name__)
API_PREFIX = "/api/v1"


def job_kinds() -> Mapping[str, JobKind]:
    """Every kind of job a worker runs, by the ``kind`` its producer enqueues it under."""
    return {CHECK_KIND: CHECK_JOB, EVALUATE_KIND: EVALUATE_JOB}


def worker_periodic(settings: Settings) -> list[Periodic]:
    """What every worker does on a clock besides its jobs: the alerts' tick."""
    return [
        Periodic("alerts tick", settings.alerts_tick_seconds, alerts_tick),
        # recount windows a dead batch left uncounted; write pending decisions.
        Periodic(
            "performance tick",
            settings.performance_tick_seconds,
            performance_periodic(settings),
        ),
    ]


async def _create_indexes(context: AppContext) -> None:
    delay = 0.5
    while True:
        try:
            await ensure_indexes(context.db)
            await events.prepare(context.db, context.settings.events_ttl_seconds)
            # perf: the timeline's run counts, for runs stored before they existed.
            await run_counts.prepare(context.db)
            # predictions stored one document each (before the batches) into batches.
            await performance_upgrade.prepare(context.db)
        except Exception:  # MongoDB may start after us; readiness says 503 meanwhile
            raise_if_cancelled()
            log.warning("creating indexes failed; retrying in %.1f s", delay, exc_info=True)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10.0)
        else:
            context.indexes_ready = True
            return


#: Shutdown waits this long for each of its steps that touch the database.
STOP_SECONDS = 10.0


async def _within_bound(what: str, awaitables: list[asyncio.Future[Any]]) -> None:
    """Wait for shutdown work, within a bound: with the database unreachable, PyMongo can
    hold a cancelled operation in server selection, and its close can wait on a server
    monitor that never finishes; a shutdown must not hang on either. Not ``wait_for``: work
    stuck that way may not end when cancelled either; it is left to end if it ever does."""
    _, pending = await asyncio.wait(awaitables, timeout=STOP_SECONDS)
    if pending:
        log.warning("%s did not end within %.0f s; leaving it", what, STOP_SECONDS)


def build_context(settings: Settings) -> AppContext:
    mongo = connect(
        settings.mongodb_url.get_secret_value(), timeout_seconds=settings.mongodb_timeout_seconds
    )
    http = httpx2.AsyncClient(timeout=settings.issuer_timeout_seconds, follow_redirects=False)
    issuers = IssuerClient(
        issuers=settings.trusted_issuers,
        http=http,
        jwks_ttl=settings.jwks_cache_seconds,
        userinfo_ttl=settings.userinfo_cache_seconds,
        jwks_refresh_min=settings.jwks_refresh_min_seconds,
    )
    return AppContext(
        settings=settings,
        mongo=mongo,
        db=mongo[settings.mongodb_database],
        http=http,
        verifier=TokenVerifier(settings, issuers),
        users=UserCache(settings.user_cache_seconds),
    )


def _event_hub(context: AppContext) -> EventHub:
    """The process's one tailer of the events, shared by all its streams."""
    settings = context.settings
    return EventHub(
        context.db,
        poll_seconds=settings.events_poll_seconds,
        queue_size=settings.events_queue_size,
        max_streams=settings.events_max_streams,
        # Longer than any insert may take (each operation is bounded by the timeout): a
        # hole in the numbers that lasts longer is an event that will never appear.
        gap_seconds=settings.mongodb_timeout_seconds + 1.0,
        change_streams=settings.change_streams,
    )


def create_app(settings: Settings) -> FastAPI:
    settings.check()
    # Before the threads start: uploads and batches reuse freed memory (drift_backend.memory).
    retain_freed_memory(settings.retain_freed_memory_mb * MIB)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        context = build_context(settings)
        app.state.context = context
        app.state.event_hub = hub = _event_hub(context)
        stop_events = asyncio.Event()
        tasks = [
            asyncio.create_task(_create_indexes(context)),
            asyncio.create_task(
                sweep_forever(
                    context.db, settings.run_timeout_seconds, settings.sweep_interval_seconds
                )
            ),
            asyncio.create_task(hub.run(stop_events)),
        ]
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(
                asyncio.shield(tasks[0]), timeout=settings.startup_index_wait_seconds
            )
        try:
            async with contextlib.AsyncExitStack() as stack:
                if settings.embedded_worker:
                    await stack.enter_async_context(
                        running_worker(
                            context.db, settings, job_kinds(), periodic=worker_periodic(settings)
                        )
                    )
                yield
        finally:
            stop_events.set()
            for task in tasks:
                task.cancel()
            await _within_bound("background work", list(tasks))
            await context.http.aclose()
            await _within_bound(
                "closing the database client", [asyncio.ensure_future(context.mongo.close())]
            )

    app = FastAPI(
        title="Drift Monitor API",
        version="1.0.0",
        description="Drift runs, experiments and users; wire-compatible with drift-monitor 1.1.1.",
        openapi_url=f"{API_PREFIX}/openapi.json",
        docs_url=f"{API_PREFIX}/docs",
        redoc_url=None,
        lifespan=lifespan,
    )
    install_error_handlers(app)
    v1 = APIRouter(prefix=API_PREFIX)
    v1.include_router(users_router)
    v1.include_router(experiments_router)
    v1.include_router(drifts_router)
    v1.include_router(baselines_router)
    v1.include_router(checks_router)
    v1.include_router(charts_router)
    v1.include_router(events_router)
    v1.include_router(notify_router)
    v1.include_router(alerts_router)
    v1.include_router(performance_router)
    app.include_router(v1)
    app.include_router(health.router)
    # Prometheus /metrics (metrics/): the route, its HTTP middleware below.
    metrics_state = metrics.install(app, settings)
    # Added first, so it runs inside BodySizeLimit: the bodies it fingerprints are limited too.
    app.add_middleware(Idempotency)
    install_openapi(app)
    app.add_middleware(
        BodySizeLimit,
        max_bytes=settings.max_body_bytes,
        upload_bytes=settings.max_upload_bytes,
    )
    # Inside RequestIds only: every answer (413s included) is counted by route template.
    app.add_middleware(HttpMetrics, instruments=metrics_state.http)
    # Keep this the last middleware added, so it is the outermost: every answer (413s from
    # the body limit included) gets an id, and nothing escapes it as a plain-text 500.
    app.add_middleware(RequestIds)
    return app


def app_from_env() -> FastAPI:
    """``uvicorn --factory drift_backend.main:app_from_env``: settings from the environment."""
    from drift_backend.settings import load_settings

    return create_app(load_settings())
