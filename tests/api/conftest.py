"""Fixtures for the API behaviour suite: a backend shared by a whole module (for the large
parametrised matrices, where a fresh app per case would be too slow), and a raw database
handle on an ``Api``'s own database."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from drift_backend.devstack.services import ManagedProcess
from drift_backend.store.database import Database, connect

from tests.conftest import Api


@pytest.fixture(scope="module")
async def shared_api(
    mongodb: ManagedProcess, issuer: Any, oidc_provider: ManagedProcess
) -> AsyncIterator[Api]:
    """One backend (own database) for every test of a module; tests must not assume it empty."""
    import httpx2
    from drift_backend.main import create_app

    from tests.conftest import _drop, make_settings

    settings = make_settings(mongodb, [issuer.url, oidc_provider.url])
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
async def raw_db() -> AsyncIterator[Any]:
    """``raw_db(api)``: a PyMongo handle on the api's database (to age documents, etc.)."""
    clients: list[Any] = []

    def open_db(api: Api) -> Database:
        client = connect(api.settings.mongodb_url.get_secret_value())
        clients.append(client)
        return client[api.settings.mongodb_database]

    yield open_db
    for client in clients:
        await client.close()
