"""Notification tests: a real receiver on loopback, a backend allowed to reach it
(``DRIFT_OUTBOUND_ALLOW=127.0.0.1``), and the delivery loop driven step by step."""

from __future__ import annotations

import base64
import os
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
from drift_backend.notify.delivery_loop import Deliverer, outbound_for
from drift_backend.notify.message import AlertMessage, FeatureAlert
from drift_backend.settings import Settings
from drift_backend.store.database import Database, connect

from tests.conftest import Api
from tests.support.receiver import Receiver

PREFIX = "/api/v1"


def new_secret() -> str:
    return "whsec_" + base64.b64encode(os.urandom(32)).decode()


def message(experiment: dict[str, Any], key: str, **fields: Any) -> AlertMessage:
    values: dict[str, Any] = {
        "dedup_key": key,
        "experiment_id": experiment["id"],
        "experiment_name": experiment["name"],
        "rule_id": "rule-1",
        "rule_name": "dataset drift",
        "model": "churn-model",
        "status": "firing",
        "starts_at": datetime(2026, 12, 1, 12, 0, tzinfo=UTC),
        "summary": "2 of 3 features drifted",
        "run_id": "run-1",
        "features": (
            FeatureAlert(name="age", kind="drift", test="ks", p_value=0.001),
            FeatureAlert(name="income", kind="Bound"),
        ),
        "exception": None,
        "values": {"drift_share": 0.67},
    }
    values.update(fields)
    return AlertMessage(**values)


@dataclass
class Setup:
    api: Api
    db: Database
    experiment: dict[str, Any]
    made: list[Deliverer] = field(default_factory=list)

    async def target(self, who: str = "alice", **body: Any) -> dict[str, Any]:
        response = await self.api.request(
            "POST", f"{PREFIX}/experiment/{self.experiment['id']}/alert-targets", who, json=body
        )
        assert response.status_code == 201, response.text
        return dict(response.json())

    def deliverer(self, **overrides: Any) -> Deliverer:
        settings: Settings = self.api.settings.model_copy(update=overrides)
        # rng 0.5: no jitter, so the waits are the schedule's own.
        made = Deliverer(self.db, settings, outbound_for(settings), rng=lambda: 0.5)
        self.made.append(made)
        return made

    async def log(self) -> list[dict[str, Any]]:
        response = await self.api.request(
            "GET", f"{PREFIX}/experiment/{self.experiment['id']}/notifications", "alice"
        )
        assert response.status_code == 200, response.text
        items: list[dict[str, Any]] = response.json()["items"]
        return items


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as running:
        yield running


@pytest.fixture
async def setup(api_factory: Any) -> AsyncIterator[Setup]:
    api: Api = await api_factory(
        outbound_allow=["127.0.0.1"],
        public_base_url="https://drift.example.org",
        delivery_retry_seconds=[5.0, 300.0, 1800.0],
        delivery_total_timeout_seconds=2.0,
        delivery_read_timeout_seconds=1.0,
    )
    await api.register("alice")
    experiment = await api.experiment("alice")
    client = connect(api.settings.mongodb_url.get_secret_value())
    made = Setup(api, client[api.settings.mongodb_database], experiment)
    try:
        yield made
    finally:
        for deliverer in made.made:
            await deliverer.outbound.aclose()
        await client.close()
