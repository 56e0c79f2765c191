"""The alert-target routes: secrets go in and never come out, unsafe URLs are a 422 at
creation and ``refused`` at delivery, the test route reports the receiver's answer, and the
delivery log pages through an experiment's notifications."""

from __future__ import annotations

import json
from typing import Any

import pytest
from drift_backend.errors import ValidationFailed
from drift_backend.notify import service
from drift_backend.notify.targets import check_url
from drift_backend.settings import Mode, Settings
from standardwebhooks.webhooks import Webhook

from tests.conftest import Api
from tests.notify.conftest import PREFIX, Setup, message, new_secret
from tests.support.receiver import Receiver, Reply


def _targets(setup: Setup) -> str:
    return f"{PREFIX}/experiment/{setup.experiment['id']}/alert-targets"


async def test_secrets_are_write_only(setup: Setup, receiver: Receiver) -> None:
    secret = new_secret()
    slack_url = receiver.url("/services/T000/B000/XXXXSECRET")
    slack = await setup.target(name="slack", kind="slack", url=slack_url)
    hook = await setup.target(name="hook", kind="webhook", url=receiver.url(), secret=secret)
    manager = await setup.target(
        name="am",
        kind="alertmanager",
        url=receiver.url("/"),
        secret="user:pw",
        auth_scheme="basic",
    )
    assert slack["url"] == "http://127.0.0.1"  # a Slack URL is itself a secret
    assert slack["has_secret"] is True
    assert hook["url"] == receiver.url()
    assert hook["has_secret"] is True
    assert manager["auth_scheme"] == "basic"
    assert manager["has_secret"] is True

    listed = await setup.api.request("GET", _targets(setup), "alice")
    assert [t["name"] for t in listed.json()] == ["slack", "hook", "am"]
    shown = listed.text
    for hidden in (secret, "XXXXSECRET", "user:pw"):
        assert hidden not in shown
    one = await setup.api.request("GET", f"{_targets(setup)}/{hook['id']}", "alice")
    assert one.json() == hook


async def test_patch_and_delete(setup: Setup, receiver: Receiver) -> None:
    hook = await setup.target(name="hook", kind="webhook", url=receiver.url(), secret=new_secret())
    url = f"{_targets(setup)}/{hook['id']}"
    patched = await setup.api.request(
        "PATCH", url, "alice", json={"name": "renamed", "enabled": False}
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["name"] == "renamed"
    assert patched.json()["enabled"] is False
    bad = await setup.api.request("PATCH", url, "alice", json={"secret": "not-whsec"})
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["field"] == "secret"
    unsafe = await setup.api.request("PATCH", url, "alice", json={"url": "http://10.0.0.1/x"})
    assert unsafe.status_code == 422
    assert (await setup.api.request("DELETE", url, "alice")).status_code == 204
    assert (await setup.api.request("GET", url, "alice")).status_code == 404
    assert (await setup.api.request("DELETE", url, "alice")).status_code == 404


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"kind": "webhook", "url": "https://hooks.example.org/x"}, "secret"),
        ({"kind": "webhook", "url": "https://hooks.example.org/x", "secret": "abc"}, "secret"),
        ({"kind": "webhook", "url": "https://hooks.example.org/x", "secret": "whsec_!!"}, "secret"),
        ({"kind": "slack", "url": "https://hooks.slack.com/x", "secret": "s"}, "secret"),
        ({"kind": "zapier", "url": "ftp://hooks.zapier.com/x"}, "url"),
        ({"kind": "zapier", "url": "https://user:pw@hooks.zapier.com/x"}, "url"),
        ({"kind": "pagerduty", "url": "https://example.org"}, "kind"),
        (
            {"kind": "alertmanager", "url": "https://am.example.org", "auth_scheme": "basic"},
            "secret",
        ),
    ],
)
async def test_invalid_targets_are_422(setup: Setup, body: dict[str, Any], field: str) -> None:
    response = await setup.api.request("POST", _targets(setup), "alice", json={"name": "t", **body})
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["field"] == field


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.1/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://[::1]/hook",
        "http://localhost/hook",
        "http://100.64.0.1/hook",
        "http://[64:ff9b::a9fe:a9fe]/hook",
    ],
)
async def test_targets_on_non_global_addresses_are_refused_at_creation(
    api_factory: Any, url: str
) -> None:
    api: Api = await api_factory()  # no DRIFT_OUTBOUND_ALLOW
    await api.register("alice")
    experiment = await api.experiment("alice")
    response = await api.request(
        "POST",
        f"{PREFIX}/experiment/{experiment['id']}/alert-targets",
        "alice",
        json={"name": "t", "kind": "zapier", "url": url},
    )
    assert response.status_code == 422, response.text
    [error] = response.json()["errors"]
    assert error["field"] == "url"
    assert "not a global address" in error["reason"]


async def test_https_is_required_outside_development() -> None:
    production = Settings(mode=Mode.production, outbound_allow=["10.0.0.0/8"])
    await check_url("zapier", "https://93.184.215.14/hook", production)
    with pytest.raises(ValidationFailed, match="must be https"):
        await check_url("zapier", "http://93.184.215.14/hook", production)
    # An Alertmanager or webhook inside an allowed network may be plain http...
    await check_url("alertmanager", "http://10.1.2.3:9093", production)
    await check_url("webhook", "http://10.1.2.3/hook", production)
    # ...but not a Slack or Zapier URL, nor one outside the allowed networks.
    with pytest.raises(ValidationFailed, match="must be https"):
        await check_url("zapier", "http://10.1.2.3/hook", production)
    with pytest.raises(ValidationFailed, match="refused"):
        await check_url("alertmanager", "http://192.168.1.1:9093", production)


async def test_a_target_gone_unsafe_is_refused_at_delivery(
    setup: Setup, receiver: Receiver
) -> None:
    """Created while the allow list let it in; delivered by workers whose list does not."""
    await setup.target(name="hook", kind="webhook", url=receiver.url(), secret=new_secret())
    await service.enqueue(setup.db, message(setup.experiment, "n-ssrf"))
    deliverer = setup.deliverer(outbound_allow=[])
    await deliverer.expand()
    assert await deliverer.deliver_one()
    assert receiver.requests == []
    [logged] = await setup.log()
    [delivery] = logged["deliveries"]
    assert logged["state"] == "failed"
    assert delivery["state"] == "refused"
    assert "127.0.0.1 is not a global address (loopback)" in delivery["last"]["error"]


async def test_a_redirect_is_refused_at_delivery_not_followed(
    setup: Setup, receiver: Receiver
) -> None:
    with Receiver() as elsewhere:
        await setup.target(name="hook", kind="webhook", url=receiver.url(), secret=new_secret())
        await service.enqueue(setup.db, message(setup.experiment, "n-redirect"))
        receiver.reply(Reply(307, headers={"Location": elsewhere.url("/internal")}))
        deliverer = setup.deliverer()
        await deliverer.expand()
        assert await deliverer.deliver_one()
        assert elsewhere.requests == []
    [delivery] = (await setup.log())[0]["deliveries"]
    assert delivery["state"] == "refused"
    assert delivery["last"]["status_code"] == 307
    assert "not followed" in delivery["last"]["error"]


async def test_the_test_route_reports_the_receivers_answer(
    setup: Setup, receiver: Receiver
) -> None:
    secret = new_secret()
    hook = await setup.target(name="hook", kind="webhook", url=receiver.url(), secret=secret)
    url = f"{_targets(setup)}/{hook['id']}/test"

    ok = await setup.api.request("POST", url, "alice")
    assert ok.status_code == 200, ok.text
    assert ok.json()["ok"] is True
    assert ok.json()["status_code"] == 200
    [request] = receiver.requests
    assert request.headers["webhook-id"] == ok.json()["webhook_id"]
    body = Webhook(secret).verify(request.body, request.headers)
    assert body["rule"]["id"] == "test"

    receiver.reply(Reply(500, b"receiver exploded"))
    failed = await setup.api.request("POST", url, "alice")
    assert failed.status_code == 200
    assert failed.json()["ok"] is False
    assert failed.json()["status_code"] == 500
    assert failed.json()["excerpt"] == "receiver exploded"

    receiver.down()
    down = await setup.api.request("POST", url, "alice")
    assert down.json()["ok"] is False
    assert "connection failed" in down.json()["error"]

    # A target whose address became unsafe (as stored before the policy changed).
    await setup.db.alert_targets.update_one(
        {"_id": hook["id"]}, {"$set": {"url": "http://169.254.169.254/latest"}}
    )
    refused = await setup.api.request("POST", url, "alice")
    assert refused.json()["outcome"] == "refused"
    assert "link-local" in refused.json()["error"]
    assert (await service.notifications(setup.db, setup.experiment["id"])) == []


async def test_the_delivery_log_pages_newest_first(setup: Setup, receiver: Receiver) -> None:
    await setup.target(name="hook", kind="zapier", url=receiver.url())
    for index in range(5):
        await service.enqueue(setup.db, message(setup.experiment, f"n-{index}"))
    url = f"{PREFIX}/experiment/{setup.experiment['id']}/notifications"
    seen: list[str] = []
    params: dict[str, Any] = {"limit": 2}
    while True:
        page = await setup.api.request("GET", url, "alice", params=params)
        assert page.status_code == 200, page.text
        seen += [item["id"] for item in page.json()["items"]]
        if page.json()["next"] is None:
            break
        params["before"] = page.json()["next"]
    assert seen == [f"n-{index}" for index in reversed(range(5))]
    assert {item["state"] for item in await setup.log()} == {"queued"}
    bad = await setup.api.request("GET", url, "alice", params={"before": "garbage"})
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["field"] == "before"


async def test_deleting_the_experiment_deletes_its_targets_and_notifications(
    setup: Setup, receiver: Receiver
) -> None:
    await setup.target(name="hook", kind="zapier", url=receiver.url())
    await service.enqueue(setup.db, message(setup.experiment, "n-gone"))
    await setup.deliverer().expand()
    response = await setup.api.request(
        "DELETE", f"{PREFIX}/experiment/{setup.experiment['id']}", "alice"
    )
    assert response.status_code == 204
    for collection in ("alert_targets", "notifications", "deliveries"):
        left = await setup.db[collection].count_documents({})
        assert left == 0, (collection, json.dumps(left))


async def test_a_finished_delivery_can_be_sent_again(setup: Setup, receiver: Receiver) -> None:
    await setup.target(name="hook", kind="webhook", url=receiver.url(), secret=new_secret())
    await service.enqueue(setup.db, message(setup.experiment, "n-again"))
    deliverer = setup.deliverer()
    await deliverer.expand()
    receiver.reply(Reply(400, b"not now"))
    assert await deliverer.deliver_one()
    [delivery] = (await setup.log())[0]["deliveries"]
    assert delivery["state"] == "failed"

    url = f"{PREFIX}/experiment/{setup.experiment['id']}/notifications/n-again/redeliver"
    again = await setup.api.request("POST", url, "alice")
    assert again.status_code == 202, again.text
    [delivery] = again.json()["deliveries"]
    assert delivery["state"] == "pending"
    assert delivery["attempts"] == 0
    assert len(delivery["history"]) == 1  # the failed attempt stays in the record
    assert await deliverer.deliver_one()
    assert [r.headers["webhook-id"] for r in receiver.requests] == ["n-again", "n-again"]
    assert (await setup.log())[0]["state"] == "delivered"

    missing = url.replace("n-again", "n-nothing")
    assert (await setup.api.request("POST", missing, "alice")).status_code == 404


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.1/hook",
        "http://[::ffff:127.0.0.1]:{port}/hook",
        "http://[::1]:{port}/hook",
        "http://localhost:{port}/hook",
    ],
)
async def test_unsafe_addresses_are_refused_at_delivery(
    setup: Setup, receiver: Receiver, url: str
) -> None:
    """Stored as they might have been before the operator narrowed the allow list."""
    target = await setup.target(name="hook", kind="zapier", url=receiver.url())
    await setup.db.alert_targets.update_one(
        {"_id": target["id"]}, {"$set": {"url": url.format(port=receiver.port)}}
    )
    await service.enqueue(setup.db, message(setup.experiment, "n-unsafe"))
    deliverer = setup.deliverer(outbound_allow=[])
    await deliverer.expand()
    assert await deliverer.deliver_one()
    assert receiver.requests == []
    [delivery] = (await setup.log())[0]["deliveries"]
    assert delivery["state"] == "refused"
    assert "not a global address" in delivery["last"]["error"]
