"""Alerts to a real receiver, the whole way: a drifting check fires one signed notification
with Flare's fields; another drifting check within ``repeat_interval`` sends nothing; a clean
check sends the resolution. The rule, the worker's evaluation and tick, the outbox, the
delivery loop and /metrics are all the service's own; only the receiver is ours on loopback."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from drift_backend.devstack.services import ManagedProcess
from drift_backend.store.database import Database, connect
from prometheus_client.parser import text_string_to_metric_families
from standardwebhooks.webhooks import Webhook

from tests.alerts.conftest import evaluated, eventually
from tests.alerts.test_flow import PROMPT, _check
from tests.checks.test_check_api import frame
from tests.conftest import Api, in_process_backend
from tests.notify.conftest import new_secret
from tests.support.receiver import Receiver


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as running:
        yield running


@pytest.fixture
async def delivering(
    mongodb: ManagedProcess, issuer: Any, oidc_provider: ManagedProcess
) -> AsyncIterator[tuple[Api, Database]]:
    async with in_process_backend(
        mongodb,
        issuer,
        oidc_provider,
        embedded_worker=True,
        job_lease_seconds=5,
        alerts_tick_seconds=0.1,
        delivery_poll_seconds=0.05,
        outbound_allow=["127.0.0.1"],
    ) as api:
        await api.register("alice")
        client = connect(api.settings.mongodb_url.get_secret_value())
        try:
            yield api, client[api.settings.mongodb_database]
        finally:
            await client.close()


async def _delivered(api: Api, experiment_id: str, count: int) -> None:
    """The delivery log holds ``count`` notifications, each delivered."""

    async def log() -> list[dict[str, Any]]:
        r = await api.request("GET", f"/api/v1/experiment/{experiment_id}/notifications", "alice")
        assert r.status_code == 200, r.text
        items: list[dict[str, Any]] = r.json()["items"]
        return items

    await eventually(
        log,
        lambda items: len(items) == count and all(i["state"] == "delivered" for i in items),
        f"{count} notifications delivered",
    )


async def test_a_drifting_check_reaches_the_webhook_once_then_its_resolution(
    delivering: tuple[Api, Database], receiver: Receiver
) -> None:
    api, db = delivering
    exp = await api.experiment("alice")
    base = f"/api/v1/experiment/{exp['id']}"
    # One of the three features drifts: the dataset drifts from a third of them.
    r = await api.request("PATCH", base, "alice", json={"drift_config": {"drift_share": 0.3}})
    assert r.status_code == 200, r.text
    r = await api.request(
        "POST",
        f"{base}/baseline",
        "alice",
        params={"model": "m1"},
        json={"columns": frame(1, 3000)},
    )
    assert r.status_code == 201, r.text
    secret = new_secret()
    r = await api.request(
        "POST",
        f"{base}/alert-targets",
        "alice",
        json={"name": "hook", "kind": "webhook", "url": receiver.url(), "secret": secret},
    )
    assert r.status_code == 201, r.text
    r = await api.request(
        "POST",
        f"{base}/alert-rules",
        "alice",
        json={"name": "drift", "condition": {"type": "dataset_drift"}, **PROMPT},
    )
    assert r.status_code == 201, r.text

    drifting = await _check(api, exp, shift=0.6, seed=2)
    [request] = await receiver.wait_for(1)
    body = Webhook(secret).verify(request.body, request.headers)  # raises unless signed so
    assert body["status"] == "firing"
    assert body["model_name"] == "m1"
    assert [(f["name"], f["kind"]) for f in body["features"]] == [("x", "drift")]
    assert body["exception"] is None
    assert body["run_id"] == drifting["id"]
    first_id = request.headers["webhook-id"]

    await _delivered(api, exp["id"], 1)
    # What /metrics says meanwhile: the alert firing, its delivery done.
    scraped = await api.request("GET", "/metrics")
    assert scraped.status_code == 200, scraped.text
    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(scraped.text)
        for sample in family.samples
    }
    assert samples[("drift_monitor_alerts_firing", (("experiment", exp["name"]),))] == 1
    assert samples[("drift_monitor_deliveries", (("state", "delivered"),))] == 1

    again = await _check(api, exp, shift=0.6, seed=3)
    await evaluated(db, again["id"])
    await _delivered(api, exp["id"], 1)  # nothing new was queued: nothing more can be sent
    assert len(receiver.requests) == 1

    await _check(api, exp, shift=0.0, seed=4)
    requests = await receiver.wait_for(2)
    resolved = Webhook(secret).verify(requests[1].body, requests[1].headers)
    assert resolved["status"] == "resolved"
    assert resolved["ends_at"] is not None
    assert requests[1].headers["webhook-id"] != first_id
    await _delivered(api, exp["id"], 2)
    assert len(receiver.requests) == 2
