"""What each kind of target receives: Slack within Slack's limits however many features
drifted, Alertmanager's v2 alert shape, and the signed JSON body's fields."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from drift_backend.notify.formats import alertmanager_body, json_body, slack_body
from drift_backend.notify.message import FeatureAlert
from drift_backend.notify.send import render
from standardwebhooks.webhooks import Webhook

from tests.notify.conftest import message, new_secret

EXPERIMENT = {"id": "exp-1", "name": "churn <prod> & co"}
BASE = "https://drift.example.org"


def _many(count: int) -> tuple[FeatureAlert, ...]:
    return tuple(
        FeatureAlert(
            name=f"feature_{i}_" + "long" * 20, kind="drift", test="ks", p_value=1e-9 * (i + 1)
        )
        for i in range(count)
    )


def test_slack_body_stays_within_limits_for_1000_drifted_features() -> None:
    body = slack_body(message(EXPERIMENT, "n", features=_many(1000)), BASE)
    blocks = body["blocks"]
    assert len(blocks) <= 50
    assert blocks[0]["type"] == "header"
    assert len(blocks[0]["text"]["text"]) <= 150
    assert blocks[-1]["type"] == "context"
    sections = [b["text"]["text"] for b in blocks if b["type"] == "section"]
    assert all(len(text) <= 3000 for text in sections)
    listed = sum(text.count("• `feature_") for text in sections)
    assert listed == 60
    assert any("and 940 more" in text for text in sections)
    assert len(json.dumps(body)) < 40_000  # Slack's whole-message limit
    # mrkdwn's control characters are escaped; the run link is one.
    assert "churn &lt;prod&gt; &amp; co" in sections[0]
    assert f"<{BASE}/experiments/exp-1/runs/run-1|Open in Drift Monitor>" in sections[0]


def test_slack_body_of_a_few_features_lists_them_all() -> None:
    body = slack_body(message(EXPERIMENT, "n"), None)
    text = json.dumps(body)
    assert "`age`" in text
    assert "`income`" in text
    assert "more" not in text
    assert "Open in Drift Monitor" not in text  # no public base URL, no link


def test_alertmanager_body_shape() -> None:
    firing = alertmanager_body(message(EXPERIMENT, "n", severity="critical"), BASE)
    assert firing == [
        {
            "labels": {
                "alertname": "dataset drift",
                "experiment": "churn <prod> & co",
                "model": "churn-model",
                "severity": "critical",
                "rule_id": "rule-1",
            },
            "annotations": {
                "summary": "2 of 3 features drifted",
                "features": "age, income",
                "run_id": "run-1",
            },
            "startsAt": "2026-12-01T12:00:00Z",
            "generatorURL": f"{BASE}/experiments/exp-1/runs/run-1",
        }
    ]
    ended = datetime(2026, 12, 1, 13, 0, tzinfo=UTC)
    [resolved] = alertmanager_body(message(EXPERIMENT, "n", status="resolved", ends_at=ended), BASE)
    assert resolved["endsAt"] == "2026-12-01T13:00:00Z"


def test_alertmanager_request_goes_to_the_v2_api_with_credentials() -> None:
    now = datetime(2026, 12, 1, tzinfo=UTC)
    target = {
        "kind": "alertmanager",
        "url": "https://am.example.org/",
        "secret": "token-1",
        "auth_scheme": "bearer",
    }
    url, _, headers = render(target, message(EXPERIMENT, "n"), BASE, now)
    assert url == "https://am.example.org/api/v2/alerts"
    assert headers["authorization"] == "Bearer token-1"
    basic = {**target, "secret": "user:pw", "auth_scheme": "basic"}
    _, _, headers = render(basic, message(EXPERIMENT, "n"), BASE, now)
    assert headers["authorization"] == "Basic dXNlcjpwdw=="


def test_webhook_request_is_signed_per_standard_webhooks() -> None:
    secret = new_secret()
    now = datetime.now(UTC)
    target = {"kind": "webhook", "url": "https://hooks.example.org/x", "secret": secret}
    _url, body, headers = render(target, message(EXPERIMENT, "n-7"), BASE, now)
    assert headers["webhook-id"] == "n-7"
    assert headers["webhook-timestamp"] == str(int(now.timestamp()))
    verified = Webhook(secret).verify(body, headers)
    assert verified == json_body(message(EXPERIMENT, "n-7"), BASE, now)
    assert {"model_name", "features", "exception"} <= set(verified)
