"""Fixtures for the API behaviour suite: a backend shared by a whole module (for the large
parametrised matrices, where a fresh app per case would be too slow), and a raw database
handle on an ``Api``'s own database."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from drift_backend.devstack.services import ManagedProcess
from drift_backend.store.database import Database, connect

from tests.conftest import Api, in_process_backend


@pytest.fixture(scope="module")
async def shared_api(
    mongodb: ManagedProcess, issuer: Any, oidc_provider: ManagedProcess
) -> AsyncIterator[Api]:
    """One backend (own database) for every test of a module; tests must not assume it empty."""
    async with in_process_backend(mongodb, issuer, oidc_provider) as api:
        yield api


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
