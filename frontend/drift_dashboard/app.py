"""``create_app(settings)``: the dashboard, a FastAPI app serving HTML (Jinja2, autoescape).

Middleware, outermost first: security headers (CSP on everything), the server-side session,
then CSRF (which needs the session's token)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.staticfiles import StaticFiles
from pymongo import AsyncMongoClient
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import RedirectResponse, Response

from drift_dashboard import vendor
from drift_dashboard.api import ApiError, BackendClient
from drift_dashboard.context import DashboardContext
from drift_dashboard.csrf import CSRFMiddleware
from drift_dashboard.deps import LoginRequired
from drift_dashboard.headers import SecurityHeadersMiddleware
from drift_dashboard.oidc import TokenKeeper, make_oauth
from drift_dashboard.pages import (
    account,
    alert_actions,
    alerts,
    auth,
    baselines,
    charts,
    events,
    experiment,
    experiments,
    performance,
    permissions,
    runs,
)
from drift_dashboard.sessions import COLLECTION, SessionMiddleware, SessionStore
from drift_dashboard.settings import DashboardSettings
from drift_dashboard.templating import make_templates, render

STATIC_DIR = Path(__file__).resolve().parent / "static"

_FRIENDLY = {
    401: ("Please log in again", "Your login is no longer accepted by the server."),
    403: ("Not allowed", "You do not have access to this. Ask someone with Manage to share it."),
    404: ("Not found", "There is nothing here, or it is not shared with you."),
}


def create_app(settings: DashboardSettings) -> FastAPI:
    settings.check()
    context = DashboardContext(
        settings=settings, templates=make_templates(), oauth=make_oauth(settings)
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        mongo: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(
            settings.mongodb_url.get_secret_value(),
            timeoutMS=int(settings.mongodb_timeout_seconds * 1000),
            tz_aware=True,
        )
        store = SessionStore(
            mongo[settings.mongodb_database][COLLECTION],
            timedelta(seconds=settings.session_lifetime_seconds),
        )
        await store.ensure_indexes()
        context.mongo = mongo
        context.store = store
        context.keeper = TokenKeeper(context.oauth, store, settings.refresh_leeway_seconds)
        context.backend = BackendClient(settings.api_url, settings.api_timeout_seconds)
        try:
            yield
        finally:
            await context.backend.aclose()
            await mongo.close()

    app = FastAPI(
        title="Drift Monitor dashboard",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.dashboard = context

    app.include_router(vendor.router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    for module in (
        auth,
        experiments,
        experiment,
        charts,
        runs,
        baselines,
        permissions,
        account,
        events,
        alerts,  # the Alerts tab (issue 9)
        alert_actions,
        performance,  # the Performance tab (issue 10)
    ):
        app.include_router(module.router)

    @app.exception_handler(LoginRequired)
    async def _login_required(_: Request, exc: LoginRequired) -> Response:
        return RedirectResponse(f"/login?next={quote(exc.next_url, safe='/')}", status_code=303)

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> Response:
        if exc.status == 401 and request.scope["drift_session"].user is not None:
            request.scope["drift_session"].end()
            return RedirectResponse("/login", status_code=303)
        heading, text = _FRIENDLY.get(exc.status, ("Something went wrong", exc.detail))
        status = exc.status if exc.status in _FRIENDLY else 502
        return render(
            request,
            "errors/error.html",
            status_code=status,
            heading=heading,
            text=text,
            detail=exc.detail,
            title=heading,
        )

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        fields = ", ".join(".".join(str(p) for p in e["loc"][1:]) for e in exc.errors())
        return render(
            request,
            "errors/error.html",
            status_code=422,
            heading="Invalid request",
            text="Some values in this request are not valid.",
            detail=fields,
            title="Invalid request",
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        heading, text = _FRIENDLY.get(exc.status_code, ("Error", str(exc.detail)))
        return render(
            request,
            "errors/error.html",
            status_code=exc.status_code,
            heading=heading,
            text=text,
            detail=str(exc.detail),
            title=heading,
        )

    app.add_middleware(CSRFMiddleware, public_origin=settings.public_origin)
    app.add_middleware(SessionMiddleware, store=context.session_store, settings=settings)
    app.add_middleware(SecurityHeadersMiddleware, issuer=settings.issuer)
    return app


def app_from_env() -> FastAPI:
    """``uvicorn --factory drift_dashboard.app:app_from_env``: settings from the environment."""
    from drift_dashboard.settings import load_settings

    return create_app(load_settings())
