"""CSRF and the session cookie at the HTTP level (no browser): the dashboard app alone over
ASGI, its sessions on the real SecantusDB."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx2
import pytest
from drift_backend.devstack.services import ManagedProcess, free_port
from drift_dashboard.api import BackendClient
from drift_dashboard.app import create_app
from drift_dashboard.csrf import same_origin
from drift_dashboard.sessions import COLLECTION, Session, SessionStore
from drift_dashboard.settings import load_settings
from fastapi import FastAPI
from pymongo import AsyncMongoClient

ORIGIN = "http://dash.test"


@dataclass
class Dash:
    app: FastAPI
    http: httpx2.AsyncClient

    async def session(self, **fields: Any) -> Session:
        """A stored session, as a login leaves it, with its cookie in ``http``."""
        session = Session(user={"sub": "alice", "name": "Alice"}, **fields)
        store = self.app.state.dashboard.session_store()
        await store.commit(session)
        assert session.id is not None
        self.http.cookies.set("drift_session", session.id)
        return session


@pytest.fixture
async def dash(mongodb: ManagedProcess, oidc_provider: ManagedProcess) -> AsyncIterator[Dash]:
    database = f"dash_{uuid.uuid4().hex[:10]}"
    settings = load_settings(
        mode="development",
        public_url=ORIGIN,
        api_url="http://127.0.0.1:9",  # no backend needed here
        issuer=oidc_provider.url,
        mongodb_url=mongodb.url,
        mongodb_database=database,
    )
    app = create_app(settings)
    async with (
        app.router.lifespan_context(app),
        httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app), base_url=ORIGIN) as http,
    ):
        yield Dash(app, http)
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongodb.url)
    await client.drop_database(database)
    await client.close()


async def test_logout_with_token_and_own_origin_is_accepted(dash: Dash) -> None:
    session = await dash.session()
    response = await dash.http.post(
        "/logout", data={"csrf_token": session.csrf_token}, headers={"Origin": ORIGIN}
    )
    assert response.status_code == 303
    # Local logout: the stored session is gone and the browser is told to drop the cookie.
    assert await dash.app.state.dashboard.session_store().load(session.id) is None
    assert "Max-Age=0" in response.headers["set-cookie"]


async def test_referer_stands_in_for_a_missing_origin(dash: Dash) -> None:
    session = await dash.session()
    response = await dash.http.post(
        "/logout",
        data={"csrf_token": session.csrf_token},
        headers={"Referer": f"{ORIGIN}/account"},
    )
    assert response.status_code == 303


@pytest.mark.parametrize(
    ("headers", "form"),
    [
        ({"Origin": ORIGIN}, {}),  # no token
        ({"Origin": ORIGIN}, {"csrf_token": "wrong"}),
        ({"Origin": ORIGIN, "X-CSRF-Token": "wrong"}, None),
        ({"Origin": "http://evil.test"}, "token"),  # right token, foreign origin
        ({"Referer": "http://evil.test/x"}, "token"),
        ({}, "token"),  # neither Origin nor Referer
    ],
)
async def test_state_changes_without_token_or_from_elsewhere_are_refused(
    dash: Dash, headers: dict[str, str], form: Any
) -> None:
    session = await dash.session()
    data = {"csrf_token": session.csrf_token} if form == "token" else form
    response = await dash.http.post("/logout", data=data, headers=headers)
    assert response.status_code == 403
    assert await dash.app.state.dashboard.session_store().load(session.id) is not None


async def test_a_token_without_a_stored_session_is_refused(dash: Dash) -> None:
    page = await dash.http.get("/experiments/new")  # anonymous: redirected to log in
    assert page.status_code == 303
    response = await dash.http.post(
        "/logout", data={"csrf_token": "anything"}, headers={"Origin": ORIGIN}
    )
    assert response.status_code == 403


async def test_the_header_token_works_for_htmx(dash: Dash) -> None:
    session = await dash.session()
    response = await dash.http.post(
        "/logout", headers={"Origin": ORIGIN, "X-CSRF-Token": session.csrf_token}
    )
    assert response.status_code == 303


async def test_login_only_pages_redirect_anonymous_visitors(dash: Dash) -> None:
    for path in ("/account", "/experiments/new"):
        response = await dash.http.get(path)
        assert response.status_code == 303
        assert response.headers["location"] == f"/login?next={path}"


async def test_login_never_redirects_off_site(dash: Dash) -> None:
    await dash.session()  # logged in: /login sends the user straight on
    for target in ("//evil.test/x", "https://evil.test/", "/\\evil.test"):
        response = await dash.http.get("/login", params={"next": target})
        assert response.status_code == 303
        assert response.headers["location"] == "/experiments"


def test_same_origin_rules() -> None:
    assert same_origin({b"origin": b"http://a.test"}, "http://a.test")
    assert not same_origin({b"origin": b"http://a.test:81"}, "http://a.test")
    assert not same_origin({b"origin": b"null"}, "http://a.test")
    assert same_origin({b"referer": b"http://a.test/p?q"}, "http://a.test")
    assert not same_origin({}, "http://a.test")


async def test_production_cookie_is_host_prefixed_and_secure(
    mongodb: ManagedProcess,
) -> None:
    database = f"dash_{uuid.uuid4().hex[:10]}"
    settings = load_settings(
        mode="production",
        public_url="https://dash.test",
        issuer="https://login.test",
        client_secret="a-real-secret",
        mongodb_url=mongodb.url,
        mongodb_database=database,
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        store = app.state.dashboard.session_store()
        session = Session(user={"sub": "alice"})
        await store.commit(session)
        # Used an hour ago: this request slides its expiry forward and re-sends the cookie.
        await store.collection.update_one(
            {"_id": session.key},
            {"$set": {"expires_at": datetime.now(UTC) + timedelta(hours=1)}},
        )
        async with httpx2.AsyncClient(
            transport=httpx2.ASGITransport(app=app), base_url="https://dash.test"
        ) as http:
            response = await http.get(
                "/static/app.css", headers={"Cookie": f"__Host-drift_session={session.id}"}
            )
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongodb.url)
    await client.drop_database(database)
    await client.close()
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"__Host-drift_session={session.id};")
    for flag in ("Path=/", "HttpOnly", "SameSite=Lax", "Secure"):
        assert flag in cookie
    assert "Domain" not in cookie


async def test_an_unreachable_session_store_is_a_503(oidc_provider: ManagedProcess) -> None:
    settings = load_settings(
        mode="development",
        public_url=ORIGIN,
        issuer=oidc_provider.url,
        # Nothing listens there; the driver gives up after the timeout.
        mongodb_url=f"mongodb://127.0.0.1:{free_port()}/?serverSelectionTimeoutMS=300",
        mongodb_timeout_seconds=0.5,
    )
    app = create_app(settings)
    # Start-up creates the TTL index and fails without a database: the store by hand.
    context = app.state.dashboard
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        settings.mongodb_url.get_secret_value(), timeoutMS=500
    )
    context.store = SessionStore(client["x"][COLLECTION], timedelta(hours=1))
    context.backend = BackendClient(settings.api_url, 1)
    async with httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app), base_url=ORIGIN) as http:
        response = await http.get("/static/app.css", headers={"Cookie": "drift_session=abc"})
    await client.close()
    await context.backend.aclose()
    assert response.status_code == 503
    assert "session store is unavailable" in response.text
