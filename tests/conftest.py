"""Real parts for every test: a SecantusDB process, the development OIDC provider process,
and a JWT-signing test issuer, all on loopback. Each API test gets its own database."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import httpx2
import pytest
from drift_backend.devstack.services import (
    ManagedProcess,
    fetch_token,
    free_port,
    start_mongodb,
    start_oidc_provider,
)
from drift_backend.main import create_app
from drift_backend.settings import Settings
from drift_backend.store.database import Database, connect
from pymongo import AsyncMongoClient

from tests.support.jwt_issuer import JWTIssuer
from tests.support.threads import ThreadedServer

ADMIN_GROUP = "urn:test:group:admins"
PERSONAS: dict[str, dict[str, Any]] = {
    "alice": {
        "email": "alice@example.org",
        "email_verified": True,
        "eduperson_entitlement": ["urn:test:group:team-a"],
    },
    "bob": {
        "email": "bob@example.org",
        "email_verified": True,
        "eduperson_entitlement": ["urn:test:group:team-b"],
    },
    "carol": {
        "email": "carol@example.org",
        "email_verified": False,
        "eduperson_entitlement": ["urn:test:group:team-c"],
    },
    "admin": {
        "email": "admin@example.org",
        "email_verified": True,
        "eduperson_entitlement": [ADMIN_GROUP],
    },
}


@pytest.fixture(scope="session")
def mongodb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ManagedProcess]:
    logs = tmp_path_factory.mktemp("logs")
    proc = start_mongodb(free_port(), None, log_path=logs / "secantus.log")
    yield proc
    proc.stop()


@pytest.fixture
async def db(mongodb: ManagedProcess) -> AsyncIterator[Database]:
    """A database of its own on the session's SecantusDB (the backend's client options, no
    indexes), dropped after the test. Modules that test through the API define their own."""
    client = connect(mongodb.url)
    name = f"scratch_{uuid.uuid4().hex[:10]}"
    yield client[name]
    await client.drop_database(name)
    await client.close()


@pytest.fixture(scope="session")
def oidc_provider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ManagedProcess]:
    logs = tmp_path_factory.mktemp("logs")
    users = [{"sub": name, **claims} for name, claims in PERSONAS.items()]
    proc = start_oidc_provider(free_port(), users, log_path=logs / "oidc.log")
    yield proc
    proc.stop()


@pytest.fixture(scope="session")
def issuer() -> Iterator[JWTIssuer]:
    with JWTIssuer() as jwt_issuer:
        for name, claims in PERSONAS.items():
            jwt_issuer.profile(name, **claims)
        yield jwt_issuer


def make_settings(mongodb: ManagedProcess, issuers: list[str], **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "mode": "development",
        "mongodb_url": mongodb.url,
        "mongodb_database": f"test_{uuid.uuid4().hex[:12]}",
        "trusted_issuers": issuers,
        "allow_insecure_issuers": True,
        "admin_entitlements": [ADMIN_GROUP],
        "userinfo_cache_seconds": 1,
    }
    values.update(overrides)
    return Settings(**values)


@dataclass
class Api:
    """An in-process backend on its own database, plus tokens for the test personas."""

    http: httpx2.AsyncClient
    issuer: JWTIssuer
    settings: Settings

    def auth(self, who: str | None) -> dict[str, str]:
        if who is None:
            return {}
        return {"Authorization": f"Bearer {self.issuer.token(who)}"}

    async def request(
        self, method: str, url: str, who: str | None = None, **kwargs: Any
    ) -> httpx2.Response:
        headers = {**self.auth(who), **kwargs.pop("headers", {})}
        return await self.http.request(method, url, headers=headers, **kwargs)

    async def register(self, who: str) -> dict[str, Any]:
        response = await self.request("POST", "/api/v1/user", who)
        assert response.status_code == 201, response.text
        return dict(response.json())

    async def experiment(self, who: str, **fields: Any) -> dict[str, Any]:
        body = {"name": f"exp-{uuid.uuid4().hex[:8]}", **fields}
        response = await self.request("POST", "/api/v1/experiment", who, json=body)
        assert response.status_code == 201, response.text
        return dict(response.json())


async def _drop(settings: Settings) -> None:
    mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        settings.mongodb_url.get_secret_value()
    )
    await mongo.drop_database(settings.mongodb_database)
    await mongo.close()


@contextlib.asynccontextmanager
async def in_process_backend(
    mongodb: ManagedProcess, issuer: JWTIssuer, oidc_provider: ManagedProcess, **overrides: Any
) -> AsyncIterator[Api]:
    """A backend served in process (its lifespan entered) on a fresh database, dropped after."""
    settings = make_settings(mongodb, [issuer.url, oidc_provider.url], **overrides)
    app = create_app(settings)
    lifespan = app.router.lifespan_context(app)
    await lifespan.__aenter__()
    http = httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app), base_url="http://testserver")
    try:
        yield Api(http, issuer, settings)
    finally:
        await http.aclose()
        await lifespan.__aexit__(None, None, None)
        await _drop(settings)


@pytest.fixture
async def api_factory(
    mongodb: ManagedProcess, issuer: JWTIssuer, oidc_provider: ManagedProcess
) -> AsyncIterator[Any]:
    """Build in-process backends with setting overrides; each on a fresh database."""
    async with contextlib.AsyncExitStack() as stack:

        async def build(**overrides: Any) -> Api:
            return await stack.enter_async_context(
                in_process_backend(mongodb, issuer, oidc_provider, **overrides)
            )

        yield build


@pytest.fixture
async def api(api_factory: Any) -> Api:
    built: Api = await api_factory()
    return built


@pytest.fixture(scope="session")
def live_backend(
    mongodb: ManagedProcess, issuer: JWTIssuer, oidc_provider: ManagedProcess
) -> Iterator[ThreadedServer]:
    """A backend served over real HTTP (uvicorn) for client and compatibility tests."""
    settings = make_settings(mongodb, [issuer.url, oidc_provider.url])
    with ThreadedServer(create_app(settings)) as server:
        yield server


@pytest.fixture(scope="session")
def opaque_token(oidc_provider: ManagedProcess) -> Any:
    def get(subject: str) -> str:
        token = fetch_token(oidc_provider.url, subject, client_secret="test-client-secret")
        return str(token["access_token"])

    return get
