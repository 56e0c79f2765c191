"""A backend with an embedded worker shared by a module's tests (a worker's process pool takes
seconds to start); each test still gets its own experiment and baseline."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx2
import pytest
from drift_backend.devstack.services import ManagedProcess
from drift_backend.main import create_app

from tests.conftest import Api, _drop, make_settings


@pytest.fixture(scope="module")
async def worker_api(
    mongodb: ManagedProcess, issuer: Any, oidc_provider: ManagedProcess
) -> AsyncIterator[Api]:
    settings = make_settings(
        mongodb, [issuer.url, oidc_provider.url], embedded_worker=True, job_lease_seconds=5
    )
    app = create_app(settings)
    lifespan = app.router.lifespan_context(app)
    await lifespan.__aenter__()
    http = httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app), base_url="http://testserver")
    api = Api(http, issuer, settings)
    await api.register("alice")
    try:
        yield api
    finally:
        await http.aclose()
        await lifespan.__aexit__(None, None, None)
        await _drop(settings)
