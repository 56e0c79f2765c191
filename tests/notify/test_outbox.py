"""The outbox contract between alerts and notify: a notification is queued once per
``dedup_key``, however often the decision that made it is evaluated again."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from drift_backend.notify import service
from drift_backend.notify.message import AlertMessage, FeatureAlert
from drift_backend.store.database import Database, ensure_indexes


@pytest.fixture
async def db(db: Database) -> Database:
    """The scratch database (``tests/conftest.py``) with the backend's indexes."""
    await ensure_indexes(db)
    return db


def _message(key: str, experiment: str = "exp-1") -> AlertMessage:
    return AlertMessage(
        dedup_key=key,
        experiment_id=experiment,
        experiment_name="churn",
        rule_id="rule-1",
        rule_name="dataset drift",
        model="m1",
        status="firing",
        starts_at=datetime(2026, 12, 1, tzinfo=UTC),
        summary="2 of 3 features drifted",
        features=(FeatureAlert(name="age", kind="drift", test="ks", p_value=0.001),),
    )


async def test_a_notification_is_queued_once_per_dedup_key(db: Database) -> None:
    assert await service.enqueue(db, _message("k1")) is True
    assert await service.enqueue(db, _message("k1")) is False
    assert await service.enqueue(db, _message("k2")) is True
    await service.enqueue(db, _message("k3", experiment="exp-2"))

    queued = await service.notifications(db, "exp-1")
    assert sorted(doc["_id"] for doc in queued) == ["k1", "k2"]
    first = next(doc for doc in queued if doc["_id"] == "k1")
    assert first["group_key"] == "rule-1:m1"
    assert first["state"] == "pending"
    assert first["features"] == [
        {
            "name": "age",
            "kind": "drift",
            "test": "ks",
            "statistic": None,
            "p_value": 0.001,
            "distance": None,
            "threshold": None,
        }
    ]
