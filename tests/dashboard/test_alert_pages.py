"""The Alerts tab through the dashboard over HTTP (a session logged in through the real OIDC
provider's form, no browser) against the same-origin stack with an embedded worker: rules,
targets (a real receiver on loopback answers the "Send test" button and the deliveries),
silences, a firing alert on the tab, the experiment's header and the experiments list, the
delivery log and a redelivery, refusals shown beside their forms, who sees which forms, CSRF.
One Chromium test creates a rule and a webhook target in the browser and runs axe-core."""

from __future__ import annotations

import base64
import html
import os
import re
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import httpx2
import pytest
from drift_dashboard.pages.alert_actions import number, rule_body, utc_time
from drift_dashboard.pages.alerts import RULE_DEFAULTS, condition_text, duration_text

from tests.dashboard.conftest import Stack, Visitor, unique
from tests.support.receiver import Receiver, Reply

EMBEDDED_WORKER = True
BACKEND_SETTINGS = {
    # The receiver is on loopback; the local stack allows it the same way.
    "outbound_allow": ["127.0.0.1"],
    "alerts_tick_seconds": 0.1,
    "delivery_poll_seconds": 0.1,
    "job_lease_seconds": 5,
}
#: A bound on waiting for the worker (against a hang; not a timing assertion).
PATIENCE_SECONDS = 60.0
CSRF = re.compile(r'<meta name="csrf-token" content="([^"]+)">')
T = TypeVar("T")


def new_secret() -> str:
    return "whsec_" + base64.b64encode(os.urandom(32)).decode()


def eventually(probe: Callable[[], T], done: Callable[[T], bool], what: str) -> T:
    end = time.monotonic() + PATIENCE_SECONDS
    while True:
        value = probe()
        if done(value):
            return value
        if time.monotonic() > end:
            raise AssertionError(f"never happened: {what} (last: {value!r})")
        time.sleep(0.05)


class Browserless:
    """A visitor over plain HTTP: its session cookie from a real login at the provider."""

    def __init__(self, stack: Stack, subject: str | None) -> None:
        self.stack = stack
        self.http = httpx2.Client(base_url=stack.url, timeout=30, follow_redirects=False)
        if subject is not None:
            self.login(subject)

    def login(self, subject: str) -> None:
        start = self.http.get("/login", params={"next": "/experiments"})
        assert start.status_code in (302, 303), start.text
        authorize = start.headers["location"]
        assert authorize.startswith(self.stack.issuer)
        with httpx2.Client(timeout=30, follow_redirects=False) as provider:
            chosen = provider.post(authorize, data={"sub": subject})
        assert chosen.status_code in (302, 303), chosen.text
        back = self.http.get(chosen.headers["location"])
        assert back.status_code in (302, 303), back.text
        assert back.headers["location"].endswith("/experiments")

    def get(self, path: str, **kwargs: Any) -> httpx2.Response:
        return self.http.get(path, **kwargs)

    def post(self, path: str, data: dict[str, Any], *, token: bool = True) -> httpx2.Response:
        """A form POST as the browser sends it: our Origin and the page's CSRF token."""
        if token:
            page = self.http.get("/experiments")
            found = CSRF.search(page.text)
            assert found is not None
            data = {"csrf_token": found.group(1), **data}
        return self.http.post(path, data=data, headers={"Origin": self.stack.url})

    def close(self) -> None:
        self.http.close()


def api_client(stack: Stack, who: str) -> httpx2.Client:
    headers = {"Authorization": f"Bearer {stack.token(who)}"}
    return httpx2.Client(base_url=f"{stack.url}/api/v1", headers=headers, timeout=30)


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    with Receiver() as running:
        yield running


@pytest.fixture(scope="module")
def alice_http(stack: Stack) -> Iterator[Browserless]:
    made = Browserless(stack, "alice")
    yield made
    made.close()


@pytest.fixture(scope="module")
def bob_http(stack: Stack) -> Iterator[Browserless]:
    made = Browserless(stack, "bob")
    yield made
    made.close()


def page_of(experiment: dict[str, Any]) -> str:
    return f"/experiments/{experiment['id']}/alerts"


def rule_form(**fields: str) -> dict[str, str]:
    return {**RULE_DEFAULTS, **fields}


def test_a_manager_makes_rules_targets_and_silences(
    stack: Stack, alice_http: Browserless, receiver: Receiver
) -> None:
    experiment = stack.create("alice", unique("alerts"))
    url = page_of(experiment)
    empty = alice_http.get(url)
    assert empty.status_code == 200
    assert 'aria-current="page">Alerts</a>' in empty.text
    assert "No rules yet." in empty.text
    assert "No targets yet" in empty.text
    # The forms show the backend's timing defaults.
    for name, value in (
        ("group_wait", "30"),
        ("group_interval", "300"),
        ("repeat_interval", "14400"),
    ):
        assert f'name="{name}" inputmode="numeric" maxlength="32" value="{value}"' in empty.text

    made = alice_http.post(
        f"{url}/rules",
        rule_form(
            name="age drifts",
            condition="feature_drift",
            feature="age",
            min_effect="0.2",
            models="churn, churn-v2",
            tags="nightly",
            for_runs="2",
            keep_firing_for="3600",
        ),
    )
    assert made.status_code == 303, made.text
    assert made.headers["location"].endswith("?done=rule-created#rules")
    violations = alice_http.post(
        f"{url}/rules",
        {**rule_form(name="bounds", condition="violations"), "kinds": ["Bound", "Null"]},
    )
    assert violations.status_code == 303, violations.text
    with api_client(stack, "alice") as api:
        rules = api.get(f"/experiment/{experiment['id']}/alert-rules").json()
    by_name = {r["name"]: r for r in rules}
    assert by_name["age drifts"]["condition"] == {
        "type": "feature_drift",
        "feature": "age",
        "min_effect": 0.2,
    }
    assert by_name["age drifts"]["models"] == ["churn", "churn-v2"]
    assert by_name["age drifts"]["for_runs"] == 2
    assert by_name["bounds"]["condition"]["kinds"] == ["Bound", "Null"]
    listed = alice_http.get(url).text
    assert "Rule created." not in listed  # only after the redirect's ?done=
    assert "feature “age” drifted with effect ≥ 0.2" in html.unescape(listed)
    assert "violations: Bound, Null" in listed
    assert "1 h" in listed  # keep_firing_for, for people

    secret = new_secret()
    target = alice_http.post(
        f"{url}/targets",
        {"name": "ops hook", "kind": "webhook", "url": receiver.url("/ops"), "secret": secret},
    )
    assert target.status_code == 303, target.text
    shown = alice_http.get(url).text
    assert "ops hook" in shown
    assert receiver.url("/ops") in shown
    assert "stored" in shown  # has_secret
    assert secret not in shown
    assert secret[6:20] not in shown
    (target_id,) = re.findall(r'name="target_id" value="([^"]+)"', shown)[:1]

    before = len(receiver.requests)
    tested = alice_http.post(f"{url}/targets/test", {"target_id": target_id})
    assert tested.status_code == 200
    assert "delivered, the receiver answered 200" in tested.text
    sent = receiver.requests[before]
    assert sent.path == "/ops"
    assert sent.headers["webhook-signature"].startswith("v1,")
    receiver.reply(Reply(status=500, body=b"receiver is broken"))
    failed = alice_http.post(f"{url}/targets/test", {"target_id": target_id})
    assert failed.status_code == 200
    assert "failed, the receiver answered 500" in failed.text
    assert "receiver is broken" in failed.text

    rule_id = by_name["age drifts"]["id"]
    silenced = alice_http.post(
        f"{url}/silences",
        {"rule_id": rule_id, "model": "churn", "ends_at": "2099-01-01T00:00", "comment": "deploy"},
    )
    # 2099 is beyond 90 days: the backend's reason is shown beside the form, values kept.
    assert silenced.status_code == 422
    assert "ends_at" in silenced.text
    assert 'value="deploy"' in silenced.text
    assert '<details class="alert-form" open>' in silenced.text
    silenced = alice_http.post(
        f"{url}/silences",
        {"rule_id": rule_id, "model": "churn", "ends_at": utc_in(hours=2), "comment": "deploy"},
    )
    assert silenced.status_code == 303, silenced.text
    with_silence = alice_http.get(url).text
    assert 'class="badge silence-active">Active' in with_silence
    assert "deploy" in with_silence
    (silence_id,) = re.findall(r'name="silence_id" value="([^"]+)"', with_silence)
    expired = alice_http.post(f"{url}/silences/expire", {"silence_id": silence_id})
    assert expired.status_code == 303
    after = alice_http.get(url).text
    assert 'class="badge silence-expired">Expired' in after
    assert 'name="silence_id"' not in after  # an expired silence has nothing to expire

    assert alice_http.post(f"{url}/rules/delete", {"rule_id": rule_id}).status_code == 303
    assert alice_http.post(f"{url}/targets/delete", {"target_id": target_id}).status_code == 303
    final = alice_http.get(url).text
    assert "age drifts" not in final.split('id="silences"')[0]
    assert "ops hook" not in final


def utc_in(*, hours: int) -> str:
    return (datetime.now(UTC) + timedelta(hours=hours)).strftime("%Y-%m-%dT%H:%M")


@pytest.mark.parametrize(
    ("path", "form", "field"),
    [
        ("rules", {"name": "x", "condition": "feature_drift", "feature": ""}, "condition"),
        ("rules", {"name": "x", "for_runs": "many"}, "for_runs"),
        ("rules", {"name": "x", "condition": "no_run", "for_runs": "3"}, "for_runs"),
        ("targets", {"name": "meta", "kind": "zapier", "url": "http://169.254.169.254/x"}, "url"),
        (
            "targets",
            {"name": "unsigned", "kind": "webhook", "url": "http://127.0.0.1:9/x"},
            "secret",
        ),
    ],
)
def test_refusals_are_shown_beside_the_form_with_field_and_reason(
    stack: Stack, alice_http: Browserless, path: str, form: dict[str, str], field: str
) -> None:
    experiment = stack.experiments.get("refusals") or stack.create("alice", unique("refusals"))
    stack.experiments["refusals"] = experiment
    values = rule_form(**form) if path == "rules" else form
    answer = alice_http.post(f"{page_of(experiment)}/{path}", values)
    assert answer.status_code == 422, answer.text
    assert "The server refused this" in answer.text
    # The field is named (or, for a rule-wide check, its reason names it) beside the form.
    problems = re.findall(r"<li><code>([^<]*)</code>: ([^<]*)</li>", answer.text)
    assert any(field in name or field in reason for name, reason in problems), problems
    assert f'value="{form["name"]}"' in answer.text  # what was typed stays


def test_a_bad_secret_is_never_echoed_back(stack: Stack, alice_http: Browserless) -> None:
    experiment = stack.create("alice", unique("secret"))
    answer = alice_http.post(
        f"{page_of(experiment)}/targets",
        {
            "name": "hook",
            "kind": "webhook",
            "url": "http://127.0.0.1:9/x",
            "secret": "not-whsec-s3cr3t",
        },
    )
    assert answer.status_code == 422
    assert "not-whsec-s3cr3t" not in answer.text


def test_a_firing_alert_on_the_tab_the_header_and_the_list_then_the_log(
    stack: Stack, alice_http: Browserless, receiver: Receiver
) -> None:
    experiment = stack.create("alice", unique("firing"))
    url = page_of(experiment)
    assert (
        alice_http.post(
            f"{url}/rules", rule_form(name="job failed", condition="run_failed", group_wait="0")
        ).status_code
        == 303
    )
    assert (
        alice_http.post(
            f"{url}/targets",
            {
                "name": "hook",
                "kind": "webhook",
                "url": receiver.url("/firing"),
                "secret": new_secret(),
            },
        ).status_code
        == 303
    )
    with api_client(stack, "alice") as api:
        run = api.post(
            f"/experiment/{experiment['id']}/drift", json={"job_status": "Failed", "model": "m1"}
        )
        assert run.status_code == 201, run.text
        eventually(
            lambda: api.get(f"/experiment/{experiment['id']}/alerts").json(),
            lambda alerts: [a["state"] for a in alerts] == ["firing"],
            "the rule firing",
        )
    eventually(
        lambda: [r for r in receiver.requests if r.path == "/firing"],
        lambda hits: len(hits) == 1,
        "the notification delivered",
    )

    tab = alice_http.get(url).text
    now = tab.split('id="rules"')[0]
    assert 'class="badge alert-firing">Firing' in now
    assert "job failed" in now
    assert "<td>m1</td>" in now
    assert f'/runs/{run.json()["id"]}"' in now
    assert "1 firing alert</a>" in tab  # the header
    assert "1 firing alert</a>" in alice_http.get(f"/experiments/{experiment['id']}").text
    listing = alice_http.get("/experiments", params={"q": experiment["name"]}).text
    assert f'href="/experiments/{experiment["id"]}/alerts#firing">1 firing</a>' in listing

    def log() -> str:
        return alice_http.get(url).text.split('id="log"')[1]

    delivered = eventually(
        log, lambda text: "delivery-delivered" in text, "the log saying delivered"
    )
    assert "1 attempt; last delivered 200" in delivered
    (nid,) = re.findall(r'name="notification_id" value="([^"]+)"', delivered)
    again = alice_http.post(
        f"{url}/notifications/redeliver", {"notification_id": html.unescape(nid)}
    )
    assert again.status_code == 303, again.text
    hits = eventually(
        lambda: [r for r in receiver.requests if r.path == "/firing"],
        lambda found: len(found) == 2,
        "the redelivery",
    )
    assert hits[0].headers["webhook-id"] == hits[1].headers["webhook-id"]


def test_a_disabled_target_can_be_enabled_again(
    stack: Stack, alice_http: Browserless, receiver: Receiver
) -> None:
    experiment = stack.create("alice", unique("gone"))
    base = f"/experiment/{experiment['id']}/alert-targets"
    with api_client(stack, "alice") as api:
        made = api.post(base, json={"name": "old hook", "kind": "zapier", "url": receiver.url()})
        assert made.status_code == 201, made.text
        target_id = made.json()["id"]
        assert api.patch(f"{base}/{target_id}", json={"enabled": False}).status_code == 200
        shown = alice_http.get(page_of(experiment)).text
        assert 'class="badge failed">disabled' in shown
        enabled = alice_http.post(f"{page_of(experiment)}/targets/enable", {"target_id": target_id})
        assert enabled.status_code == 303, enabled.text
        assert api.get(f"{base}/{target_id}").json()["enabled"] is True
    assert "Enable again" not in alice_http.get(page_of(experiment)).text


def test_the_log_explains_a_cursor_it_did_not_give_out(
    stack: Stack, alice_http: Browserless
) -> None:
    experiment = stack.create("alice", unique("cursor"))
    answer = alice_http.get(page_of(experiment), params={"before": "not-a-cursor"})
    assert answer.status_code == 200
    assert "That page of the log does not exist" in answer.text


def test_read_sees_the_lists_but_no_forms_and_edit_may_silence(
    stack: Stack, alice_http: Browserless, bob_http: Browserless
) -> None:
    experiment = stack.create("alice", unique("shared"))
    url = page_of(experiment)
    assert alice_http.post(f"{url}/rules", rule_form(name="shared rule")).status_code == 303
    with api_client(stack, "bob") as bob_api:
        assert bob_api.post("/user").status_code in (201, 409)
        bob_id = bob_api.get("/user/self").json()["id"]
    with api_client(stack, "alice") as api:
        granted = api.put(
            f"/experiment/{experiment['id']}/permissions", json={"entity": bob_id, "level": "Read"}
        )
        assert granted.status_code in (200, 201), granted.text
    seen = bob_http.get(url)
    assert seen.status_code == 200
    assert "shared rule" in seen.text
    for form in ("/alerts/rules", "/alerts/targets", "/alerts/silences", "Delete", "Send test"):
        assert form not in seen.text
    # The backend refuses anyway: a forged form gets its 403 beside the form, not a 500.
    forged = bob_http.post(f"{url}/rules", rule_form(name="bob's"))
    assert forged.status_code == 403
    assert "The server refused this" in forged.text

    with api_client(stack, "alice") as api:
        api.put(
            f"/experiment/{experiment['id']}/permissions", json={"entity": bob_id, "level": "Edit"}
        )
    edit = bob_http.get(url).text
    assert f'action="{url}/silences"' in edit
    assert f'action="{url}/rules"' not in edit
    assert f'action="{url}/targets"' not in edit


def test_csrf_and_anonymous_visitors(stack: Stack, alice_http: Browserless) -> None:
    experiment = stack.create("alice", unique("csrf"))
    url = page_of(experiment)
    refused = alice_http.post(f"{url}/rules", rule_form(name="no token"), token=False)
    assert refused.status_code == 403
    with api_client(stack, "alice") as api:
        assert api.get(f"/experiment/{experiment['id']}/alert-rules").json() == []
    with httpx2.Client(base_url=stack.url, timeout=30) as anonymous:
        assert anonymous.get(url).status_code == 404
        assert anonymous.post(f"{url}/rules", data={"name": "x"}).status_code == 403


def test_form_text_becomes_the_backends_json() -> None:
    assert number("3") == 3
    assert number(" 0.5 ") == 0.5
    assert number("many") == "many"
    assert utc_time("2026-12-03T10:00") == "2026-12-03T10:00:00+00:00"
    assert utc_time("2026-12-03T10:00+02:00") == "2026-12-03T10:00:00+02:00"
    assert utc_time("soon") == "soon"
    body = rule_body(
        rule_form(name=" n ", condition="no_run", within_seconds="60", tags="a, ,b"), []
    )
    assert body["condition"] == {"type": "no_run", "within_seconds": 60}
    assert body["name"] == "n"
    assert body["tags"] == ["a", "b"]
    assert body["models"] == []
    assert rule_body(rule_form(name="n", send_resolved=""), [])["send_resolved"] is False
    assert duration_text(14400) == "4 h"
    assert duration_text(86400) == "1 day"
    assert duration_text(90) == "90 s"
    assert duration_text(0) == "0 s"
    assert condition_text({"type": "violations", "kinds": []}) == "violations: any kind"
    assert condition_text({"type": "no_run", "within_seconds": 7200}) == "no run within 2 h"


def test_in_the_browser_a_rule_and_a_webhook_target(
    browser: Any, stack: Stack, receiver: Receiver
) -> None:
    experiment = stack.create("alice", unique("browser"))
    visitor = Visitor(browser, stack, bypass_csp=False)
    try:
        visitor.login("alice")
        visitor.goto(f"/experiments/{experiment['id']}")
        visitor.page.get_by_role("link", name="Alerts").click()
        page = visitor.page
        page.wait_for_url(f"**{page_of(experiment)}")
        page.get_by_text("New rule").click()
        page.get_by_label("Name", exact=True).first.fill("age drifts in the browser")
        page.get_by_label("A feature drifted").check()
        page.get_by_label("Feature", exact=True).fill("age")
        page.get_by_role("button", name="Create rule").click()
        page.wait_for_url("**done=rule-created*")
        rules = page.locator("table.alert-rules")
        assert "age drifts in the browser" in rules.inner_text()
        assert "feature “age” drifted" in rules.inner_text()

        page.get_by_text("New target").click()
        form = page.get_by_role("form", name="New target")
        form.get_by_label("Name").fill("browser hook")
        form.get_by_label("Kind").select_option("webhook")
        form.get_by_label("URL", exact=False).fill(receiver.url("/browser"))
        form.get_by_label("Secret", exact=False).fill(new_secret())
        form.get_by_role("button", name="Create target").click()
        page.wait_for_url("**done=target-created*")
        targets = page.locator("table.alert-targets").inner_text()
        assert "browser hook" in targets
        assert "webhook" in targets
        assert visitor.csp_violations() == []
    finally:
        visitor.close()
    # A silence, a firing alert and its delivery, so axe sees every table (and the header's
    # badge) too.
    base = f"/experiment/{experiment['id']}"
    with api_client(stack, "alice") as api:
        silenced = api.post(
            f"{base}/silences",
            json={"model": "m9", "ends_at": utc_in(hours=1) + ":00+00:00", "comment": "axe"},
        )
        assert silenced.status_code == 201, silenced.text
        rule = {"name": "failed", "condition": {"type": "run_failed"}, "group_wait": 0}
        assert api.post(f"{base}/alert-rules", json=rule).status_code == 201
        failed = api.post(f"{base}/drift", json={"job_status": "Failed", "model": "m1"})
        assert failed.status_code == 201, failed.text
        eventually(
            lambda: api.get(f"{base}/notifications").json()["items"],
            lambda items: bool(items) and items[0]["state"] == "delivered",
            "the firing alert delivered",
        )
    # axe-core is injected as an inline script: a context that bypasses the CSP, both schemes.
    for scheme in ("light", "dark"):
        checker = Visitor(browser, stack, bypass_csp=True)
        try:
            checker.login("alice")
            checker.page.emulate_media(color_scheme=scheme)
            checker.goto(page_of(experiment))
            for summary in ("New rule", "New silence", "New target"):
                checker.page.get_by_text(summary).click()  # axe checks the open forms too
            assert checker.axe_serious() == [], scheme
        finally:
            checker.close()
