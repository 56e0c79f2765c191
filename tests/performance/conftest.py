"""Fixtures of the performance tests."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Api


@pytest.fixture
async def patient(api_factory: Any) -> Api:
    """A backend whose database operations may take long: these tests are about counting
    and estimates, not speed, and write thousands of score-histogram paths (and concurrent
    compare-and-swaps) to the test database, which a loaded machine slows past the default
    5 s operation timeout."""
    built: Api = await api_factory(mongodb_timeout_seconds=60)
    return built
