"""Two servers on one database apply one model's batches: each takes the model's lease in
turn, catches up on what the other applied, and every batch counts once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from drift_backend.performance import repository, service
from drift_backend.performance.windows import Window
from drift_backend.store.database import Database, connect

from tests.conftest import Api
from tests.performance.test_recount import DAY, _data, _labels, _predictions, _same

LIMITS = service.Limits(max_rows=10_000, max_classes=100, unlabelled_ttl_seconds=86_400.0)
RULES = service.Rules(min_coverage=0.8, tolerance=0.05, alpha=0.05)


@pytest.fixture
async def servers(api: Api) -> AsyncIterator[tuple[Database, Database]]:
    """Two database handles from two clients: two processes' worth of appliers."""
    url = api.settings.mongodb_url.get_secret_value()
    first, second = connect(url, timeout_seconds=60), connect(url, timeout_seconds=60)
    name = api.settings.mongodb_database
    yield first[name], second[name]
    await first.close()
    await second.close()


async def _windows(db: Database, model: str) -> list[dict[str, Any]]:
    answer = await service.performance(
        db, "exp", model, Window.day, DAY, DAY + timedelta(days=2), RULES
    )
    windows: list[dict[str, Any]] = answer["windows"]
    return windows


async def test_two_servers_apply_one_model_once(servers: tuple[Database, Database]) -> None:
    one, two = servers
    d = _data(600)
    parts = [slice(k, k + 100) for k in range(0, 600, 100)]
    wrong = _labels(d, slice(0, 300), 1 - d["true"][:300])
    # The batch computation: one server, one batch at a time.
    for rows in parts:
        await service.record_predictions(one, LIMITS, "exp", "whole", _predictions(d, rows))
    await service.record_labels(one, LIMITS, "exp", "whole", wrong)
    for rows in parts:
        await service.record_labels(one, LIMITS, "exp", "whole", _labels(d, rows))

    # The same batches from both servers at once (the model's first batches race too).
    answers = await asyncio.gather(
        *[
            service.record_predictions((one, two)[k % 2], LIMITS, "exp", "m", _predictions(d, rows))
            for k, rows in enumerate(parts)
        ]
    )
    assert sum(a["recorded"] for a in answers) == 600
    await service.record_labels(two, LIMITS, "exp", "m", wrong)
    labelled = await asyncio.gather(
        *[
            service.record_labels((two, one)[k % 2], LIMITS, "exp", "m", _labels(d, rows))
            for k, rows in enumerate(parts)
        ]
    )
    assert sum(a["changed"] for a in labelled) == int(
        (d["true"][:300] != 1 - d["true"][:300]).sum()
    )
    assert sum(a["labelled"] for a in labelled) == 300
    _same(await _windows(one, "m"), await _windows(one, "whole"))
    _same(await _windows(two, "m"), await _windows(one, "whole"))
    model = await repository.get_model(one, "exp", "m")
    assert model is not None
    assert model["applied"] == model["stored"] == 13
    assert model["lease"] is None
