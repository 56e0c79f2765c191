"""Application factory: ``create_app(settings)`` builds the FastAPI app around injected settings."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

import httpx2
from fastapi import APIRouter, FastAPI

from drift_backend.api import health
from drift_backend.api.limits import BodySizeLimit
from drift_backend.api.responses import install_openapi
from drift_backend.auth.issuers import IssuerClient
from drift_backend.auth.tokens import TokenVerifier
from drift_backend.checks.endpoints import router as checks_router
from drift_backend.context import AppContext, UserCache
from drift_backend.drifts.endpoints import router as drifts_router
from drift_backend.errors import install_error_handlers
from drift_backend.experiments.endpoints import router as experiments_router
from drift_backend.settings import Settings
from drift_backend.store.database import connect, ensure_indexes
from drift_backend.users.endpoints import router as users_router
from drift_backend.worker.service import running_worker
from drift_backend.worker.sweeper import sweep_forever

log = logging.getLogger(__name__)
API_PREFIX = "/api/v1"


async def _create_indexes(context: AppContext) -> None:
    delay = 0.5
    while True:
        try:
            await ensure_indexes(context.db)
        except Exception:  # MongoDB may start after us; readiness says 503 meanwhile
            log.warning("creating indexes failed; retrying in %.1f s", delay, exc_info=True)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10.0)
        else:
            context.indexes_ready = True
            return


def build_context(settings: Settings) -> AppContext:
    mongo = connect(settings.mongodb_url.get_secret_value())
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


def create_app(settings: Settings) -> FastAPI:
    settings.check()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        context = build_context(settings)
        app.state.context = context
        tasks = [
            asyncio.create_task(_create_indexes(context)),
            asyncio.create_task(
                sweep_forever(
                    context.db, settings.run_timeout_seconds, settings.sweep_interval_seconds
                )
            ),
        ]
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(
                asyncio.shield(tasks[0]), timeout=settings.startup_index_wait_seconds
            )
        try:
            async with contextlib.AsyncExitStack() as stack:
                if settings.embedded_worker:
                    await stack.enter_async_context(running_worker(context.db, settings))
                yield
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await context.http.aclose()
            await context.mongo.close()

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
    v1.include_router(checks_router)
    app.include_router(v1)
    app.include_router(health.router)
    install_openapi(app)
    app.add_middleware(
        BodySizeLimit,
        max_bytes=settings.max_body_bytes,
        upload_bytes=settings.max_upload_bytes,
    )
    return app


def app_from_env() -> FastAPI:
    """``uvicorn --factory drift_backend.main:app_from_env``: settings from the environment."""
    from drift_backend.settings import load_settings

    return create_app(load_settings())
