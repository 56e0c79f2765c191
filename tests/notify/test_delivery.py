"""Durable delivery to a real receiver: once, signed, with Flare's fields; retried through a
receiver that is down, failing or hanging, with the same ``webhook-id``; nothing lost when a
worker dies mid-delivery. The loop is driven step by step with its clock moved forward, so
no test waits for a retry."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timedelta

from drift_backend.main import job_kinds
from drift_backend.notify import service
from drift_backend.schemas import utcnow
from drift_backend.worker.service import running_worker
from standardwebhooks.webhooks import Webhook

from tests.notify.conftest import Setup, message, new_secret
from tests.support.receiver import Receiver, Reply


async def test_a_notification_arrives_once_signed_with_flares_fields(
    setup: Setup, receiver: Receiver
) -> None:
    secret = new_secret()
    await setup.target(name="hook", kind="webhook", url=receiver.url(), secret=secret)
    await service.enqueue(setup.db, message(setup.experiment, "n-1"))
    deliverer = setup.deliverer()

    assert await deliverer.expand() == 1
    assert await deliverer.expand() == 0  # handed to its targets once
    assert await deliverer.deliver_one() is True
    assert await deliverer.deliver_one() is False  # nothing more is due

    [request] = receiver.requests
    body = Webhook(secret).verify(request.body, request.headers)  # raises if not valid
    assert request.headers["webhook-id"] == "n-1"
    assert body["model_name"] == "churn-model"
    assert body["features"][:2] == [
        {"name": "age", "kind": "drift", "test": "ks", "p_value": 0.001},
        {"name": "income", "kind": "Bound"},
    ]
    assert body["exception"] is None
    assert body["status"] == "firing"
    assert body["experiment"] == {
        "id": setup.experiment["id"],
        "name": setup.experiment["name"],
    }
    assert body["rule"] == {"id": "rule-1", "name": "dataset drift"}
    assert body["run_id"] == "run-1"
    assert body["run_url"] == (
        f"https://drift.example.org/experiments/{setup.experiment['id']}/runs/run-1"
    )
    assert body["starts_at"] == "2026-12-01T12:00:00Z"
    assert body["values"] == {"drift_share": 0.67}

    [logged] = await setup.log()
    assert logged["state"] == "delivered"
    [delivery] = logged["deliveries"]
    assert delivery["state"] == "delivered"
    assert delivery["attempts"] == 1
    assert delivery["last"]["status_code"] == 200
    assert delivery["last"]["excerpt"] == "ok"
    assert "secret" not in json.dumps(logged)


async def test_receiver_down_failing_and_hanging_then_up_gets_it_once(
    setup: Setup, receiver: Receiver
) -> None:
    await setup.target(name="hook", kind="webhook", url=receiver.url(), secret=new_secret())
    await service.enqueue(setup.db, message(setup.experiment, "n-retry"))
    deliverer = setup.deliverer()
    await deliverer.expand()
    now = utcnow()

    receiver.down()  # connection refused
    assert await deliverer.deliver_one(now)
    assert await deliverer.deliver_one(now) is False  # not due again before its retry
    receiver.up()
    receiver.reply(Reply(500, b"broken"), Reply(hang=True))
    now += timedelta(seconds=5)
    assert await deliverer.deliver_one(now)  # 500
    now += timedelta(seconds=300)
    assert await deliverer.deliver_one(now)  # hangs: the read times out
    now += timedelta(seconds=1800)
    assert await deliverer.deliver_one(now)  # 200
    assert await deliverer.deliver_one(now + timedelta(days=1)) is False

    ids = {request.headers["webhook-id"] for request in receiver.requests}
    assert ids == {"n-retry"}  # the same id on every attempt: receivers can de-duplicate
    assert len(receiver.requests) == 3  # 500, the hang, the success (the refusal got none)
    [logged] = await setup.log()
    [delivery] = logged["deliveries"]
    assert delivery["state"] == "delivered"
    assert delivery["attempts"] == 4
    outcomes = [(a["outcome"], a["status_code"]) for a in delivery["history"]]
    assert outcomes == [("retry", None), ("retry", 500), ("retry", None), ("delivered", 200)]
    assert "connection failed" in delivery["history"][0]["error"]
    assert delivery["history"][2]["error"] == "timed out"


async def test_retries_follow_the_schedule_then_give_up(setup: Setup, receiver: Receiver) -> None:
    await setup.target(name="hook", kind="webhook", url=receiver.url(), secret=new_secret())
    await service.enqueue(setup.db, message(setup.experiment, "n-give-up"))
    deliverer = setup.deliverer()
    await deliverer.expand()
    receiver.reply(*[Reply(503)] * 10)
    now = utcnow()
    waits = []
    for _ in range(4):  # the first attempt and the schedule's three retries
        assert await deliverer.deliver_one(now)
        [delivery] = (await setup.log())[0]["deliveries"]
        if delivery["next_attempt_at"] is None:
            break
        due = delivery["next_attempt_at"]
        at = datetime.fromisoformat(due)
        waits.append(round((at - now).total_seconds()))
        now = at
    assert waits == [5, 300, 1800]
    assert delivery["state"] == "failed"
    assert "gave up after 4 attempts" in delivery["last"]["error"]
    assert len(receiver.requests) == 4


async def test_retry_after_is_honoured(setup: Setup, receiver: Receiver) -> None:
    await setup.target(name="hook", kind="webhook", url=receiver.url(), secret=new_secret())
    await service.enqueue(setup.db, message(setup.experiment, "n-429"))
    deliverer = setup.deliverer()
    await deliverer.expand()
    receiver.reply(Reply(429, headers={"Retry-After": "120"}))
    now = utcnow()
    assert await deliverer.deliver_one(now)
    assert await deliverer.deliver_one(now + timedelta(seconds=60)) is False  # not after 5 s
    assert await deliverer.deliver_one(now + timedelta(seconds=121))
    assert [r.headers["webhook-id"] for r in receiver.requests] == ["n-429", "n-429"]


async def test_a_4xx_fails_at_once_and_410_disables_the_target(
    setup: Setup, receiver: Receiver
) -> None:
    target = await setup.target(
        name="hook", kind="webhook", url=receiver.url(), secret=new_secret()
    )
    await service.enqueue(setup.db, message(setup.experiment, "n-400"))
    await service.enqueue(setup.db, message(setup.experiment, "n-410"))
    deliverer = setup.deliverer()
    await deliverer.expand()
    receiver.reply(Reply(400, b"bad"), Reply(410, b"gone"))
    now = utcnow()
    assert await deliverer.deliver_one(now)
    assert await deliverer.deliver_one(now)
    assert await deliverer.deliver_one(now + timedelta(days=1)) is False
    states = {item["id"]: item["deliveries"][0]["state"] for item in await setup.log()}
    assert states == {"n-400": "failed", "n-410": "failed"}
    response = await setup.api.request(
        "GET",
        f"/api/v1/experiment/{setup.experiment['id']}/alert-targets/{target['id']}",
        "alice",
    )
    assert response.json()["enabled"] is False
    assert "410" in response.json()["disabled_reason"]


async def test_a_worker_killed_mid_delivery_loses_nothing(setup: Setup, receiver: Receiver) -> None:
    await setup.target(name="hook", kind="webhook", url=receiver.url(), secret=new_secret())
    await service.enqueue(setup.db, message(setup.experiment, "n-kill"))
    # Long timeouts: the first worker is killed while its request is in flight.
    first = setup.deliverer(delivery_total_timeout_seconds=60, delivery_read_timeout_seconds=60)
    await first.expand()
    receiver.reply(Reply(hang=True))
    now = utcnow()
    sending = asyncio.create_task(first.deliver_one(now))
    await receiver.wait_for(1)
    sending.cancel()  # the worker dies after its claim, mid-request
    await asyncio.gather(sending, return_exceptions=True)
    receiver.release()

    second = setup.deliverer()
    assert await second.deliver_one(now) is False  # leased: not sent twice meanwhile
    # The lease (DRIFT_DELIVERY_LEASE_SECONDS, at least the request's whole timeout) ran out.
    assert await second.deliver_one(now + timedelta(minutes=10))
    requests = await receiver.wait_for(2)
    assert [r.headers["webhook-id"] for r in requests] == ["n-kill", "n-kill"]
    [logged] = await setup.log()
    assert logged["deliveries"][0]["state"] == "delivered"
    assert logged["deliveries"][0]["attempts"] == 2


async def test_the_worker_delivers_beside_its_jobs(setup: Setup, receiver: Receiver) -> None:
    await setup.target(name="hook", kind="webhook", url=receiver.url(), secret=new_secret())
    settings = setup.api.settings.model_copy(update={"delivery_poll_seconds": 0.05})
    async with running_worker(setup.db, settings, job_kinds(), processes=1):
        await service.enqueue(setup.db, message(setup.experiment, "n-loop"))
        [request] = await receiver.wait_for(1)
    assert request.headers["webhook-id"] == "n-loop"


async def test_deliveries_go_to_the_named_targets_only(setup: Setup, receiver: Receiver) -> None:
    one = await setup.target(name="one", kind="zapier", url=receiver.url("/one"))
    await setup.target(name="two", kind="zapier", url=receiver.url("/two"))
    await service.enqueue(setup.db, message(setup.experiment, "n-named", target_ids=(one["id"],)))
    await service.enqueue(setup.db, message(setup.experiment, "n-all"))
    deliverer = setup.deliverer()
    await deliverer.expand()
    while await deliverer.deliver_one():
        pass
    sent = sorted((r.headers["webhook-id"], r.path) for r in receiver.requests)
    assert sent == [("n-all", "/one"), ("n-all", "/two"), ("n-named", "/one")]
    # Zapier has no secret: the id and timestamp go along, no signature.
    assert all("webhook-signature" not in r.headers for r in receiver.requests)
    assert await service.delivery_counts(setup.db) == {
        "pending": 0,
        "sending": 0,
        "delivered": 3,
        "failed": 0,
        "refused": 0,
    }


async def test_slack_gets_at_most_one_message_per_second(setup: Setup, receiver: Receiver) -> None:
    await setup.target(name="slack", kind="slack", url=receiver.url("/services/T/B/x"))
    await service.enqueue(setup.db, message(setup.experiment, "s-1"))
    await service.enqueue(setup.db, message(setup.experiment, "s-2"))
    deliverer = setup.deliverer()
    await deliverer.expand()
    now = utcnow()
    assert await deliverer.deliver_one(now)
    assert await deliverer.deliver_one(now)  # the slot is taken: put back, not sent
    assert len(receiver.requests) == 1
    assert await deliverer.deliver_one(now + timedelta(milliseconds=500)) is False
    assert await deliverer.deliver_one(now + timedelta(seconds=1))
    assert len(receiver.requests) == 2
    log = {item["id"]: item["deliveries"][0] for item in await setup.log()}
    assert {d["state"] for d in log.values()} == {"delivered"}
    assert {d["attempts"] for d in log.values()} == {1}  # a put-back is no attempt
    blocks = json.loads(receiver.requests[0].body)["blocks"]
    assert blocks[0]["type"] == "header"


async def test_alertmanager_receives_v2_alerts_with_its_credentials(
    setup: Setup, receiver: Receiver
) -> None:
    await setup.target(name="am", kind="alertmanager", url=receiver.url("/am/"), secret="token-1")
    await service.enqueue(setup.db, message(setup.experiment, "n-am"))
    deliverer = setup.deliverer()
    await deliverer.expand()
    assert await deliverer.deliver_one()
    [request] = receiver.requests
    assert request.path == "/am/api/v2/alerts"
    assert request.headers["authorization"] == "Bearer token-1"
    [alert] = json.loads(request.body)
    assert alert["labels"]["alertname"] == "dataset drift"
    assert alert["labels"]["model"] == "churn-model"
    assert alert["labels"]["experiment"] == setup.experiment["name"]
    assert alert["startsAt"] == "2026-12-01T12:00:00Z"


async def test_a_target_disabled_or_deleted_after_queueing_gets_nothing(
    setup: Setup, receiver: Receiver
) -> None:
    one = await setup.target(name="one", kind="zapier", url=receiver.url("/one"))
    two = await setup.target(name="two", kind="zapier", url=receiver.url("/two"))
    await service.enqueue(setup.db, message(setup.experiment, "n-late"))
    deliverer = setup.deliverer()
    await deliverer.expand()
    base = f"/api/v1/experiment/{setup.experiment['id']}/alert-targets"
    patched = await setup.api.request(
        "PATCH", f"{base}/{one['id']}", "alice", json={"enabled": False}
    )
    assert patched.status_code == 200
    assert (await setup.api.request("DELETE", f"{base}/{two['id']}", "alice")).status_code == 204
    while await deliverer.deliver_one():
        pass
    assert receiver.requests == []
    [logged] = await setup.log()
    assert logged["state"] == "failed"
    errors = sorted(d["last"]["error"] for d in logged["deliveries"])
    assert errors == ["the target is disabled", "the target was deleted"]


async def test_an_experiment_without_targets_logs_no_targets(setup: Setup) -> None:
    await service.enqueue(setup.db, message(setup.experiment, "n-nowhere"))
    [queued] = await setup.log()
    assert queued["state"] == "queued"
    await setup.deliverer().expand()
    [logged] = await setup.log()
    assert logged["state"] == "no_targets"
    assert logged["deliveries"] == []
