"""A backend with an embedded worker shared by a module's tests (a worker's process pool takes
seconds to start); each test still gets its own experiment and baseline."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from drift_backend.devstack.services import ManagedProcess

from tests.conftest import Api, in_process_backend


@pytest.fixture(scope="module")
async def worker_api(
    mongodb: ManagedProcess, issuer: Any, oidc_provider: ManagedProcess
) -> AsyncIterator[Api]:
    async with in_process_backend(
        mongodb, issuer, oidc_provider, embedded_worker=True, job_lease_seconds=5
    ) as api:
        await api.register("alice")
        yield api
